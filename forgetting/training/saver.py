"""Everything that makes a run durable, behind one object: ``RunSaver``.

It owns the run's files (forgetting/files/naming.py ``RunPaths``) and the machinery that
keeps saving off the training path:

- at start, it opens the run's stats log and resume state (``--resume``) or starts them
  afresh, removes what a kill -9 left, and restores the model, optimizer and RNGs;
- per epoch, a host copy of the weights runs beside the test pass (``start_weight_copy``),
  then ``commit`` hands the epoch to a background thread that writes, in this order, the
  stats log record -> best checkpoint -> saved weights (--save_weights_at) -> resume state
  (the commit point) -> the job's side files (``job.side_files``) -> best_acc.txt -> run
  record (forgetting/files/run_record.py);
  host copies reuse the memory of the snapshot from two epochs ago (a two-slot ring);
- the legacy ``__stats_dict.pkl`` is refreshed by a child process (training/refresher.py)
  and written complete when the run ends or is stopped (``stop_safely``);
- checksums: the log's records carry their own crc32 (files/stats_log.py); the run record
  gets the sha256 of the resume state after each commit and of the final stats pickle, taken
  as they are written. ``--resume`` checks the state against the record and the committed log
  records against their crc, and refuses damage in one line (files/run_record.py says which
  state cannot be checked);
- a write that fails (full disk, ``ulimit -f``) is one line, ``SaveFailed``, whatever library
  wrapped the error (files/atomic.py).

Saving costs the loop 13-19 ms per epoch at 50,000 x 200 (benchmarks/RESULTS.md, item 3).
"""
import contextlib
import functools
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from forgetting.errors import UsageError
from forgetting.files import atomic, run_record, stats_log
from forgetting.files.stats_log import SampledStatsLog, StatsLog, open_stats_log
from forgetting.files.stats_pickle import best_acc_text, write_stats_pickle
from forgetting.files.weights import write_weights
from forgetting.training import resume_state
from forgetting.training.refresher import BackgroundRefresher


class SaveFailed(UsageError):
    """A file of the run could not be written (disk full, permissions): the run stops, the
    files of the last committed epoch stay as they were, ``--resume`` continues later."""

    @classmethod
    def from_os_error(cls, err):
        where = f": {err.filename}" if err.filename else ""
        return cls(f"could not save the run's files ({err.strerror or err}{where}); "
                   "free space or fix permissions, then rerun with --resume")


def os_errors_stop_the_run(function):
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


def _copy_weights(job, reuse=None):
    """Host copies of the model's and the optimizer's state, ``(model, optimizer)``, written
    into the tensors of ``reuse`` (an older snapshot that is already on disk) where they fit."""
    reuse = reuse or {}
    return (_cpu_copy(job.model.state_dict(), reuse.get("model")),
            _cpu_copy(job.optimizer.state_dict(), reuse.get("optimizer")))


class _Committer:
    """Writes each finished epoch in a background thread, one epoch at a time, in the order
    stats log record -> best checkpoint -> saved weights -> resume state (the commit point)
    -> best_acc.txt -> run record."""

    def __init__(self, paths, stats_log, run_description):
        self.paths, self.stats_log, self.run_description = paths, stats_log, run_description
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

    def submit(self, epoch, stats, best_acc, checkpoint, state, save_weights, record, side):
        self.wait()
        self.pending = self.pool.submit(self._commit, epoch, stats, best_acc, checkpoint, state,
                                        save_weights, record, side)

    def _commit(self, epoch, stats, best_acc, checkpoint, state, save_weights, record, side):
        # The checkpoint goes before the resume state (the commit point): a crash between the
        # two re-runs the epoch, which writes the same checkpoint again; the other way round,
        # the best model of the epoch would be lost. best_acc.txt is derived from the state, so
        # it goes after it (and the final write rewrites it). So a failed write leaves the
        # resume state and best_acc.txt of the previous epoch as they were. The saved weights
        # go before the commit point for the checkpoint's reason: never lost by a crash.
        self.stats_log.append(epoch, stats)
        if checkpoint is not None:
            os.makedirs(os.path.dirname(self.paths.checkpoint), exist_ok=True)
            with atomic.atomic_open(self.paths.checkpoint) as handle:
                torch.save(checkpoint, handle)
        if save_weights:
            write_weights(self.paths.weights(epoch + 1), epoch + 1, state["model"],
                          self.run_description)
        sha256 = resume_state.save_state(self.paths.resume_state, state)
        _write_side_files(side)  # derived from the state: after it, like best_acc.txt
        atomic.write_text(self.paths.best_acc, best_acc)
        if record is not None:  # after the commit point: may trail it
            record = dict(record, sha256=dict(
                record.get("sha256") or {}, resume_state=run_record.state_entry(sha256, state)))
            run_record.write_record(self.paths.record, record)


def _side_files(job, state):
    """The job's side files for ``state`` (``{path: text}``; none without ``job.side_files``)."""
    return {} if job.side_files is None else job.side_files(state)


def _write_side_files(files):
    for path, text in files.items():
        atomic.write_text(path, text)


@contextlib.contextmanager
def _signals_raise_run_stopped():
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


class RunSaver:
    """The durable side of one run. Construct it before training: it starts or resumes the
    run's files and, when epochs remain, puts the saved model, optimizer and RNGs back into
    ``job``. ``epochs_done`` is where training continues."""

    def __init__(self, job):
        self.job, self.paths = job, job.paths
        # A file past ``ulimit -f`` must fail its write with EFBIG (a one-line SaveFailed),
        # not kill the process: Python ignores SIGXFSZ at start-up, an embedding program or
        # a launcher that resets signals may not.
        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.state_sha256 = None  # of the resume state as --resume read it
        self.stats_log, self.epochs_done, self.state = self._start_or_resume()
        for path in self.paths.written_by_training():  # what a kill -9 left (no writer is alive now)
            atomic.remove_stale_temps(path)
        self.refresher = BackgroundRefresher(self.paths.stats_log, self.paths.stats)
        self.best_train = self.best_test = 0.0
        self.record = self._start_record()
        self.diverged_at = None if self.record is None else self.record["diverged_at_epoch"]
        if job.save_weights_at and job.run_description is None:
            raise ValueError("save_weights_at needs the job's run_description")
        self._save_weights_due_now()
        if self.state is not None and not self.finished():
            self._restore(self.state)

    def _weights_wanted(self, epoch):
        """Whether to write the weights after ``epoch`` epochs: asked for, and not already on
        disk from this run (a resumed run keeps what it wrote before; its weights are the
        same, training being deterministic, so rewriting would only churn the file)."""
        if epoch not in self.job.save_weights_at:  # every epoch asks: the usual answer first
            return False
        path = self.paths.weights(epoch)
        atomic.remove_stale_temps(path)
        return not (self.job.resume and os.path.exists(path))

    def _save_weights_due_now(self):
        """The weights of the epoch training continues from (0 for a fresh run: before the
        first step; a resumed run's last finished epoch, from its saved state, when that run
        did not save them); a note for asked-for epochs already behind us and not on disk."""
        done = self.epochs_done
        if self._weights_wanted(done):
            model = self.state["model"] if self.state is not None else _cpu_copy(self.job.model.state_dict())
            write_weights(self.paths.weights(done), done, model, self.job.run_description)
        for epoch in sorted(e for e in self.job.save_weights_at if e < done):
            if not os.path.exists(self.paths.weights(epoch)):
                self.job.say(f"cannot save the weights of epoch {epoch}: the run in "
                             f"{self.paths.resume_state} is past it; start over without --resume "
                             "to save them")

    def finished(self):
        return self.state is not None and self.epochs_done >= self.job.epochs

    def _start_record(self):
        """The run record as this run starts or continues, written before the first epoch;
        None for a job without ``job.record``. A resumed run keeps its start time and is
        refused when a result-changing flag differs from the record's. A finished run with
        nothing to do keeps its record as it is (it describes where the run trained)."""
        job, state = self.job, self.state
        if job.record is None:
            return None
        previous = None
        if state is not None:
            try:
                previous = run_record.read_record(self.paths.record)
            except ValueError as err:
                job.say(f"rewriting the unreadable run record ({err})")
            if previous is not None:
                run_record.check_resume_flags(previous["flags"], job.record["flags"],
                                              self.paths.record)
                problem = run_record.resume_state_problem(previous, state, self.state_sha256)
                if problem is not None:
                    raise UsageError(f"{self.paths.resume_state} is {problem}; start the run "
                                     "again without --resume")
                if self.finished():
                    return previous
        record = dict(job.record, n_train=len(job.train_ids),
                      train_ids_sha256=run_record.ids_digest(job.train_ids),
                      versions=run_record.versions(), **run_record.describe_host(job.device),
                      started=run_record.utc_now())
        if state is not None:
            presentations, final_test_acc = self._log_totals(self.epochs_done)
            record.update(epochs_done=self.epochs_done,
                          stats_pickle_epochs=state["legacy_epochs"],
                          presentations=presentations, final_test_acc=final_test_acc,
                          best_train_acc=state["best_train"], best_test_acc=state["best_test"],
                          finished=self.finished() and state["legacy_epochs"] == self.epochs_done,
                          # the run goes on: the stats pickle's checksum would go stale
                          sha256={"resume_state": run_record.state_entry(self.state_sha256,
                                                                          state)})
            if previous is not None:
                record.update(started=previous["started"],
                              diverged_at_epoch=previous.get("diverged_at_epoch"))
        record["updated"] = run_record.utc_now()
        run_record.write_record(self.paths.record, record)
        return record

    def _log_totals(self, done):
        """(presentations, last test accuracy) of the first ``done`` epochs, from the stats log."""
        if done == 0:
            return 0, None
        if self.stats_log.sampled:
            records = self.stats_log.read(done)
            return sum(len(r["positions"]) for r in records), float(records[-1]["test_acc"])
        return (len(self.job.train_ids) * done,
                float(stats_log.read_field(self.paths.stats_log, done - 1, "test_acc")))

    def report_finished(self):
        """For a run that had nothing left to do: bring a trailing, missing or damaged legacy
        pickle up to date."""
        if self.state["legacy_epochs"] != self.epochs_done or (
                self.record is not None and not self.record["finished"]) or self._pickle_damaged():
            self._write_final_pickle(self.state)
        self.job.say(f"the run in {self.paths.resume_state} already finished {self.epochs_done} "
                     f"epochs (--epochs {self.job.epochs}); nothing to do. Pass a larger --epochs "
                     "to extend it.")

    def _pickle_damaged(self):
        """Whether the stats pickle is missing or differs from its checksum in the record."""
        if not os.path.exists(self.paths.stats):
            return True
        return self.record is not None and run_record.pickle_problem(
            self.record, lambda: run_record.file_sha256(self.paths.stats)) is not None

    def _start_or_resume(self):
        """(stats log, epochs done, saved state or None) for a fresh or resumed run."""
        job, paths = self.job, self.paths
        if job.resume and os.path.exists(paths.resume_state):
            state, self.state_sha256 = resume_state.load_state(paths.resume_state,
                                                               with_sha256=True)
            resume_state.check_same_config(state["config"], job.config, paths.resume_state)
            stats_log = open_stats_log(paths.stats_log)
            if stats_log.sampled == job.sampler.presents_each_once:
                raise UsageError(f"{paths.stats_log} was written by a run with another --sampling; "
                                 "start over without --resume")
            if not np.array_equal(stats_log.ids, job.train_ids):
                raise UsageError(f"the training set differs from the one in {paths.stats_log} (did "
                                 "the sorting file change?); start over without --resume")
            # Commits append to the log before they save the state, so the log holds at least
            # the committed epochs; fewer means the files do not belong together (copied, restored).
            done = state["epochs_done"]
            if not stats_log.holds(done):
                raise UsageError(f"{paths.stats_log} holds fewer epochs than the "
                                 f"{done} that {paths.resume_state} says are "
                                 "finished; start over without --resume")
            # Records past the state's epochs are overwritten, damaged or not. A damaged one
            # before it cannot be rolled back to exactly: only the latest state is kept.
            intact = stats_log.intact(done)
            if intact < done:
                raise UsageError(f"{paths.stats_log} is damaged from epoch {intact + 1} on (a "
                                 f"record fails its checksum) but {paths.resume_state} is after "
                                 f"epoch {done}: the run cannot continue from its last intact "
                                 "epoch; start over without --resume")
            return stats_log, done, state
        if job.resume:
            job.say(f"no resume state at {paths.resume_state}; starting from scratch")
        # An earlier run's files were moved aside (files/replaced.py make_room) before this
        # one wrote anything; a state left here would pair with the new, empty log.
        if os.path.exists(paths.resume_state):
            raise ValueError(f"{paths.resume_state} exists: call make_room before a fresh start")
        if not job.sampler.presents_each_once:
            return SampledStatsLog.create(paths.stats_log, job.train_ids), 0, None
        n_batches = -(-len(job.train_ids) // job.batch_size)
        return StatsLog.create(paths.stats_log, job.train_ids, n_batches), 0, None

    def _restore(self, state):
        job = self.job
        job.model.load_state_dict(state["model"])
        job.optimizer.load_state_dict(state["optimizer"])
        resume_state.restore_rng(state["rng"], job.device, job.generator)
        if "sampler" in state:
            job.sampler.load_state_dict(state["sampler"])
        self.best_train, self.best_test = state["best_train"], state["best_test"]
        job.say(f"resuming after epoch {self.epochs_done} of {job.epochs}")
        self.refresher.maybe_start(self.epochs_done)  # the legacy pickle may trail after a kill -9

    @contextlib.contextmanager
    def stop_safely(self):
        """Around the epoch loop: SIGINT/SIGTERM raise RunStopped after the finished epochs are
        saved; on any exit the legacy pickle holds every committed epoch if the disk allows."""
        self.committer = _Committer(self.paths, self.stats_log, self.job.run_description)
        self.snapshots = [None, None]
        # The test pass only reads the weights, so their host copy runs beside it (CPU and
        # CUDA; inline elsewhere): ~16 ms per epoch off the loop for ResNet18 (RESULTS.md).
        self.copier = (ThreadPoolExecutor(max_workers=1)
                       if self.job.device.type in ("cpu", "cuda") else None)
        self.weights = None
        with _signals_raise_run_stopped():
            try:
                yield self
                self.committer.wait()
            except RunStopped:
                self.committer.wait()
                self._write_final_pickle(self._reload_committed_state())
                raise
            except SaveFailed:
                # the legacy pickle should hold every committed epoch, if the disk still lets us
                with contextlib.suppress(OSError, UsageError):
                    self._write_final_pickle(self._reload_committed_state())
                self.refresher.stop()
                raise
            except BaseException:
                self.refresher.stop()
                raise
        self._write_final_pickle(self.state)

    def start_weight_copy(self, epoch):
        """Begin the host copy of the weights after epoch ``epoch``'s training (call before the
        test pass, which only reads them). The snapshot from two epochs ago is on disk (the last
        commit waited for it), so its memory is reused."""
        reuse = self.snapshots[epoch % 2]
        if self.copier is not None:
            self.weights = self.copier.submit(_copy_weights, self.job, reuse)
        else:
            self.weights = reuse  # copied inline by commit, after the test pass

    def commit(self, epoch, stats):
        """Hand the finished epoch (``EpochStats``, test accuracy included) to the writer
        thread; returns at once unless the previous epoch is still being written."""
        job = self.job
        if self.copier is not None:
            weights = self.weights.result()
        else:
            weights = _copy_weights(job, self.weights)
        if len(stats.train_acc):  # a sampled epoch may present nothing
            self.best_train = max(self.best_train, float(stats.train_acc.max()))
        improved = self.paths.checkpoint is not None and stats.test_acc > self.best_test
        self.best_test = max(self.best_test, stats.test_acc)
        model, optimizer = weights
        state = {
            "epochs_done": epoch + 1, "legacy_epochs": 0,
            "best_train": self.best_train, "best_test": self.best_test, "config": dict(job.config),
            "model": model, "optimizer": optimizer,
            "rng": resume_state.capture_rng(job.device, job.generator),
        }
        sampler_state = job.sampler.state_dict()
        if sampler_state is not None:  # uniform runs: no key, the original state file's bytes
            state["sampler"] = sampler_state
        self.snapshots[epoch % 2] = self.state = state
        checkpoint = None
        if improved:  # the snapshot's model copy: one host copy of the weights, not two
            checkpoint = {"acc": stats.test_acc, "epoch": epoch, "net": model}
        record = self._record_epoch(epoch, stats)
        self.committer.submit(epoch, stats, best_acc_text(self.best_train, self.best_test),
                              checkpoint, state, self._weights_wanted(epoch + 1), record,
                              _side_files(job, state))
        if epoch > self.epochs_done:  # the previous epoch is on disk now (submit waited for it)
            self.refresher.maybe_start(epoch)

    def _record_epoch(self, epoch, stats):
        """The record after epoch ``epoch`` (None without one); says, once, that the run
        diverged at the first epoch whose training loss is not finite. The statistics are kept
        as recorded (as the original did); the readers refuse such runs by default."""
        if self.diverged_at is None and not np.isfinite(stats.loss).all():
            self.diverged_at = epoch + 1
            self.job.say(f"epoch {epoch + 1}: the training loss is not finite: the run diverged "
                         "(its statistics are kept as recorded; a smaller learning rate may help)")
        if self.record is None:
            return None
        self.record = dict(
            self.record, epochs_done=epoch + 1, diverged_at_epoch=self.diverged_at,
            presentations=self.record["presentations"] + len(stats.acc),
            final_test_acc=float(stats.test_acc), best_train_acc=self.best_train,
            best_test_acc=self.best_test, updated=run_record.utc_now())
        return self.record

    def say_totals(self, seconds):
        """One line at the end of a run: presentations made, as a fraction of a uniform run's
        (every example once per epoch), and this session's wall time."""
        done = self.state["epochs_done"] if self.state is not None else 0
        if self.record is not None:
            presentations = self.record["presentations"]
        else:
            presentations = self._log_totals(done)[0]
        uniform = len(self.job.train_ids) * done
        share = f" ({presentations / uniform:.2f} of a uniform run's {uniform})" if uniform else ""
        epochs = f"{done} epoch" + ("" if done == 1 else "s")
        self.job.say(f"{epochs}, {presentations} presentations{share}; {seconds:.1f} s")

    def _reload_committed_state(self):
        """The last state known to be on disk, read back from it (None if no epoch finished)."""
        if self.state is None or not os.path.exists(self.paths.resume_state):
            return None
        return resume_state.load_state(self.paths.resume_state)

    def _write_final_pickle(self, state):
        """The complete legacy pickle for the committed epochs, then mark it complete."""
        self.refresher.stop()  # its older file must not land after ours
        if state is None:
            return
        pickle_sha256 = write_stats_pickle(self.paths.stats_log, state["epochs_done"],
                                           self.paths.stats, digest=self.record is not None)
        atomic.write_text(self.paths.best_acc, best_acc_text(state["best_train"], state["best_test"]))
        state["legacy_epochs"] = state["epochs_done"]
        state_sha256 = resume_state.save_state(self.paths.resume_state, state)
        # a kill -9 between an epoch's commit point and its side files left them an epoch behind
        _write_side_files(_side_files(self.job, state))
        # the record describes the committed epochs only (after a failed commit it is left
        # as the last successful commit wrote it)
        if self.record is not None and self.record["epochs_done"] == state["epochs_done"]:
            now = run_record.utc_now()
            self.record = dict(self.record, stats_pickle_epochs=state["epochs_done"],
                               finished=state["epochs_done"] == self.job.epochs,
                               ended=now, updated=now, sha256={
                                   "resume_state": run_record.state_entry(state_sha256, state),
                                   "stats_pickle": {"sha256": pickle_sha256,
                                                    "epochs": state["epochs_done"]}})
            run_record.write_record(self.paths.record, self.record)
