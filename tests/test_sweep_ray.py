"""sweep.py on Ray, end to end: same files as hand-runs, skips, refusals of other --epochs,
kill -9 and resume, retries, runs held by another process, two sweeps over one grid.

One local Ray for the whole module (started here, 2 CPUs); each sweep is a real
``python sweep.py --address ...`` that joins it, as a sweep joins a cluster; sweeps that
start nothing (dry runs, refusals) run in this process. The runs are mnist_5k, 1-3 epochs.
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
from forgetting.files.run_record import read_record
from forgetting.sweep.plan import saved_epochs
from helpers import (PYTHON, REPO, TIMEOUT, assert_same_files, call_main, mnist_fname,
                     snapshot, wait_for)

import sweep as sweep_script

pytestmark = pytest.mark.slow  # starts Ray and sweeps

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

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


def plan_only(grid, command, *options):
    """sweep.py in this process, for what starts nothing (dry runs, refusals): (code, out, err)."""
    old = os.getcwd()
    os.chdir(REPO)
    try:
        return call_main(sweep_script.main, [*options, "--grid", *grid, "--", *command])
    finally:
        os.chdir(old)


def by_hand(out_dir, *flags):
    """The same run as a user types it (no --threads: run_mnist.py's CPU default is 1)."""
    done = subprocess.run([PYTHON, "run_mnist.py", *SMALL, *flags, "--output_dir", str(out_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr


def run_files(out_dir):
    """The runs' files and their bytes; not the records, which say when and how each ran."""
    return {name: content for name, (content, _, _) in snapshot(out_dir).items()
            if content != "dir" and not name.startswith("logs") and not name.endswith("__run.json")}


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
    for seed in (1, 2):
        record = read_record(RunPaths.for_run(str(tmp_path / "sweep"),
                                              mnist_fname(remove_n=3000, seed=seed)).record)
        assert record["finished"] and record["epochs"] == 2
    log = open(sweep_log_path(str(tmp_path / "sweep"), mnist_fname(remove_n=3000, seed=2))).read()
    assert "epoch 2/2" in log

    before = snapshot(tmp_path / "sweep")
    code, err = sweep(*two_seeds)
    assert code == 0, err
    assert "all 2 runs have finished their epochs; nothing to run" in err
    assert snapshot(tmp_path / "sweep") == before  # no log line, no file touched: no process ran


def test_other_epochs_are_refused_per_run_unless_extend_and_dry_runs_skip_finished(address,
                                                                                 tmp_path):
    out = str(tmp_path / "out")
    command = ["run_mnist.py", *SMALL, "--output_dir", out]
    by_hand(out, "--epochs", "1", "--seed", "1")
    fnames = [mnist_fname(remove_n=3000, seed=seed) for seed in (1, 2)]
    line = [shlex.join(["python", *command, "--epochs", "1", "--seed", str(s)]) for s in (1, 2)]

    code, dry, err = plan_only(["seed=1,2"], [*command, "--epochs", "1"], "--dry_run")
    assert code == 0, err
    assert dry.splitlines() == [f"# finished, not run: {line[0]}", line[1]]

    by_hand(out, "--epochs", "2", "--seed", "2")  # seed 2: 2 epochs, 1 and 2 differ from it
    before = snapshot(out)
    for epochs in ("3", None):  # None: no --epochs, the default 200
        flags = [] if epochs is None else ["--epochs", epochs]
        code, dry, err = plan_only(["seed=1,2"], [*command, *flags], "--dry_run")
        assert code == 2 and dry == ""
        lines = err.splitlines()
        assert len(lines) == 2, err  # one line per run, no traceback
        want = epochs or "200"
        for fname, recorded, got in zip(fnames, ("1", "2"), lines):
            assert got == (f"error: run {fname} in {out} was started with --epochs {recorded} "
                           f"({recorded} done), not the sweep's {want}; give --epochs {recorded}, "
                           f"or --extend to continue it to {want}")
    code, _, err = plan_only(["seed=1,2"], [*command, "--epochs", "2"])  # seed 1 only differs
    assert code == 2 and len(err.splitlines()) == 1 and fnames[0] in err
    assert snapshot(out) == before  # nothing started, nothing touched

    code, dry, err = plan_only(["seed=1,2"], [*command, "--epochs", "2"], "--extend", "--dry_run")
    assert code == 0, err
    two = [shlex.join(["python", *command, "--epochs", "2", "--seed", str(s)]) for s in (1, 2)]
    assert dry.splitlines() == [f"{two[0]} --resume", f"# finished, not run: {two[1]}"]
    code, _, err = plan_only(["seed=1,2"], [*command, "--epochs", "1"], "--extend")
    assert code == 2 and "seed_2" in err and "2 epochs done, more than the sweep's --epochs 1" in err

    code, err = sweep(address, ["seed=1,2"], [*command, "--epochs", "2"], "--extend")
    assert code == 0, err
    assert "1 done, 1 skipped" in err
    log = open(sweep_log_path(out, fnames[0])).read()
    assert "resuming after epoch 1 of 2" in log and "epoch 2/2" in log
    assert read_record(RunPaths.for_run(out, fnames[0]).record)["finished"]

    # a run written before run records: its resume state decides, as before
    os.remove(RunPaths.for_run(out, fnames[1]).record)
    code, dry, err = plan_only(["seed=2"], [*command, "--epochs", "3"], "--dry_run")
    assert code == 0, err
    assert dry == shlex.join(["python", *command, "--epochs", "3", "--seed", "2"]) + " --resume\n"
    code, dry, err = plan_only(["seed=2"], [*command, "--epochs", "2"], "--dry_run")
    assert code == 0 and dry.startswith("# finished, not run: "), err


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
    code, dry, _ = plan_only(["seed=3"], command, "--dry_run")  # as xargs would get it
    assert dry == f"python run_mnist.py {shlex.join(command[1:])} --seed 3 --resume\n"

    code, err = sweep(address, ["seed=3"], command)
    assert code == 0, err
    log = open(sweep_log_path(str(out), fname)).read()
    first, second = log.split("=== attempt 1: ")[1:]  # one attempt per sweep
    assert "epoch 6/6" not in first
    assert second.startswith(f"python run_mnist.py {shlex.join(command[1:])} --seed 3 --threads 1 "
                             "--resume --no_extend\n")
    assert "epoch 6/6" in second and "epoch 1/6" not in second
    by_hand(tmp_path / "hand", "--epochs", "6", "--seed", "3")
    assert_same_files(tmp_path / "hand", out, ignore=[os.path.join("logs", fname + ".log"),
                                                      fname + "__run.json"])


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
    flags = "--threads 1 --resume --no_extend"  # every attempt: the run decides what to do
    assert [a for a in attempts if "--seed 1" in a] == [f"--output_dir out --seed 1 {flags}"] * 3
    assert [a for a in attempts if "--seed 2" in a] == [f"--output_dir out --seed 2 {flags}"]
    assert (f"FAILED (exit 1): python run_mnist.py --output_dir out --seed 1 {flags}\n"
            "    boom on seed 1\n") in err
    assert f"FAILED (exit 2): python run_mnist.py --output_dir out --seed 2 {flags}\n" in err
    assert "0 done, 0 skipped (finished), 2 failed" in err
    log = (tmp_path / "out" / "logs" / (mnist_fname(dataset="mnist", seed=1) + ".log")).read_text()
    assert log.count("training...") == 3 and log.count("=== attempt") == 3


def test_a_run_held_by_another_process_is_waited_for_not_failed(address, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fname = mnist_fname(remove_n=3000, seed=1)
    log = out / "logs" / (fname + ".log")
    with hold_run_lock(str(out), fname):
        running = sweep(address, ["seed=1"], ["run_mnist.py", *SMALL, "--epochs", "1",
                                              "--output_dir", str(out)], background=True)
        wait_for(lambda: log.exists() and f"is being trained by pid {os.getpid()}" in log.read_text(),
                 what="the sweep's run to find the lock held")
    _, err = running.communicate(timeout=TIMEOUT)  # the holder let go without training it
    assert running.returncode == 0, err
    assert f"running elsewhere: {fname} in {out} is being trained by another process" in err
    assert "1 runs: 1 done, 0 skipped (finished), 0 failed, 0 not run, 1 waited for" in err
    assert "FAILED" not in err
    text = log.read_text()
    assert text.count("=== attempt") == 2 and text.count("epoch 1/1 |") == 1


def epoch_lines(out, fname):
    """The epoch lines in a run's sweep log (every sweep's attempts append to it)."""
    return [line.split(" |")[0] for line in open(sweep_log_path(str(out), fname))
            if line.startswith("epoch ")]


def test_two_sweeps_over_one_grid_train_each_run_once(address, tmp_path):
    """Issue 20: the second sweep finds a run that the first is training (held mid-run with
    SIGSTOP, so the overlap is certain), waits for it and does not train it again."""
    out = tmp_path / "out"
    command = ["run_mnist.py", *SMALL, "--epochs", "3", "--output_dir", str(out)]
    fnames = [mnist_fname(remove_n=3000, seed=seed) for seed in (1, 2)]
    sweeps = [sweep(address, ["seed=1,2"], command, background=True)]
    try:
        state = RunPaths.for_run(str(out), fnames[0]).resume_state
        wait_for(lambda: (saved_epochs(state) or 0) >= 1, what="seed 1's first epoch")
        holder = int(open(lock_path(str(out), fnames[0])).read().split()[0])
        os.kill(holder, signal.SIGSTOP)
        try:
            sweeps.append(sweep(address, ["seed=2,1"], command, background=True))
            wait_for(lambda: "is being trained by pid" in open(sweep_log_path(str(out), fnames[0])).read(),
                     what="the second sweep to find seed 1 held")
        finally:
            os.kill(holder, signal.SIGCONT)
        errs = [s.communicate(timeout=TIMEOUT)[1] for s in sweeps]
    finally:
        for s in sweeps:
            if s.poll() is None:
                s.kill()
    for s, err in zip(sweeps, errs):
        assert s.returncode == 0, err
        assert "0 failed, 0 not run" in err and "FAILED" not in err
    assert "1 waited for (running elsewhere)" in errs[1]
    for fname in fnames:
        assert epoch_lines(out, fname) == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]  # once each
        assert read_record(RunPaths.for_run(str(out), fname).record)["finished"]
    assert not (out / "replaced").exists()
