"""Crash safety (issue 5, items 1 and 2): kill -9 and SIGTERM at awkward moments, failed writes,
and ``--resume`` afterwards giving exactly the files of an uninterrupted run.

The training runs are real ``python run_mnist.py`` subprocesses (CPU, one thread: bitwise
reproducible), so the signals hit the process as they would on a cluster.
Failed writes are injected in-process, by replacing one write of the epoch commit with one
that writes part of its bytes and then raises ENOSPC, as a full disk does.
"""
import errno
import io
import os
import signal
import subprocess
import textwrap

import pytest
import numpy as np
import torch

import run_mnist
from forgetting.files import atomic
from forgetting.training import resume_state as resume
from forgetting.files.stats_log import StatsLog
from helpers import (MNIST_5K, PYTHON, REPO, assert_one_line_error, assert_same_files, best_acc_of,
                     call_main, cli_env, epochs_in, load_pickle, load_state, log_records,
                     mnist_fname, prefix_of, process_gone, finish, start, stop_all, temp_files,
                     wait_for)

KILL_FLAGS = [*MNIST_5K, "--batch_size", 32, "--seed", 5, "--epochs", 4]
KILL_NAME = mnist_fname(seed=5)


def paths(out_dir, name=KILL_NAME):
    base = os.path.join(out_dir, name)
    return {"stats": base + "__stats_dict.pkl", "best_acc": base + "__best_acc.txt",
            "log": base + "__resume_stats.bin", "state": base + "__resume_state.pt"}


def assert_every_file_complete(out_dir, name=KILL_NAME):
    """What a crash may leave: each file absent, or complete and loadable."""
    p = paths(out_dir, name)
    state = load_state(p["state"])                       # a torn zip would not load
    assert 0 <= state["legacy_epochs"] <= state["epochs_done"]
    StatsLog.open(p["log"]).read(state["epochs_done"])     # every committed epoch is in the log
    if os.path.exists(p["stats"]):
        stats = load_pickle(p["stats"])                  # plain pickle.load: complete file
        assert epochs_in(stats) <= state["epochs_done"] + 1
    if os.path.exists(p["best_acc"]):
        head, values = open(p["best_acc"]).read().split("\n")
        assert head == "train test " and len([float(v) for v in values.split(" ")]) == 2
    return state


@pytest.fixture(scope="module")
def mnist_runs(tmp_path_factory):
    """An uninterrupted run, a run killed twice with SIGKILL and a run stopped with SIGTERM,
    all with KILL_FLAGS. Returns the three output directories and what the stops left."""
    base = tmp_path_factory.mktemp("crash")
    dirs = {name: str(base / name) for name in ("reference", "killed", "stopped")}
    reference = start([*KILL_FLAGS, "--output_dir", dirs["reference"]])
    killed = start([*KILL_FLAGS, "--output_dir", dirs["killed"]])
    stopped = start([*KILL_FLAGS, "--output_dir", dirs["stopped"]])
    procs = [reference, killed, stopped]
    report = {}
    try:
        log_of = {name: paths(d)["log"] for name, d in dirs.items()}
        # SIGTERM early in the second epoch, right after the first one's commit.
        wait_for(lambda: os.path.exists(paths(dirs["stopped"])["state"]), what="the first commit")
        stopped.send_signal(signal.SIGTERM)
        # kill -9 early in the third epoch, right after the second epoch's commit started
        # (the legacy pickle's refresh child has just been started then).
        wait_for(lambda: log_records(log_of["killed"]) >= 2, what="the second epoch")
        killed.kill()
        report["killed"] = finish(killed)
        report["stopped"] = finish(stopped)
        report["killed_state"] = assert_every_file_complete(dirs["killed"])
        report["reference"] = finish(reference)
        yield dirs, report
    finally:
        stop_all(procs)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_files(mnist_runs):
    dirs, report = mnist_runs
    assert report["reference"][0] == 0, report["reference"]
    assert report["killed"][0] == -signal.SIGKILL
    assert report["killed_state"]["epochs_done"] < 4

    # What a kill -9 in the middle of atomic writes leaves: temporaries of the run's files
    # (removed when the run starts again) and, here, one of an unrelated file (kept).
    out = dirs["killed"]
    p = paths(out)
    planted = [os.path.join(out, "." + os.path.basename(p["stats"]) + ".k9x_2ab7.tmp"),
               os.path.join(out, "." + os.path.basename(p["state"]) + ".0123abcd.tmp")]
    unrelated = os.path.join(out, ".notes.txt.0123abcd.tmp")
    for path in planted + [unrelated]:
        with open(path, "wb") as handle:
            handle.write(b"half a file")

    # Second kill: the resumed run, as soon as its first epoch's record is in the log, i.e.
    # between the log append and the resume state that commits it (or just after).
    records = log_records(p["log"])  # may hold one more record than the state commits
    resumed = start([*KILL_FLAGS, "--output_dir", out, "--resume"])
    try:
        wait_for(lambda: log_records(p["log"]) > records or resumed.poll() is not None,
                 what="the resumed run's first epoch")
        resumed.kill()
        finish(resumed)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert_every_file_complete(out)
    assert not any(os.path.exists(path) for path in planted)
    assert os.path.exists(unrelated)

    code, stdout, stderr = finish(start([*KILL_FLAGS, "--output_dir", out, "--resume"]))
    assert code == 0, stderr
    assert "resuming after epoch" in stdout
    os.remove(unrelated)
    assert_same_files(dirs["reference"], out)  # stats, best_acc, log and state: every byte
    assert temp_files(out) == []


@pytest.mark.slow
def test_sigterm_saves_every_finished_epoch_then_resume_completes(mnist_runs):
    dirs, report = mnist_runs
    code, stdout, stderr = report["stopped"]
    assert code == 128 + signal.SIGTERM == 143, (code, stderr)
    assert "Traceback" not in stderr
    assert "stopped by signal 15" in stderr and "--resume" in stderr
    p = paths(dirs["stopped"])
    state = load_state(p["state"])
    finished = state["epochs_done"]
    assert 1 <= finished < 4 and state["legacy_epochs"] == finished
    reference = load_pickle(paths(dirs["reference"])["stats"])
    stats = load_pickle(p["stats"])
    assert epochs_in(stats) == finished                      # exactly the finished epochs
    assert stats == prefix_of(reference, finished)
    assert open(p["best_acc"]).read() == best_acc_of(stats)
    assert temp_files(dirs["stopped"]) == []

    code, stdout, stderr = finish(start([*KILL_FLAGS, "--output_dir", dirs["stopped"], "--resume"]))
    assert code == 0, stderr
    assert f"resuming after epoch {finished} of 4" in stdout
    assert_same_files(dirs["reference"], dirs["stopped"])


@pytest.mark.slow
def test_a_refresh_child_dies_with_its_killed_parent(tmp_path):
    """An orphaned refresh of the legacy pickle could rename an older pickle over the one a
    --resume run wrote since; so the child dies with the training process. Here the child
    blocks on a FIFO (as if in the middle of its work) until its parent is killed: the
    readers refuse a FIFO (issue 20, item 5), so a sitecustomize on the child's path lets
    its stats-log reader open one as plain ``open`` would, in the refresh child only."""
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("needs Linux /proc")
    fifo = tmp_path / "log.bin"
    os.mkfifo(fifo)
    out = tmp_path / "stats.pkl"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import os
        if os.environ.get("FORGETTING_REFRESH_PARENT"):
            from forgetting.files import regular
            regular.open_regular = lambda path, mode="rb": open(path, mode)
    """))
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    parent_code = textwrap.dedent("""
        import sys, time
        from forgetting.training.refresher import BackgroundRefresher
        refresher = BackgroundRefresher(sys.argv[1], sys.argv[2])
        refresher.maybe_start(1)
        print(refresher.child.pid, flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([PYTHON, "-c", parent_code, str(fifo), str(out)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())

        def blocked_on_the_fifo():
            try:
                with open(f"/proc/{child}/wchan") as handle:
                    return handle.read().strip() == "wait_for_partner"
            except OSError:
                return True

        wait_for(blocked_on_the_fifo, timeout=30, what="the child to reach its work")
        parent.kill()
        parent.wait()
        wait_for(lambda: process_gone(child), timeout=20, what="the orphaned child to die")
        assert not out.exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and not process_gone(child):
            os.kill(child, signal.SIGKILL)


def test_remove_stale_temps_takes_only_the_files_own(tmp_path):
    target = tmp_path / "run__stats_dict.pkl"
    target.write_bytes(b"complete")
    own = [tmp_path / ".run__stats_dict.pkl.abc_1234.tmp", tmp_path / ".run__stats_dict.pkl.zzzzzzzz.tmp"]
    others = [tmp_path / ".run__stats_dict.pkl.abc.tmp", tmp_path / ".run__stats_dict.pkl.x.abc_1234.tmp",
              tmp_path / ".run__best_acc.txt.abc_1234.tmp", tmp_path / "run__stats_dict.pkl.abc_1234.tmp"]
    for path in own + others:
        path.write_bytes(b"partial")
    assert sorted(atomic.remove_stale_temps(str(target))) == sorted(p.name for p in own)
    assert target.read_bytes() == b"complete"
    assert all(p.exists() for p in others) and not any(p.exists() for p in own)
    assert atomic.remove_stale_temps(str(tmp_path / "absent" / "x.pkl")) == []


# ----------------------------------------------------------------------------- failed writes

FAIL_FLAGS = [*MNIST_5K, "--batch_size", 64, "--seed", 6, "--epochs", 3]
FAIL_NAME = mnist_fname(seed=6)
NO_SPACE = os.strerror(errno.ENOSPC)


@pytest.fixture(scope="module")
def fail_reference(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fail_reference") / "out")
    code, _, err = call_main(run_mnist.main, [*FAIL_FLAGS, "--output_dir", out])
    assert code == 0, err
    return out


def assert_equal_nested(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            assert_equal_nested(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_equal_nested(x, y)
    else:
        assert a == b


class DiskFills:
    """From the second epoch's commit on, one kind of write fails partway with ENOSPC.

    ``where``: 'log' (the epoch record: half of it lands in the log), 'state' (the resume
    state: part of the zip lands in the temporary file) or 'best_acc' (after the commit
    point). Records the run's files as they were when the failure struck.
    """

    def __init__(self, monkeypatch, out, where):
        self.out, self.where, self.before, self.failed = out, where, None, False
        self.p = paths(out, FAIL_NAME)
        if where == "log":
            original = StatsLog.append

            def append(log, epoch, stats):
                if epoch < 1:
                    return original(log, epoch, stats)
                self.strike()
                with open(log.path, "r+b") as handle:
                    handle.seek(log.data_offset + epoch * log.record.itemsize)
                    handle.write(b"\x7f" * (log.record.itemsize // 2))
                raise OSError(errno.ENOSPC, NO_SPACE)

            monkeypatch.setattr(StatsLog, "append", append)
        elif where == "state":
            original = torch.save

            def save(obj, handle, *args, **kwargs):
                if not (isinstance(obj, dict) and obj.get("epochs_done", 0) >= 2):
                    return original(obj, handle, *args, **kwargs)
                self.strike()
                handle.write(b"PK\x03\x04" + b"\0" * 1000)
                raise OSError(errno.ENOSPC, NO_SPACE)

            monkeypatch.setattr(resume.torch, "save", save)
        else:
            original = atomic.write_text

            def write_text(path, text):
                if path == self.p["best_acc"] and (self.failed or os.path.exists(path)):
                    self.strike()
                    with atomic.atomic_open(path) as handle:
                        handle.write(text.encode()[:5])
                        raise OSError(errno.ENOSPC, NO_SPACE)
                return original(path, text)

            monkeypatch.setattr(atomic, "write_text", write_text)

    def strike(self):
        if not self.failed:
            self.failed = True
            self.before = {k: open(v, "rb").read() for k, v in self.p.items()
                           if k in ("state", "best_acc")}


@pytest.mark.slow
@pytest.mark.parametrize("where, committed", [("log", 1), ("state", 1), ("best_acc", 2)])
def test_a_failed_write_stops_the_run_and_keeps_the_committed_files(
        fail_reference, tmp_path, monkeypatch, where, committed):
    out = str(tmp_path / "out")
    with monkeypatch.context() as patch:
        disk = DiskFills(patch, out, where)
        code, stdout, stderr = call_main(run_mnist.main, [*FAIL_FLAGS, "--output_dir", out])
    assert disk.failed
    line = assert_one_line_error(code, stderr, "could not save the run's files", NO_SPACE,
                                 "--resume")
    if where != "log":  # a failed write of a named file says which
        assert os.path.basename(disk.p[where]) in line
    p = disk.p
    state = load_state(p["state"])
    assert state["epochs_done"] == committed
    # The committed state, unchanged but for the mark that the pickle now holds its epochs
    # (re-saved after the stop; a failure of that save, as for best_acc, leaves the old mark).
    before = torch.load(io.BytesIO(disk.before["state"]), weights_only=True)
    assert state["legacy_epochs"] in (before["legacy_epochs"], committed)
    state["legacy_epochs"] = before["legacy_epochs"]
    assert_equal_nested(state, before)
    assert open(p["best_acc"], "rb").read() == disk.before["best_acc"]
    # the legacy pickle holds exactly the committed epochs (written once the run stopped)
    reference = load_pickle(paths(fail_reference, FAIL_NAME)["stats"])
    assert load_pickle(p["stats"]) == prefix_of(reference, committed)
    assert temp_files(out) == []

    code, stdout, stderr = call_main(run_mnist.main, [*FAIL_FLAGS, "--output_dir", out, "--resume"])
    assert code == 0, stderr
    assert f"resuming after epoch {committed} of 3" in stdout
    assert_same_files(fail_reference, out)


def test_a_full_disk_before_the_first_epoch_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", no_space)
    code, _, stderr = call_main(run_mnist.main, [*FAIL_FLAGS, "--output_dir", out])
    assert_one_line_error(code, stderr, NO_SPACE, "__resume_stats.bin")
    assert temp_files(out) == []


@pytest.mark.slow
def test_a_refresh_child_writes_the_pickle_of_the_log(tmp_path):
    """The child that the last test kills does its work when its parent lives on."""
    from forgetting.training.refresher import BackgroundRefresher
    from forgetting.training.recorder import EpochStats

    log_path, out = str(tmp_path / "log.bin"), str(tmp_path / "stats.pkl")
    log = StatsLog.create(log_path, np.array([7, 3, 5]), 2)
    for epoch in range(2):
        log.append(epoch, EpochStats(loss=np.array([0.5, 1.5, 2.5], np.float32) + epoch,
                                     acc=np.array([1, 0, epoch], np.uint8),
                                     margin=np.array([0.1, -0.2, 0.3]), train_acc=np.array([50.0, 40.0]),
                                     test_acc=60.0 + epoch))
    refresher = BackgroundRefresher(log_path, out)
    refresher.maybe_start(2)
    refresher.stop()
    assert refresher.child is None
    assert load_pickle(out) == {7: [[0.5, 1.5], [1, 1], [0.1, 0.1]], 3: [[1.5, 2.5], [0, 0], [-0.2, -0.2]],
                                5: [[2.5, 3.5], [0, 1], [0.3, 0.3]], "train": [[], [50.0, 40.0, 50.0, 40.0]],
                                "test": [[], [60.0, 61.0]]}


def test_a_failed_write_of_a_sorting_file_keeps_the_previous_one(tmp_path, monkeypatch):
    import pickle

    import order_examples_by_forgetting

    runs, out = tmp_path / "runs", tmp_path / "sorted"
    runs.mkdir()
    out.mkdir()
    stats = {i: [[0.5, 0.4], [1, i % 2], [0.1, 0.1]] for i in range(6)}
    stats.update(train=[[], [50.0]], test=[[], [50.0]])
    (runs / "dataset_x__seed_1__stats_dict.pkl").write_bytes(pickle.dumps(stats))
    previous = pickle.dumps({"indices": np.arange(6), "forgetting counts": np.zeros(6, np.int64)})
    (out / "order.pkl").write_bytes(previous)

    def dump_part_then_fill(obj, handle, protocol=None):
        handle.write(pickle.dumps(obj, protocol=protocol)[:20])
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(atomic.pickle, "dump", dump_part_then_fill)
    code, _, stderr = call_main(order_examples_by_forgetting.main, [
        "--input_dir", runs, "--output_dir", out, "--output_name", "order", "--epochs", 2])
    assert_one_line_error(code, stderr, "cannot write", str(out / "order.pkl"), NO_SPACE)
    assert (out / "order.pkl").read_bytes() == previous
    assert temp_files(str(out)) == []
