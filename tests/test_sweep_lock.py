"""The run lock: two processes never train the same run (the second exits 75); a killed holder
leaves nothing stale; ``is_held`` sees the lock without taking it for long."""
import os
import signal
import socket
import subprocess
import textwrap

import pytest

from forgetting.files.naming import RunPaths, lock_path
from forgetting.files.run_lock import RunHeld, hold_run_lock, is_held
from helpers import (MNIST_5K, PYTHON, REPO, TIMEOUT, assert_one_line_error, cli_env,
                     log_records, mnist_fname, snapshot, wait_for)

RUN = [*MNIST_5K, "--epochs", "1", "--remove_n", "3600"]
FNAME = mnist_fname(remove_n=3600)


def start_holder(out_dir, fname):
    """A process that takes the run's lock, says so, and sleeps."""
    code = textwrap.dedent(f"""
        import sys, time
        from forgetting.files.run_lock import hold_run_lock
        with hold_run_lock({str(out_dir)!r}, {fname!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True, env=cli_env())
    assert holder.stdout.readline() == "held\n"
    return holder


def run_mnist(out_dir):
    done = subprocess.run([PYTHON, os.path.join(REPO, "run_mnist.py"), *RUN, "--output_dir",
                           str(out_dir)], capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
def test_a_second_process_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    holder = start_holder(out_dir, FNAME)
    try:
        before = snapshot(out_dir)
        code, _, err = run_mnist(out_dir)
        assert_one_line_error(code, err, FNAME, f"pid {holder.pid}", socket.gethostname(),
                              status=75)
        assert is_held(str(out_dir), FNAME)
        assert snapshot(out_dir) == before  # nothing of the run written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert os.path.exists(lock_path(out_dir, FNAME))  # kill -9: the file stays, the lock does not
    assert not is_held(str(out_dir), FNAME)
    code, out, err = run_mnist(out_dir)
    assert code == 0, out + err
    assert sorted(os.listdir(out_dir)) == sorted(
        FNAME + suffix for suffix in ("__best_acc.txt", "__resume_state.pt", "__resume_stats.bin",
                                      "__run.json", "__stats_dict.pkl"))  # the lock is removed


def test_the_lock_is_per_run_and_released_when_the_block_ends(tmp_path):
    assert not is_held(str(tmp_path), "a")
    with hold_run_lock(str(tmp_path), "a"):
        assert is_held(str(tmp_path), "a") and not is_held(str(tmp_path), "b")
        with hold_run_lock(str(tmp_path), "b"):  # another run: no conflict
            pass
        with pytest.raises(RunHeld, match=f"run a in {tmp_path} is being trained by pid {os.getpid()}"):
            hold_run_lock(str(tmp_path), "a")  # even this process cannot take it twice
        assert is_held(str(tmp_path), "a")  # the probe did not take it over
    assert os.listdir(tmp_path) == []  # and created nothing
    assert not is_held(str(tmp_path), "a")
    with hold_run_lock(str(tmp_path), "a"):
        pass


@pytest.mark.slow
def test_a_sigterm_stopped_run_saves_and_removes_its_lock(tmp_path):
    out_dir = tmp_path / "out"
    run = subprocess.Popen([PYTHON, os.path.join(REPO, "run_mnist.py"), *MNIST_5K, "--epochs", "50",
                            "--output_dir", str(out_dir)], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    paths = RunPaths.for_run(str(out_dir), mnist_fname())
    wait_for(lambda: log_records(paths.stats_log) >= 1, what="the first epoch")
    assert os.path.exists(lock_path(out_dir, mnist_fname()))
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=TIMEOUT)
    assert run.returncode == 143, err
    assert not os.path.exists(lock_path(out_dir, mnist_fname()))
