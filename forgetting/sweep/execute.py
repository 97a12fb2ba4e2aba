"""Run the planned commands as Ray tasks: retries, progress, logs, Ctrl-C.

Each run is one Ray task (``--cpus_per_run`` CPUs, ``--gpus_per_run`` GPUs, so Ray packs runs
onto a machine's cores and GPUs) that starts the training script as a child process in the
sweep's working directory, with the Python the Ray worker runs. The child's stdout and stderr
go to ``<output_dir>/logs/<save_fname>.log`` (appended: one header line per attempt); the task
keeps the last lines of its stderr for the failure report.

A failed attempt (non-zero exit, the worker or node lost) is run again up to ``retries``
times; exit 2 is bad input, which another attempt cannot fix. Exit 75 says that another
process (a hand-run, another sweep) holds the run's lock: no failure, the sweep waits until
the lock is free and starts the run again, which then finds it finished and does nothing, or
continues what the other process left. Ctrl-C cancels what has not started and sends SIGTERM
to the running children (through the task), which save their finished epochs; the same sweep
command continues them later.
"""
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional

import ray

from forgetting.files.naming import SWEEP_LOG_DIR
from forgetting.files.run_lock import RunHeld, is_held
from forgetting.sweep.grid import shell_line
from forgetting.sweep.progress import SweepProgress

USAGE_EXIT = 2        # the scripts' bad-input exit (forgetting/errors.py): not retried
HELD_EXIT = RunHeld.exit_status  # another process trains the run: waited for
STDERR_TAIL = 10      # stderr lines kept for the failure report
STOP_GRACE_S = 300    # how long Ctrl-C waits for running runs to save


@dataclasses.dataclass
class Attempt:
    """What one task reports: the child's exit status (None: it could not start, or its
    worker was lost) and the last lines of its stderr."""

    returncode: Optional[int]
    stderr_tail: List[str]


def _pump(stream, log, tail):
    """Copy the child's stderr into the log, keeping the last lines."""
    for raw in iter(stream.readline, b""):
        log.write(raw)
        log.flush()
        tail.append(raw.decode(errors="replace").rstrip("\n"))


def run_command(argv, cwd, log_path, attempt):
    """Run ``python argv...`` in ``cwd``, appending its output to ``log_path``; the body of a
    Ray task. KeyboardInterrupt (``ray.cancel``) sends the child SIGTERM and waits for it."""
    log_path = os.path.join(cwd, log_path)  # a relative --output_dir means the sweep's directory
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    tail = collections.deque(maxlen=STDERR_TAIL)
    with open(log_path, "ab") as log:
        log.write(f"=== attempt {attempt}: {shell_line(argv)}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen([sys.executable, *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.PIPE)
        except OSError as err:
            return Attempt(None, [f"could not start {sys.executable}: {err}"])
        pump = threading.Thread(target=_pump, args=(child.stderr, log, tail), daemon=True)
        pump.start()
        try:
            # short waits, not one long one: Ray delivers cancellation between bytecodes
            while child.poll() is None:
                try:
                    child.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            child.send_signal(signal.SIGTERM)
            child.wait()
            raise
        finally:
            pump.join()
    return Attempt(child.returncode, list(tail))


@dataclasses.dataclass
class Failure:
    command: str
    returncode: Optional[int]
    stderr_tail: List[str]
    log_path: str


@dataclasses.dataclass
class SweepResult:
    done: int = 0
    skipped: int = 0
    elsewhere: int = 0  # runs found held by another process, and waited for
    failed: List[Failure] = dataclasses.field(default_factory=list)
    stopped: bool = False


def _worker_lost(err):
    """The attempt of a task whose worker (or node) died: no exit status, Ray's message."""
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return Attempt(None, lines[-STDERR_TAIL:])


def _slots(cpus_per_run, gpus_per_run):
    """How many runs the connected Ray can run at once (for the progress display: the tasks
    beyond that are queued, and Ray does not say which ones run)."""
    have = ray.cluster_resources()
    slots = int(have.get("CPU", 0) // cpus_per_run)
    if gpus_per_run:
        slots = min(slots, int(have.get("GPU", 0) // gpus_per_run))
    return max(slots, 1)


def run_sweep(runs, cpus_per_run, gpus_per_run, retries, cwd, progress_every=30.0):
    """Run every unfinished run of ``runs`` on the connected Ray; a ``SweepResult``.
    ``progress_every``: seconds between progress lines off a terminal (0: no progress)."""
    result = SweepResult()
    slots = _slots(cpus_per_run, gpus_per_run)
    task = ray.remote(run_command).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                           max_retries=0)  # retried here
    progress = SweepProgress(len(runs), progress_every)
    pending = {}  # ref -> (run, attempt number, failed attempts before it, argv)
    waiting = {}  # (output_dir, fname) -> (run, last attempt, failed attempts): held elsewhere
    held = set()  # every (output_dir, fname) found held elsewhere

    def submit(run, attempt, failures):
        argv = run.command(cpus_per_run)
        ref = task.remote(argv, cwd, run.log_path, attempt)
        pending[ref] = (run, attempt, failures, argv)

    def show():
        running = min(len(pending), slots)
        progress.show(done=result.done, skipped=result.skipped, failed=len(result.failed),
                      running=running, queued=len(pending) - running, elsewhere=len(waiting))

    for run in runs:
        if run.finished:
            result.skipped += 1
        else:
            submit(run, 1, 0)
    show()
    try:
        while pending or waiting:
            for key, (run, attempt, failures) in list(waiting.items()):
                if not is_held(os.path.join(cwd, run.output_dir), run.fname):
                    del waiting[key]
                    submit(run, attempt + 1, failures)  # it finds the run as the holder left it
            if not pending:
                time.sleep(1.0)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                run, attempt, failures, argv = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except (ray.exceptions.RayError, OSError) as err:  # worker or node lost
                    outcome = _worker_lost(err)
                if outcome.returncode == 0:
                    result.done += 1
                elif outcome.returncode == HELD_EXIT:
                    progress.write(f"running elsewhere: {run.fname} in {run.output_dir} is being "
                                   "trained by another process; waiting for it")
                    waiting[run.output_dir, run.fname] = (run, attempt, failures)
                    held.add((run.output_dir, run.fname))
                    result.elsewhere = len(held)
                elif outcome.returncode != USAGE_EXIT and failures < retries:
                    submit(run, attempt + 1, failures + 1)
                else:
                    result.failed.append(Failure(shell_line(argv), outcome.returncode,
                                                 outcome.stderr_tail, run.log_path))
            show()
    except KeyboardInterrupt:
        result.stopped = True
        _stop(pending, progress)
    finally:
        progress.close()
    return result


def _stop(pending, progress):
    """Ctrl-C: cancel every task; running ones pass SIGTERM to their run and wait for it."""
    progress.write("stopping: queued runs are cancelled, running ones get SIGTERM and save their "
                   "finished epochs (Ctrl-C again does not speed this up)")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for ref in pending:
            ray.cancel(ref, force=False)
        ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE_S)
    finally:
        signal.signal(signal.SIGINT, previous)


def log_dirs(runs):
    """The distinct ``logs/`` directories of ``runs`` (for the report)."""
    return sorted({os.path.join(run.output_dir, SWEEP_LOG_DIR) for run in runs})
