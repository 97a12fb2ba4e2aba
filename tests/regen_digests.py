"""The sha256 of every file that two fixed uniform runs write, against the committed ones.

``tests/data/uniform_run_digests.json`` holds, for a 2-epoch mnist_5k run and a 2-epoch run on
the tiny synthetic CIFAR-10 of the tests (every random stream of the trainer in use), the
sha256 of each file the run leaves in its output directory (stats pickle, best_acc, resume
state and statistics log; for CIFAR also the best checkpoint and the changed labels), with
the library versions they were computed with. tests/test_sampling_runs.py checks that the
code of today writes exactly those bytes: a change of what a plain run writes shows up there.

After a change that is meant to change the files (e.g. new ids for the bundled digits), or
after merging one, regenerate and look at what it prints:

    .venv/bin/python tests/regen_digests.py            # print the changes, rewrite the file
    .venv/bin/python tests/regen_digests.py --check    # print the changes, exit 1 if any
    .venv/bin/python tests/regen_digests.py --code DIR --check   # another checkout's scripts

``--code DIR`` runs the scripts of another tree, e.g. an older commit's
(``git archive <commit> | tar -x -C DIR``), to see whether it wrote the same bytes.
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import torch

from cifar_fixtures import _WRAPPER, write_cifar10
from helpers import CIFAR_RUN, MNIST_5K, PYTHON, REPO, TIMEOUT

DIGESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "uniform_run_digests.json")
# The runs, as given after `python <script>` (the CIFAR one also gets --data_dir).
RUNS = {
    "mnist_5k": ("run_mnist.py", [*MNIST_5K, "--batch_size", "256", "--seed", "2", "--epochs", "2"]),
    "tiny_cifar": ("run_cifar.py", [*CIFAR_RUN, "--epochs", "2"]),
}
# Not digested: the run record holds the host and the times of the run (docs/files.md#run-record).
NOT_DIGESTED = ("__run.json",)


def environment():
    """What the bytes depend on beyond the code: float kernels, pickle layouts."""
    return {"python": platform.python_version(), "machine": platform.machine(),
            "torch": torch.__version__, "numpy": np.__version__}


def digests_of(directory):
    """{relative path: sha256} of every file below ``directory``, '/' separated."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            if name.endswith(NOT_DIGESTED):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, directory).replace(os.sep, "/")] = \
                    hashlib.sha256(handle.read()).hexdigest()
    return dict(sorted(out.items()))


def run_digests(code_dir, work_dir):
    """Run RUNS with the scripts of ``code_dir`` (two processes at once) in ``work_dir``:
    {run: {file: sha256}}."""
    data_dir = os.path.join(work_dir, "cifar_data")
    _, checksums = write_cifar10(data_dir, n_train=100, n_test=50, seed=3)  # conftest.tiny_cifar
    wrapper = os.path.join(work_dir, "run_cifar_synthetic.py")
    with open(wrapper, "w") as handle:
        handle.write(_WRAPPER.format(repo=code_dir, checksums=json.dumps(checksums)))
    scripts = {"run_mnist.py": [], "run_cifar.py": [wrapper, "--data_dir", data_dir]}
    env = dict(os.environ, PYTHONPATH=code_dir)  # that tree's library, not the installed one
    procs = {}
    for run, (script, flags) in RUNS.items():
        argv = scripts[script] or [script]
        procs[run] = subprocess.Popen(
            [PYTHON, *argv, *flags, "--output_dir", os.path.join(work_dir, run)],
            cwd=code_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for run, proc in procs.items():
        _, err = proc.communicate(timeout=TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"the {run} run failed (exit {proc.returncode}):\n{err}")
    return {run: digests_of(os.path.join(work_dir, run)) for run in RUNS}


def load_committed():
    with open(DIGESTS) as handle:
        return json.load(handle)


def changes(old, new):
    """Lines saying how the digests ``new`` differ from ``old`` ({run: {file: sha}})."""
    lines = []
    for run in sorted(set(old) | set(new)):
        before, after = old.get(run, {}), new.get(run, {})
        for name in sorted(set(before) | set(after)):
            if name not in after:
                lines.append(f"{run}: {name} no longer written")
            elif name not in before:
                lines.append(f"{run}: {name} new, {after[name][:12]}")
            elif before[name] != after[name]:
                lines.append(f"{run}: {name} changed, {before[name][:12]} -> {after[name][:12]}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    parser.add_argument("--code", default=REPO, help="the tree whose scripts run (default: this one)")
    args = parser.parse_args(argv)
    committed = load_committed() if os.path.exists(DIGESTS) else {"environment": {}, "runs": {}}
    if committed["environment"] != environment():
        print(f"the committed digests were computed with {committed['environment']}; "
              f"this is {environment()}")
    with tempfile.TemporaryDirectory() as work_dir:
        runs = run_digests(os.path.abspath(args.code), work_dir)
    lines = changes(committed["runs"], runs)
    print("\n".join(lines) if lines else "the runs write the committed bytes")
    if args.check:
        return 1 if lines else 0
    os.makedirs(os.path.dirname(DIGESTS), exist_ok=True)
    with open(DIGESTS, "w") as handle:
        json.dump({"environment": environment(),
                   "commands": {run: " ".join([script, *flags]) for run, (script, flags) in RUNS.items()},
                   "runs": runs}, handle, indent=1)
        handle.write("\n")
    print(f"wrote {os.path.relpath(DIGESTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
