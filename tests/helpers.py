"""Helpers shared by the test modules: running the scripts, reading their files, checking
refusals, and the small MNIST in torchvision's raw format.

Not a test module: the tests import it (pytest.ini puts tests/ on sys.path).
"""
import contextlib
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import time

import numpy as np
import torch

from forgetting.files.naming import RECORD_SUFFIX
from forgetting.files.run_record import result_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
TIMEOUT = 300

# A mnist_5k run is 4,000 training digits: ~0.7 s an epoch at batch 32 on one core.
MNIST_5K = ["--dataset", "mnist_5k", "--threads", "1", "--no_cuda"]
# The tiny synthetic CIFAR-10 of conftest.tiny_cifar: 100 training images, 2 batches an epoch,
# with every random stream of the trainer in use (crop/flip and cutout generator, label noise).
CIFAR_RUN = ["--data_augmentation", "--cutout", "--noise_percent_labels", "20", "--batch_size", "50",
             "--threads", "1", "--no-cuda"]
CIFAR_FNAME = ("dataset_cifar10__data_augmentation_True__cutout_True__seed_1__sorting_file_none"
               "__remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_20"
               "__noise_percent_pixels_0__noise_std_pixels_0")
TEMP_FILE = re.compile(r"\..*\.[a-z0-9_]{8}\.tmp$")

# Where device tests run: the CPU always, and whichever GPU this machine has.
DEVICES = ["cpu"]
if torch.cuda.is_available():
    DEVICES.append("cuda")
if torch.backends.mps.is_available():
    DEVICES.append("mps")


def mnist_fname(dataset="mnist_5k", no_dropout=False, seed=1, sorting_file="none", remove_n=0,
                keep_lowest_n=0):
    """run_mnist.py's ``save_fname`` for these flag values (docs/flags.md#file-names)."""
    return (f"dataset_{dataset}__no_dropout_{no_dropout}__seed_{seed}__sorting_file_{sorting_file}__"
            f"remove_n_{remove_n}__keep_lowest_n_{keep_lowest_n}")


# ----------------------------------------------------------------------------- running the scripts

def cli_env():
    """The environment for a script in a child process: the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return env


def run_script(script, *args, cwd=REPO, must_succeed=False):
    """``python <script> args...`` in a child process, as users run it (the repository's
    ``script``, run from ``cwd``): the CompletedProcess, output as text. ``must_succeed``:
    fail the test, showing stderr, unless it exits 0."""
    result = subprocess.run([PYTHON, os.path.join(REPO, script), *map(str, args)], cwd=cwd,
                            env=cli_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0 or not must_succeed, result.stderr
    return result


def run_into_closed_pipe(script, *args, lines_read=0, cwd=REPO):
    """``python <script> args... | head -n lines_read``: the child's stdout is read for
    ``lines_read`` lines, then closed while the child runs. (exit code, lines read, stderr)."""
    child = subprocess.Popen([PYTHON, os.path.join(REPO, script), *map(str, args)], cwd=cwd,
                             env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lines = [child.stdout.readline() for _ in range(lines_read)]
    child.stdout.close()
    err = child.stderr.read()
    child.wait(timeout=TIMEOUT)
    return child.returncode, lines, err


def start(args, script="run_mnist.py"):
    """A training script as a child process of its own (signals hit it as on a cluster)."""
    return subprocess.Popen([PYTHON, script, *map(str, args)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_all(procs):
    """Kill and reap every process of ``procs`` still running (a fixture's cleanup, so no run
    outlives the test that started it)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finish(proc):
    """(exit code, stdout, stderr) of a ``start``ed process once it ends."""
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def call_main(main, argv):
    """Run a CLI ``main(argv)`` in this process: (exit code, stdout, stderr).

    Restores torch's thread count (--threads changes it for the whole process)."""
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in argv])
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, err, *needles, out="", status=2):
    """Exit ``status`` (bad input: 2), one ``error:`` line on stderr naming every needle, no
    traceback on stderr (nor on stdout, when given)."""
    assert code == status, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def wait_for(condition, timeout=TIMEOUT, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def process_gone(pid):
    """True when ``pid`` has exited (gone, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


# ----------------------------------------------------------------------------- files on disk

def snapshot(directory):
    """Every entry below ``directory``: relative path -> (bytes or 'dir', mtime_ns, mode)."""
    out = {}
    if not os.path.exists(directory):
        return out
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.stat(path)
            if name in files:
                with open(path, "rb") as handle:
                    content = handle.read()
            else:
                content = "dir"
            out[os.path.relpath(path, directory)] = (content, st.st_mtime_ns, st.st_mode)
    return out


def file_bytes(directory):
    """Relative path -> bytes of every file below ``directory``."""
    return {name: value[0] for name, value in snapshot(directory).items() if value[0] != "dir"}


def comparable_record(content):
    """A run record without what differs between two runs of the same statistics: its times
    and the flags that cannot change results (output directory, --resume, --threads, ...)."""
    record = json.loads(content)
    for key in ("started", "updated", "ended"):
        record.pop(key)
    record["flags"] = result_flags(record["flags"])
    return record


def assert_same_files(expected_dir, actual_dir, ignore=()):
    """Byte-for-byte equality of two output trees (same names, same bytes); run records
    (``__run.json``) are compared without their times and directories (``comparable_record``)."""
    expected = {k: v for k, v in file_bytes(expected_dir).items() if k not in ignore}
    actual = {k: v for k, v in file_bytes(actual_dir).items() if k not in ignore}
    assert sorted(actual) == sorted(expected)
    different = [name for name in expected if expected[name] != actual[name]
                 and not (name.endswith(RECORD_SUFFIX) and
                          comparable_record(expected[name]) == comparable_record(actual[name]))]
    assert not different, f"files differ from the uninterrupted run's: {different}"


def temp_files(directory):
    return [name for name in file_bytes(directory) if TEMP_FILE.search(os.path.basename(name))]


def load_pickle(path):
    """Plain ``pickle.load``, as a user's notebook reads the scripts' files."""
    with open(path, "rb") as handle:
        return pickle.load(handle)


def dump_pickle(path, obj, protocol=2):
    """Write ``obj`` as the original (Python 2 era) scripts did: protocol 2 by default."""
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


def load_state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def log_records(path):
    """How many epoch records the run's statistics log holds (0 if it does not exist yet)."""
    from forgetting.files.stats_log import open_stats_log

    try:
        return open_stats_log(path).records_on_disk()
    except Exception:  # not there yet, or being created
        return 0


# ----------------------------------------------------------------------------- stats dicts

def example_keys(stats):
    return [k for k in stats if k not in ("train", "test")]


def epochs_in(stats):
    return len(stats["test"][1])


def prefix_of(stats, epochs):
    """What the stats dict ``stats`` held after its first ``epochs`` epochs."""
    n_batches = len(stats["train"][1]) // epochs_in(stats)
    out = {k: [v[0][:epochs], v[1][:epochs], v[2][:epochs]] for k, v in stats.items()
           if k not in ("train", "test")}
    out["train"] = [[], stats["train"][1][:epochs * n_batches]]
    out["test"] = [[], stats["test"][1][:epochs]]
    return out


def best_acc_of(stats):
    return f"train test \n{max(stats['train'][1])} {max(stats['test'][1])}"


# ----------------------------------------------------------------------------- a small MNIST

def write_idx(path, array, magic):
    """One file in the IDX format MNIST ships in: big-endian magic, big-endian dims, bytes."""
    with open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic))
        for dim in array.shape:
            handle.write(struct.pack(">I", dim))
        handle.write(array.astype(np.uint8).tobytes())


def write_small_mnist(root, n_train=300, n_test=100, seed=0):
    """Random digits as torchvision's uncompressed raw files under ``root/MNIST/raw``;
    returns the arrays written (uint8 images (N, 28, 28) and labels)."""
    rng = np.random.default_rng(seed)
    raw = os.path.join(root, "MNIST", "raw")
    os.makedirs(raw)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    write_idx(os.path.join(raw, "train-images-idx3-ubyte"), arrays["train_x"], 0x803)
    write_idx(os.path.join(raw, "train-labels-idx1-ubyte"), arrays["train_y"], 0x801)
    write_idx(os.path.join(raw, "t10k-images-idx3-ubyte"), arrays["test_x"], 0x803)
    write_idx(os.path.join(raw, "t10k-labels-idx1-ubyte"), arrays["test_y"], 0x801)
    return arrays
