"""Issue 20, item 5: a FIFO (or any non-regular file) named like a project file is refused in
one line by every reader, instead of blocking it forever.

The readers run in a process of their own under a time limit: on a FIFO with no writer, a
plain ``open`` blocks, so a reader that forgot the check fails the test by timing out
(naming the reader it was in) instead of hanging the suite.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from forgetting.errors import UsageError
from helpers import REPO, assert_one_line_error, cli_env

RUN = "dataset_mnist_5k__no_dropout_False__seed_1__sorting_file_none__remove_n_0__keep_lowest_n_0"
LIMIT = 60  # seconds: a reader that blocks is killed and the test fails


def in_child(program):
    """Run ``program`` in a fresh Python; its stdout lines, or a failure naming the last reader
    it started if it did not finish within LIMIT seconds."""
    try:
        result = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=cli_env(),
                                capture_output=True, text=True, timeout=LIMIT)
    except subprocess.TimeoutExpired as err:
        started = (err.stdout or b"").decode().strip().splitlines()
        pytest.fail(f"a reader blocked on a FIFO for {LIMIT} s; last line: {started[-1:]}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


# Each reader's call on a FIFO, reported by the child as 'reader' then 'type: message'.
REPORT = """
PATH = {path!r}
print({reader!r}, flush=True)
try:
    {call}
    print("read it")
except Exception as err:
    print(f"{{type(err).__name__}}: {{err}}", flush=True)
"""

READERS = {
    "stats pickle": ("__stats_dict.pkl", "from forgetting.files import safe_pickle; safe_pickle.load(PATH)"),
    "stats arrays": ("__stats_dict.pkl",
                     "from forgetting.scores.stats_arrays import load_run_arrays; load_run_arrays(PATH, 1)"),
    "load_stats": ("__stats_dict.pkl", "import forgetting; forgetting.load_stats(PATH)"),
    "load_sorting": ("sorted.pkl", "import forgetting; forgetting.load_sorting(PATH)"),
    "sorting file": ("sorted.pkl",
                     "import os; from forgetting.data.selection import load_sorted_ids; "
                     "load_sorted_ids(os.path.dirname(PATH), 'sorted', 10)"),
    "resume scalars": ("__resume_state.pt",
                       "from forgetting.files.resume_scalars import read_scalars; read_scalars(PATH)"),
    "resume state": ("__resume_state.pt",
                     "from forgetting.training.resume_state import load_state; load_state(PATH)"),
    "weights": ("__weights_epoch_1.pt", "from forgetting.files.weights import load_weights; load_weights(PATH)"),
    "stats log": ("__resume_stats.bin",
                  "from forgetting.files.stats_log import open_stats_log; open_stats_log(PATH)"),
    "stats log peek": ("__resume_stats.bin", "from forgetting.files.stats_log import peek; peek(PATH)"),
    "best_acc.txt": ("__best_acc.txt",
                     "from forgetting.sweep.results import _read_best_acc_txt; _read_best_acc_txt(PATH)"),
}


def test_every_reader_refuses_a_fifo(tmp_path):
    program, paths = "", {}
    for reader, (suffix, call) in sorted(READERS.items()):
        paths[reader] = path = tmp_path / (suffix if suffix == "sorted.pkl" else RUN + suffix)
        if not path.exists():
            os.mkfifo(path)
        program += textwrap.dedent(REPORT.format(path=str(path), reader=reader, call=call))
    lines = in_child(program)
    assert lines[::2] == sorted(READERS)
    for reader, outcome in zip(lines[::2], lines[1::2]):
        assert outcome == (f"NotRegularFile: {paths[reader]} is a FIFO (named pipe), not a regular file; "
                           "refusing to read it (give the path of the file itself)"), (reader, outcome)


def test_the_ordering_script_refuses_a_fifo_before_reading_anything(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    os.mkfifo(runs / f"{RUN}__stats_dict.pkl")
    try:
        result = subprocess.run([sys.executable, "order_examples_by_forgetting.py", "--input_dir", str(runs),
                                 "--output_dir", str(tmp_path / "out"), "--output_name", "x", "--epochs", "1"],
                                cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail("the ordering script blocked on a FIFO")
    assert_one_line_error(result.returncode, result.stderr, "is a FIFO (named pipe), not a regular file",
                          f"{RUN}__stats_dict.pkl")
    assert not (tmp_path / "out").exists()


def test_open_regular_reads_regular_files_and_refuses_the_rest(tmp_path):
    from forgetting.files import regular

    path = tmp_path / "a.txt"
    path.write_text("text")
    with regular.open_regular(str(path), "r") as handle:
        assert handle.read() == "text"
    with regular.open_regular(str(path)) as handle:
        assert handle.read() == b"text"
    regular.require_regular_file(str(path))
    link = tmp_path / "link"
    link.symlink_to(path)
    regular.require_regular_file(str(link))  # links are followed
    for other, kind in ((tmp_path, "a directory"), ("/dev/null", "a character device")):
        for check in (regular.require_regular_file, regular.open_regular):
            with pytest.raises(regular.NotRegularFile, match=f"is {kind}, not a regular file"):
                check(str(other))
    with pytest.raises(FileNotFoundError):
        regular.open_regular(str(tmp_path / "absent"))
    assert issubclass(regular.NotRegularFile, UsageError) and issubclass(regular.NotRegularFile, ValueError)
