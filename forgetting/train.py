"""The one training loop both scripts use: batches, statistics, test, durable saving, resume.

Per epoch (SPEC section 3): a fresh ``numpy.random.permutation`` of the training positions
gives the batch order; each batch is an index gather from the device-resident training set;
the per-example statistics are recorded BEFORE the optimiser step; then the test set is
evaluated. At the end of the epoch the statistics are copied to the host once and committed
in a background thread (log record, best checkpoint, resume state, best_acc.txt), which the
next epoch's commit waits for; the legacy stats pickle is refreshed by a child process.
"""
import contextlib
import dataclasses
import functools
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np
import torch

from forgetting import atomic, legacy, resume
from forgetting.errors import UsageError
from forgetting.naming import BEST_ACC_SUFFIX, STATS_SUFFIX
from forgetting.runlog import RunLog
from forgetting.stats import EpochRecorder

EVAL_BATCH = 1000


class SaveFailed(UsageError):
    """A file of the run could not be written (disk full, permissions): the run stops, the
    files of the last committed epoch stay as they were, ``--resume`` continues later."""

    @classmethod
    def from_os_error(cls, err):
        where = f": {err.filename}" if err.filename else ""
        return cls(f"could not save the run's files ({err.strerror or err}{where}); "
                   "free space or fix permissions, then rerun with --resume")


def _os_errors_stop_the_run(function):
    """Any OSError from the run's file work (creating the log, cleaning up, the final pickle)
    is a one-line SaveFailed, like a failed epoch commit, not a traceback."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except OSError as err:
            raise SaveFailed.from_os_error(err) from None

    return wrapped


class RunStopped(Exception):
    """SIGINT/SIGTERM arrived; finished epochs are saved. ``signum`` gives the exit code."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@dataclasses.dataclass
class OutputPaths:
    """Every file a run writes, derived from ``--output_dir`` and the save_fname."""

    stats: str
    best_acc: str
    log: str
    state: str
    checkpoint: Optional[str] = None

    @classmethod
    def for_run(cls, output_dir, save_fname, checkpoint_subdir=None):
        base = os.path.join(output_dir, save_fname)
        checkpoint = None
        if checkpoint_subdir is not None:
            checkpoint = os.path.join(output_dir, "checkpoint", checkpoint_subdir, save_fname + ".t7")
        return cls(base + STATS_SUFFIX, base + BEST_ACC_SUFFIX, base + "__resume_stats.bin",
                   base + "__resume_state.pt", checkpoint)


@dataclasses.dataclass
class TrainingJob:
    """Everything the loop needs. Tensors are already on ``device``; ``train_x``/``train_y``
    are the selected training set in training order, ``train_ids`` their example ids."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable          # (outputs, targets) -> per-example losses
    prepare_train: Callable    # uint8 batch -> model input (normalise, augment)
    prepare_test: Callable     # uint8 batch -> model input (normalise)
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_ids: np.ndarray
    batch_size: int
    epochs: int
    device: torch.device
    paths: OutputPaths
    config: dict               # result-relevant flags not in the file name
    lr_for_epoch: Optional[Callable] = None
    generator: Optional[torch.Generator] = None
    amp: bool = False
    resume: bool = False
    log: Callable = print


def evaluate(job):
    """Test accuracy in percent (eval mode, one host sync)."""
    job.model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=job.device)
    with torch.no_grad(), _autocast(job):
        for start in range(0, len(job.test_y), EVAL_BATCH):
            outputs = job.model(job.prepare_test(job.test_x[start:start + EVAL_BATCH]))
            correct += (outputs.argmax(dim=1) == job.test_y[start:start + EVAL_BATCH]).sum()
    return 100.0 * correct.item() / len(job.test_y)


def _autocast(job):
    if not job.amp:
        return contextlib.nullcontext()
    return torch.autocast(job.device.type, dtype=torch.bfloat16)


def train_epoch(job, recorder, epoch):
    """One pass over the training set in a fresh numpy permutation, recording every example."""
    if job.lr_for_epoch is not None:
        for group in job.optimizer.param_groups:
            group["lr"] = job.lr_for_epoch(epoch)
    job.model.train()
    order = torch.from_numpy(np.random.permutation(len(job.train_y))).to(job.device)
    for batch_index, start in enumerate(range(0, len(order), job.batch_size)):
        positions = order[start:start + job.batch_size]
        targets = job.train_y[positions]
        inputs = job.prepare_train(job.train_x[positions])
        job.optimizer.zero_grad(set_to_none=True)
        with _autocast(job):
            outputs = job.model(inputs)
        losses = job.loss_fn(outputs.float(), targets)
        recorder.record(batch_index, positions, outputs, targets, losses)
        losses.mean().backward()
        job.optimizer.step()


def _cpu_copy(obj, reuse=None):
    """A host snapshot of a (nested) state dict, so saving can overlap the next epoch.

    ``reuse``: an older snapshot of the same structure that nothing reads any more; its
    tensors are overwritten in place where shape and dtype match. Copying ResNet18's model
    and optimizer state into fresh memory took ~40 ms per epoch on the CPU (page faults),
    into reused memory ~16 ms (benchmarks/RESULTS.md, item 3).
    """
    if isinstance(obj, torch.Tensor):
        if (isinstance(reuse, torch.Tensor) and reuse.shape == obj.shape
                and reuse.dtype == obj.dtype and reuse.device.type == "cpu"):
            return reuse.copy_(obj.detach())
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        reuse = reuse if isinstance(reuse, dict) else {}
        return {k: _cpu_copy(v, reuse.get(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        reuse = reuse if isinstance(reuse, (list, tuple)) and len(reuse) == len(obj) else [None] * len(obj)
        return type(obj)(_cpu_copy(v, r) for v, r in zip(obj, reuse))
    return obj


class _Committer:
    """Writes each finished epoch in a background thread, one epoch at a time, in the order
    log record -> best checkpoint -> resume state (the commit point) -> best_acc.txt."""

    def __init__(self, job, log):
        self.job, self.log = job, log
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending = None

    def wait(self):
        """Block until the previous epoch is on disk; a failed write stops the run."""
        if self.pending is not None:
            try:
                self.pending.result()  # a signal here keeps it pending, to be waited for again
            except OSError as err:
                self.pending = None
                raise SaveFailed.from_os_error(err) from None
            self.pending = None

    def submit(self, epoch, stats, best_acc_text, checkpoint, state):
        self.wait()
        self.pending = self.pool.submit(self._commit, epoch, stats, best_acc_text, checkpoint, state)

    def _commit(self, epoch, stats, best_acc_text, checkpoint, state):
        # The checkpoint goes before the resume state (the commit point): a crash between the
        # two re-runs the epoch, which writes the same checkpoint again; the other way round,
        # the best model of the epoch would be lost. best_acc.txt is derived from the state, so
        # it goes after it (and _write_final_pickle rewrites it). So a failed write leaves the
        # resume state and best_acc.txt of the previous epoch as they were.
        paths = self.job.paths
        self.log.append(epoch, stats)
        if checkpoint is not None:
            os.makedirs(os.path.dirname(paths.checkpoint), exist_ok=True)
            with atomic.atomic_open(paths.checkpoint) as handle:
                torch.save(checkpoint, handle)
        resume.save_state(paths.state, state)
        atomic.write_text(paths.best_acc, best_acc_text)


def _copy_weights(job, reuse=None):
    """Host copies of the model's and the optimizer's state, ``(model, optimizer)``, written
    into the tensors of ``reuse`` (an older snapshot that is already on disk) where they fit."""
    reuse = reuse or {}
    return (_cpu_copy(job.model.state_dict(), reuse.get("model")),
            _cpu_copy(job.optimizer.state_dict(), reuse.get("optimizer")))


def _snapshot(job, epochs_done, best_train, best_test, weights):
    """The resume state after ``epochs_done`` epochs, with ``weights`` from ``_copy_weights``."""
    model, optimizer = weights
    return {
        "epochs_done": epochs_done, "legacy_epochs": 0,
        "best_train": best_train, "best_test": best_test, "config": dict(job.config),
        "model": model, "optimizer": optimizer,
        "rng": resume.capture_rng(job.device, job.generator),
    }


def _start_or_resume(job):
    """(log, epochs_done, saved state or None) for a fresh or resumed run."""
    paths = job.paths
    if job.resume and os.path.exists(paths.state):
        state = resume.load_state(paths.state)
        resume.check_same_config(state["config"], job.config, paths.state)
        log = RunLog.open(paths.log)
        if not np.array_equal(log.ids, job.train_ids):
            raise UsageError(f"the training set differs from the one in {paths.log} (did the sorting "
                             "file change?); start over without --resume")
        # Commits append to the log before they save the state, so the log holds at least the
        # committed epochs; fewer means the files do not belong together (copied, restored).
        if os.path.getsize(paths.log) < log.data_offset + state["epochs_done"] * log.record.itemsize:
            raise UsageError(f"{paths.log} holds fewer epochs than the {state['epochs_done']} that "
                             f"{paths.state} says are finished; start over without --resume")
        return log, state["epochs_done"], state
    if job.resume:
        job.log(f"no resume state at {paths.state}; starting from scratch")
    # Starting over: an older run's state must not outlive the log it describes (a kill -9
    # before this run's first commit would otherwise pair it with the new, empty log).
    with contextlib.suppress(FileNotFoundError):
        os.remove(paths.state)
    n_batches = -(-len(job.train_ids) // job.batch_size)
    return RunLog.create(paths.log, job.train_ids, n_batches), 0, None


def _write_final_pickle(job, refresher, state):
    """The complete legacy pickle for the committed epochs, then mark it complete."""
    refresher.stop()  # its older file must not land after ours
    if state is None:
        return
    legacy.write_stats_pickle(job.paths.log, state["epochs_done"], job.paths.stats)
    atomic.write_text(job.paths.best_acc, legacy.best_acc_text(state["best_train"], state["best_test"]))
    state["legacy_epochs"] = state["epochs_done"]
    resume.save_state(job.paths.state, state)


@contextlib.contextmanager
def _stop_on_signals():
    def handler(signum, frame):
        # later signals must not interrupt the saving that this one starts
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda *_: print("still saving the finished epochs; please wait",
                                              file=sys.stderr, flush=True))
        raise RunStopped(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@_os_errors_stop_the_run
def run_training(job):
    """Train ``job.epochs`` epochs (or the rest of them with ``job.resume``), saving as it goes.

    Raises RunStopped, after saving every finished epoch, when SIGINT/SIGTERM arrives.
    """
    log, done, state = _start_or_resume(job)
    for path in dataclasses.astuple(job.paths):  # what a kill -9 left (no writer is alive now)
        if path is not None:
            atomic.remove_stale_temps(path)
    refresher = legacy.BackgroundRefresher(job.paths.log, job.paths.stats)
    if state is not None and done >= job.epochs:
        if state["legacy_epochs"] != done:
            _write_final_pickle(job, refresher, state)
        job.log(f"the run in {job.paths.state} already finished {done} epochs (--epochs "
                f"{job.epochs}); nothing to do. Pass a larger --epochs to extend it.")
        return
    best_train, best_test = 0.0, 0.0
    if state is not None:
        job.model.load_state_dict(state["model"])
        job.optimizer.load_state_dict(state["optimizer"])
        resume.restore_rng(state["rng"], job.device, job.generator)
        best_train, best_test = state["best_train"], state["best_test"]
        job.log(f"resuming after epoch {done} of {job.epochs}")
        refresher.maybe_start(done)  # the legacy pickle may trail after a kill -9
    committer = _Committer(job, log)
    snapshots = [None, None]
    # The test pass only reads the weights, so their host copy runs beside it (CPU and CUDA;
    # inline elsewhere): ~16 ms per epoch off the loop for ResNet18 (benchmarks/RESULTS.md).
    copier = ThreadPoolExecutor(max_workers=1) if job.device.type in ("cpu", "cuda") else None
    recorder = EpochRecorder(len(job.train_ids), job.batch_size, job.device)
    with _stop_on_signals():
        try:
            for epoch in range(done, job.epochs):
                started = time.perf_counter()
                train_epoch(job, recorder, epoch)
                # The loop's own snapshots take turns: the one from two epochs ago is on disk
                # (the last submit waited for it), so its tensors can be overwritten.
                reuse = snapshots[epoch % 2]
                weights = copier.submit(_copy_weights, job, reuse) if copier else None
                test_acc = evaluate(job)
                weights = weights.result() if copier else _copy_weights(job, reuse)
                stats = recorder.to_host(test_acc)
                best_train = max(best_train, float(stats.train_acc.max()))
                improved = job.paths.checkpoint is not None and test_acc > best_test
                best_test = max(best_test, test_acc)
                state = _snapshot(job, epoch + 1, best_train, best_test, weights)
                snapshots[epoch % 2] = state
                checkpoint = None
                if improved:  # the snapshot's model copy: one host copy of the weights, not two
                    checkpoint = {"acc": test_acc, "epoch": epoch, "net": state["model"]}
                committer.submit(epoch, stats, legacy.best_acc_text(best_train, best_test),
                                 checkpoint, state)
                if epoch > done:  # the previous epoch is on disk now (submit waited for it)
                    refresher.maybe_start(epoch)
                job.log(f"epoch {epoch + 1}/{job.epochs} | train acc {stats.train_acc[-1]:.2f}% | "
                        f"test acc {test_acc:.2f}% | {time.perf_counter() - started:.2f} s")
            committer.wait()
        except RunStopped:
            committer.wait()
            _write_final_pickle(job, refresher, _committed(job, state))
            raise
        except SaveFailed:
            # the legacy pickle should hold every committed epoch, if the disk still lets us
            with contextlib.suppress(OSError, UsageError):
                _write_final_pickle(job, refresher, _committed(job, state))
            refresher.stop()
            raise
        except BaseException:
            refresher.stop()
            raise
    _write_final_pickle(job, refresher, state)


def _committed(job, state):
    """The last state known to be on disk (None if no epoch finished)."""
    return resume.load_state(job.paths.state) if os.path.exists(job.paths.state) and state else None
