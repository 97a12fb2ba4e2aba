"""A really full disk (issue 20, item 2): a file-size limit (``ulimit -f``) and a small tmpfs,
not an injected error. torch.save's zip writer turns the disk-full error into a RuntimeError
of its own; the run must still stop with the one-line ``could not save the run's files (...)``,
exit 2 (which a sweep does not retry), keep its committed epochs, and ``--resume`` after space
is freed must give the files of an uninterrupted run byte for byte."""
import errno
import json
import os
import shlex
import subprocess

import pytest

from forgetting.files.run_record import result_flags

from helpers import MNIST_5K, PYTHON, REPO, TIMEOUT, assert_same_files, cli_env, file_bytes, load_state, mnist_fname, temp_files

FLAGS = [*MNIST_5K, "--batch_size", 64, "--seed", 6, "--epochs", 3]
NAME = mnist_fname(seed=6)
RECORD = NAME + "__run.json"


def run_limited(out, extra=(), limit_kb=None, default_sigxfsz=False):
    """run_mnist.py with FLAGS in a child process, under ``ulimit -f limit_kb`` if given.
    ``default_sigxfsz``: the process starts with SIGXFSZ's default action (kill), as a
    program that embeds Python or resets its signals would give it."""
    code = "import runpy, signal, sys\n"
    if default_sigxfsz:
        code += "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
    code += "sys.argv[0] = 'run_mnist.py'\nrunpy.run_path('run_mnist.py', run_name='__main__')\n"
    argv = [PYTHON, "-c", code, *map(str, FLAGS), "--output_dir", str(out), *extra]
    command = " ".join(map(shlex.quote, argv))
    if limit_kb is not None:
        command = f"ulimit -f {limit_kb}; exec {command}"
    proc = subprocess.run(["bash", "-c", command], cwd=REPO, env=cli_env(), capture_output=True,
                          text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def assert_save_failed(code, stderr, reason):
    """Exit 2, no traceback, the run's last word the one-line save error naming ``reason``
    and one of the run's files. (A refresh of the stats pickle in its child process may have
    met the full disk first and said so in a warning line of its own.)"""
    assert code == 2, (code, stderr)
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: could not save the run's files (" + reason + ": "), stderr
    assert NAME in lines[-1] and "--resume" in lines[-1]
    assert all(line.startswith(("warning: refreshing", "error: ")) for line in lines), stderr


def assert_same_as_reference(reference, out):
    """Every file of the run byte for byte; the run record's content but for its times.
    (A resume that found no committed epoch started afresh and moved the first attempt's
    files to ``replaced/``.)"""
    aside = [name for name in file_bytes(out) if name.startswith("replaced" + os.sep)]
    assert_same_files(reference, out, ignore=(RECORD, *aside))
    expected, actual = (json.load(open(os.path.join(d, RECORD))) for d in (reference, out))
    for record in (expected, actual):
        record["flags"] = result_flags(record["flags"])  # not --output_dir, --resume
        for time in ("started", "updated", "ended"):
            del record[time]
    assert actual == expected


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("full_disk_reference") / "out"
    code, _, stderr = run_limited(out)
    assert code == 0, stderr
    return str(out)


@pytest.mark.parametrize("default_sigxfsz", [False, True], ids=["python", "sigxfsz_default"])
def test_a_file_size_limit_stops_the_run_with_one_line(reference, tmp_path, default_sigxfsz):
    # 150 KB: the resume state (~190 KB) cannot be written, so the first commit fails
    out = tmp_path / "out"
    code, _, stderr = run_limited(out, limit_kb=150, default_sigxfsz=default_sigxfsz)
    assert_save_failed(code, stderr, os.strerror(errno.EFBIG))
    assert "__resume_state.pt" in stderr.splitlines()[-1]
    assert not os.path.exists(out / (NAME + "__resume_state.pt"))
    assert temp_files(out) == []

    code, stdout, stderr = run_limited(out, ["--resume"])  # the limit lifted
    assert code == 0, stderr
    assert_same_as_reference(reference, str(out))


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 600 KB tmpfs (root only: skipped where mounting is not allowed), unmounted after."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_tmpfs_keeps_the_committed_epochs_and_resume_completes(reference, small_tmpfs):
    # 600 KB hold the first epoch (log 84 KB, state 190 KB, the stats pickle's refresh
    # 140 KB) but not the second one's commit (a second state beside the first)
    out = small_tmpfs / "out"
    code, _, stderr = run_limited(out)
    assert_save_failed(code, stderr, os.strerror(errno.ENOSPC))
    state = load_state(str(out / (NAME + "__resume_state.pt")))
    assert 1 <= state["epochs_done"] < 3
    record = json.load(open(out / RECORD))
    assert record["epochs_done"] == state["epochs_done"] and not record["finished"]
    assert temp_files(out) == []

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)
    code, stdout, stderr = run_limited(out, ["--resume"])
    assert code == 0, stderr
    assert f"resuming after epoch {state['epochs_done']} of 3" in stdout
    assert_same_as_reference(reference, str(out))


def test_a_disk_full_error_that_torch_wraps_is_raised_as_itself(tmp_path, monkeypatch):
    """In-process: the write fails after some bytes, torch.save's zip writer turns that into
    ``RuntimeError: ... unexpected pos``; atomic_open raises the OSError, named after the
    target, and leaves the target and no temporary file."""
    import io

    import torch

    from forgetting.files import atomic

    target = tmp_path / "state.pt"
    target.write_bytes(b"the previous version")
    real_fdopen = os.fdopen

    class FillsUp(io.BufferedWriter):
        written = 0

        def write(self, data):
            FillsUp.written += len(data)
            if FillsUp.written > 2000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(data)

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode, buffering=0)))
    with pytest.raises(OSError) as caught:
        with atomic.atomic_open(str(target)) as handle:
            torch.save({"w": torch.zeros(10_000)}, handle)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_bytes() == b"the previous version"
    assert os.listdir(tmp_path) == ["state.pt"]
