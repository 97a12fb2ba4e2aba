"""sweep.py on Ray, end to end: same files as hand-runs, skips, kill -9 and resume, retries.

One local Ray for the whole module (started here, 2 CPUs); each sweep is a real
``python sweep.py --address ...`` that joins it, as a sweep joins a cluster. The runs are
mnist_5k with most digits removed, so an epoch takes a fraction of a second.
"""
import logging
import os
import shlex
import signal
import subprocess
import textwrap

import pytest

from forgetting.files.naming import RunPaths, lock_path, sweep_log_path
from forgetting.files.run_lock import hold_run_lock
from forgetting.sweep.plan import saved_epochs
from helpers import (PYTHON, REPO, TIMEOUT, assert_same_files, mnist_fname, snapshot,
                     wait_for)

pytestmark = pytest.mark.slow  # starts Ray and sweeps

ray = pytest.importorskip("ray")

SMALL = ["--dataset", "mnist_5k", "--remove_n", "3000", "--no_cuda"]


@pytest.fixture(scope="module")
def address():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def sweep(address, grid, command, *options, cwd=REPO, background=False):
    argv = [PYTHON, os.path.join(REPO, "sweep.py"), "--no_progress", "--address", address,
            *options, "--grid", *grid, "--", *command]
    if background:
        return subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    return done.returncode, done.stderr


def by_hand(out_dir, *flags):
    """The same run as a user types it (no --threads: run_mnist.py's CPU default is 1)."""
    done = subprocess.run([PYTHON, "run_mnist.py", *SMALL, *flags, "--output_dir", str(out_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr


def run_files(out_dir):
    return {name: content for name, (content, _, _) in snapshot(out_dir).items()
            if content != "dir" and not name.startswith("logs")}


def test_sweep_writes_the_hand_runs_files_and_a_rerun_starts_nothing(address, tmp_path):
    two_seeds = (address, ["seed=1,2"], ["run_mnist.py", *SMALL, "--epochs", "2",
                                         "--output_dir", str(tmp_path / "sweep")])
    code, err = sweep(*two_seeds)
    assert code == 0, err
    assert "2 done, 0 skipped" in err
    for seed in (1, 2):
        by_hand(tmp_path / "hand", "--epochs", "2", "--seed", str(seed))
    assert run_files(tmp_path / "sweep") == run_files(tmp_path / "hand")
    assert len(run_files(tmp_path / "sweep")) == 8  # 4 files a run, no lock left behind
    log = open(sweep_log_path(str(tmp_path / "sweep"), mnist_fname(remove_n=3000, seed=2))).read()
    assert "epoch 2/2" in log

    before = snapshot(tmp_path / "sweep")
    code, err = sweep(*two_seeds)
    assert code == 0, err
    assert "all 2 runs have finished their epochs; nothing to run" in err
    assert snapshot(tmp_path / "sweep") == before  # no log line, no file touched: no process ran


def test_a_run_killed_mid_sweep_resumes_on_rerun_byte_identical(address, tmp_path):
    out = tmp_path / "sweep"
    command = ["run_mnist.py", *SMALL, "--epochs", "6", "--output_dir", str(out)]
    fname = mnist_fname(remove_n=3000, seed=3)
    paths = RunPaths.for_run(str(out), fname)
    running = sweep(address, ["seed=3"], command, "--retries", "0", background=True)
    wait_for(lambda: (saved_epochs(paths.resume_state) or 0) >= 2, what="two finished epochs")
    pid = int(open(lock_path(str(out), fname)).read().split()[0])
    os.kill(pid, signal.SIGKILL)
    _, err = running.communicate(timeout=TIMEOUT)
    assert running.returncode == 1, err
    assert f"FAILED (exit -9): python run_mnist.py {shlex.join(command[1:])} --seed 3" in err
    assert 2 <= saved_epochs(paths.resume_state) < 6

    code, err = sweep(address, ["seed=3"], command)
    assert code == 0, err
    log = open(sweep_log_path(str(out), fname)).read()
    first, second = log.split("=== attempt 1: ")[1:]  # one attempt per sweep
    assert "epoch 6/6" not in first
    assert second.startswith(f"python run_mnist.py {shlex.join(command[1:])} --seed 3 --threads 1 "
                             "--resume\n")
    assert "epoch 6/6" in second and "epoch 1/6" not in second
    by_hand(tmp_path / "hand", "--epochs", "6", "--seed", "3")
    assert_same_files(tmp_path / "hand", out, ignore=[os.path.join("logs", fname + ".log")])


FAKE_SCRIPT = textwrap.dedent("""
    # Stands in for run_mnist.py: the sweep reads its flags, but every attempt fails.
    import argparse, sys
    if __name__ != "__main__":  # loaded by sweep.py to check the grid: the real flags
        import importlib.util
        sys.path.insert(0, {repo!r})
        spec = importlib.util.spec_from_file_location("real", {real!r})
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)
        build_parser = real.build_parser
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("--seed", type=int)
        args, _ = parser.parse_known_args()
        with open("attempts.txt", "a") as handle:
            handle.write(" ".join(sys.argv[1:]) + "\\n")
        print("training...")
        print(f"boom on seed {{args.seed}}", file=sys.stderr)
        sys.exit(2 if args.seed == 2 else 1)
""")


def test_a_failed_run_is_retried_with_resume_then_reported(address, tmp_path):
    (tmp_path / "run_mnist.py").write_text(FAKE_SCRIPT.format(
        repo=REPO, real=os.path.join(REPO, "run_mnist.py")))
    code, err = sweep(address, ["seed=1,2"], ["run_mnist.py", "--output_dir", "out"], cwd=tmp_path)
    assert code == 1
    attempts = (tmp_path / "attempts.txt").read_text().splitlines()
    seed_1 = [a for a in attempts if "--seed 1" in a]
    assert seed_1 == ["--output_dir out --seed 1 --threads 1"] + ["--output_dir out --seed 1 "
                                                                   "--threads 1 --resume"] * 2
    assert [a for a in attempts if "--seed 2" in a] == ["--output_dir out --seed 2 --threads 1"]
    assert ("FAILED (exit 1): python run_mnist.py --output_dir out --seed 1 --threads 1 --resume\n"
            "    boom on seed 1\n") in err
    assert "FAILED (exit 2): python run_mnist.py --output_dir out --seed 2 --threads 1\n" in err
    assert "0 done, 0 skipped (finished), 2 failed" in err
    log = (tmp_path / "out" / "logs" / (mnist_fname(dataset="mnist", seed=1) + ".log")).read_text()
    assert log.count("training...") == 3 and log.count("=== attempt") == 3


def test_a_run_held_by_another_process_fails_without_retry(address, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fname = mnist_fname(remove_n=3000, seed=1)
    with hold_run_lock(str(out), fname):
        code, err = sweep(address, ["seed=1"], ["run_mnist.py", *SMALL, "--epochs", "1",
                                                "--output_dir", str(out)])
    assert code == 1
    assert "FAILED (exit 2)" in err and f"is being trained by pid {os.getpid()}" in err
    assert err.count("FAILED") == 1 and "0 done" in err
    assert (tmp_path / "out" / "logs" / (fname + ".log")).read_text().count("=== attempt") == 1
