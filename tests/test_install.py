"""The package: after `pip install -e .` (make's install step) the library imports from any
folder, as in a notebook, with the repository on no path; the scripts are not installed."""
import subprocess
import sys

import pytest

IMPORTS = """
import importlib.util
import cutout, forgetting, models
from forgetting.analysis.results import collect
from models import MnistNet
assert importlib.util.find_spec("run_mnist") is None, "a script is importable from anywhere"
"""


@pytest.mark.slow
def test_the_library_imports_from_another_folder(tmp_path):
    # -I: no PYTHONPATH, no current folder on sys.path (pytest.ini's `pythonpath = .` only
    # changes this process's sys.path): only what is installed is found
    result = subprocess.run([sys.executable, "-I", "-c", IMPORTS], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, ("install the project first: pip install -e '.[test]' "
                                    "(make test does)\n" + result.stderr)
