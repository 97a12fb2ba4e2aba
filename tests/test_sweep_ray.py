"""sweep.py on Ray, end to end: same files as hand-runs, skips, refusals of other --epochs,
kill -9 and resume, retries, runs held by another process, two sweeps over one grid.

One local Ray for the whole module (started here, 2 CPUs); each sweep is a real
``python sweep.py --address ...`` that joins it, as a sweep joins a cluster; sweeps that
start nothing (dry runs, refusals) run in this process. The runs are mnist_5k, 1-3 epochs. The
last tests start the sweep's own Ray beside another one, and join addresses where no Ray
answers.
"""
import glob
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import types

import pytest

import sweep as sweep_script
from forgetting.files.naming import RunPaths, lock_path, sweep_log_path
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.run_record import read_record
from forgetting.sweep.plan import saved_epochs
from helpers import (PYTHON, REPO, TIMEOUT, assert_one_line_error, assert_same_files, call_main,
                     cli_env, mnist_fname, snapshot, wait_for)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray clusters and training processes

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


# ------------------------------------------------------------ its own Ray beside another one

@pytest.fixture
def other_ray():
    """Someone else's Ray on this machine, as ``ray start --head`` leaves it: its address in
    RAY_ADDRESS and in the host's ray_current_cluster file. A temp dir of its own (TMPDIR, short
    for Ray's socket paths) stands for the host's /tmp, so no other Ray here sees it; stopped
    by killing its process group (``ray stop`` would stop every Ray on the machine)."""
    temp = tempfile.mkdtemp(prefix="ray2_", dir="/tmp")
    env = {**cli_env(), "TMPDIR": temp}
    env.pop("RAY_AUTH_MODE", None)  # set in this process by the module's ray.init: as a user has it
    head = subprocess.Popen(
        [os.path.join(os.path.dirname(PYTHON), "ray"), "start", "--head", "--port=0",
         "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address_file = os.path.join(temp, "ray", "ray_current_cluster")
    try:
        wait_for(lambda: head.poll() is not None or os.path.isfile(address_file),
                 what="the other Ray's address file")
        assert head.poll() is None, "ray start --head failed"
        time.sleep(1)  # written once the head is up; let it finish writing
        address = open(address_file).read().strip()
        yield types.SimpleNamespace(env={**env, "RAY_ADDRESS": address}, head=head,
                                    sessions=lambda: glob.glob(os.path.join(temp, "ray", "session_2*")))
    finally:
        _stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_group(leader, grace_s=20):
    """SIGTERM to ``leader``'s process group, SIGKILL after ``grace_s``; wait until it is empty."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30)):
        try:
            os.killpg(leader.pid, sig)
        except ProcessLookupError:
            return
        try:
            leader.wait(timeout=wait_s)  # reap it: a zombie stays in the group
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(leader.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def test_beside_another_ray_the_sweep_starts_its_own_and_joins_it_only_with_address_auto(
        other_ray, tmp_path):
    command = ["run_mnist.py", *SMALL, "--epochs", "1", "--output_dir", str(tmp_path / "out")]
    before = len(other_ray.sessions())
    started = time.monotonic()
    own = subprocess.run([PYTHON, "sweep.py", "--workers", "1", "--progress_every", "1", "--grid",
                          "seed=1", "--", *command], cwd=REPO, env=other_ray.env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    took = time.monotonic() - started
    assert own.returncode == 0, own.stderr
    assert len(other_ray.sessions()) == before + 1  # a Ray of its own, beside the other
    assert other_ray.head.poll() is None            # which still runs
    # the terminal hygiene of a sweep whose stderr is a pipe: no token warning, no bar
    assert "Token authentication" not in own.stderr and "WARNING" not in own.stderr
    assert "\r" not in own.stderr and "Traceback" not in own.stderr
    *progress, summary = own.stderr.splitlines()
    assert summary.startswith("1 runs: 1 done, 0 skipped (finished), 0 failed, 0 not run")
    assert len(progress) <= took + 1
    for line in progress:
        assert re.fullmatch(r"sweep: [01]/1 runs ended \([01] done, 0 skipped, 0 failed\); "
                            r"[01] running, 0 queued; \d+ s", line), line

    # Ray sends its token to an address from RAY_ADDRESS only when told to
    joined = subprocess.run([PYTHON, "sweep.py", "--address", "auto", "--no_progress", "--grid",
                             "seed=2", "--", *command], cwd=REPO,
                            env={**other_ray.env, "RAY_AUTH_MODE": "token"},
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert joined.returncode == 0, joined.stderr
    assert "1 runs: 1 done" in joined.stderr, joined.stderr
    assert len(other_ray.sessions()) == before + 1  # joined RAY_ADDRESS's Ray: no new one


# ------------------------------------------------------------ joining: bounded, interruptible

def test_an_address_where_nothing_listens_is_one_line_after_connect_timeout(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    code, _, err = call_main(sweep_script.main, [
        "--address", f"127.0.0.1:{port}", "--connect_timeout", "2", "--grid", "seed=1", "--",
        os.path.join(REPO, "run_mnist.py"), "--output_dir", tmp_path / "out"])
    assert 2 <= time.monotonic() - started < 60
    assert_one_line_error(code, err, f"nothing answers at 127.0.0.1:{port}", "after 2 s",
                          "ray start --head", "--connect_timeout")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def not_ray():
    """A port that accepts connections and never answers (Ray's client keeps retrying on it);
    the connections accepted so far."""
    server = socket.create_server(("", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for connection in accepted:
        connection.close()


@pytest.mark.parametrize("end", ["ctrl-c", "deadline"])
def test_joining_where_ray_does_not_answer_ends_on_ctrl_c_or_the_deadline(not_ray, tmp_path, end):
    port, accepted = not_ray
    argv = [PYTHON, "sweep.py", "--address", f"127.0.0.1:{port}", "--connect_timeout",
            "300" if end == "ctrl-c" else "3", "--grid", "seed=1", "--", "run_mnist.py",
            "--output_dir", str(tmp_path / "out")]
    # a caught SIGINT here is a default one in the child (as a shell's foreground job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        joining = subprocess.Popen(argv, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    if end == "ctrl-c":
        # the sweep's own probe, then Ray's client: Ray is inside its C++ retry loop
        wait_for(lambda: len(accepted) >= 2 or joining.poll() is not None, what="Ray dialling")
        time.sleep(1)
        joining.send_signal(signal.SIGINT)
        sent = time.monotonic()
    _, err = joining.communicate(timeout=TIMEOUT)
    if end == "ctrl-c":
        assert time.monotonic() - sent < 10
        assert joining.returncode == 130, err
        (line,) = err.splitlines()
        assert line.startswith("interrupted while joining the Ray cluster at ")
        assert line.endswith(f":{port}; nothing was started")
    else:
        assert_one_line_error(joining.returncode, err, f"something answers at 127.0.0.1:{port}",
                              "no Ray cluster joined within 3 s", "--connect_timeout")
    assert not (tmp_path / "out").exists()
