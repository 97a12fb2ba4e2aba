"""``Recorder``: the one object that records and saves a run, the training scripts' and a user's.

The training scripts' loop (training/loop.py ``run_training``) and a loop the user writes
both call its ``record`` per batch, BEFORE ``optimizer.step()``, and its ``end_epoch`` once
per epoch; it writes the run files of docs/files.md (the stats log, the original-format
``__stats_dict.pkl``, ``__best_acc.txt``, the resume state and the run record), atomically,
with the resume guarantees of docs/training.md. Per batch it copies into an
``EpochRecorder``'s buffers (training/recorder.py); everything durable is a ``RunSaver``
(training/saver.py) over a ``TrainingJob`` (training/job.py).

A user's loop (``Recorder(...)``: it takes the run's lock and sets an earlier run aside):

    with Recorder("runs", "my_run", train_ids, epochs=3, batch_size=128,
                  model=model, optimizer=optimizer) as rec:
        for epoch in range(rec.epochs_done, 3):      # a resumed run continues here
            for ids, x, y in loader:                 # every training example once per epoch
                optimizer.zero_grad()
                out = model(x)
                rec.record(ids, out, y)              # before the step
                F.cross_entropy(out, y).backward()
                optimizer.step()
            rec.end_epoch(test_acc=evaluate(model))

Contract: batches of ``batch_size`` examples (the last may be smaller) that present every
id of ``train_ids`` once per epoch, in any order (the scripts' uniform order; ``end_epoch``
refuses an epoch that did not). ``record`` waits for nothing on the device: per batch it
only copies into the epoch buffers; once per epoch, ids map to training positions
through a device lookup table built once and the per-example loss is the cross-entropy of
the outputs (unless ``losses`` is given). With ``resume=True`` the run
continues after its last committed epoch: the model, optimizer and the numpy/torch global
RNGs are put back as they were, so a loop that draws its order from them (a shuffling
DataLoader made per epoch) continues as if never stopped. SIGINT/SIGTERM inside the ``with``
block raise ``RunStopped`` after the finished epochs are saved.

The training scripts (``Recorder.for_job(job)``: the script holds the lock and made room)
record by training position: ``begin_epoch`` with the sampler's presentation count,
``record`` with the batch's positions and its per-example losses, ``start_weight_copy``
before the test pass (the host copy of the weights runs beside it), then ``end_epoch``,
which also shows the epoch to the sampler. The commit, resume and close are the same code.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F

from forgetting.errors import UsageError
from forgetting.files.naming import RunPaths, check_name_fits
from forgetting.files.replaced import make_room
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.run_record import new_record
from forgetting.training.job import TrainingJob
from forgetting.training.recorder import EpochRecorder
from forgetting.training.saver import RunSaver

SCRIPT = "custom"   # the run record's "script" for runs written by a Recorder


class Recorder:
    """Records one run of the user's loop into ``output_dir`` under the save_fname ``name``
    (the training scripts' runs: ``for_job``).

    ``train_ids``: the example ids of the training set (ints, any order: the position of an
    id is its index here, as in the scripts' files); ``epochs``: how many the run trains
    (the files say "finished" after that many); ``batch_size``: the loop's batch size;
    ``model``/``optimizer``: saved each epoch in the resume state and restored on resume;
    ``config``: the flags that describe the run (JSON values), kept in the run record's
    ``flags`` and checked on resume like a script's result-changing flags; ``n_test``: the
    test set's size for the record (None: unknown); ``device``: where the outputs are (default:
    the model's), which the epoch's buffers share. Holds the run's lock until ``close``.
    """

    def __init__(self, output_dir, name, train_ids, epochs, batch_size, model, optimizer,
                 device=None, resume=False, config=None, n_test=None, say=print):
        if device is None:   # where the outputs will be: the model's device
            device = next(iter(model.parameters()), torch.zeros(())).device
        device = torch.device(device)
        train_ids = np.asarray(train_ids, dtype=np.int64)
        if train_ids.ndim != 1 or len(train_ids) == 0 or train_ids.min() < 0 \
                or len(np.unique(train_ids)) != len(train_ids):
            raise UsageError("train_ids must be distinct non-negative example ids, one per "
                             "training example")
        os.makedirs(output_dir, exist_ok=True)
        check_name_fits(output_dir, name)
        flags = dict(config or {})
        flags.update(epochs=int(epochs), batch_size=int(batch_size))
        record = new_record(SCRIPT, name, argparse.Namespace(**flags), 0)
        record["n_test"] = None if n_test is None else int(n_test)
        paths = RunPaths.for_run(output_dir, name)
        lock = hold_run_lock(output_dir, name)   # before any file of the run is written
        try:
            make_room(paths, output_dir, name, resume, say)
            job = TrainingJob(
                model=model, optimizer=optimizer, loss_fn=None, prepare_train=None,
                prepare_test=None, train_x=None, train_y=None, test_x=None, test_y=None,
                train_ids=train_ids, batch_size=int(batch_size), epochs=int(epochs),
                device=device, paths=paths, config={"batch_size": int(batch_size)},
                resume=resume, say=say, record=record)
            # example id -> training position; -1 for ids not in the training set
            table = torch.full((int(train_ids.max()) + 1,), -1, dtype=torch.int64)
            table[torch.from_numpy(train_ids)] = torch.arange(len(train_ids))
            self._open(job, lock, table.to(device))
        except BaseException:
            lock.release()
            raise

    @classmethod
    def for_job(cls, job):
        """The training scripts' Recorder for ``job`` (training/loop.py ``TrainingJob``): it
        records by training position, the sampler's, and ``end_epoch`` shows the epoch to
        ``job.sampler``. The caller holds the run's lock and has made room for a fresh run."""
        rec = cls.__new__(cls)
        rec._open(job, None, None)
        return rec

    def _open(self, job, lock, id_table):
        """Start or resume the run's files (the model, optimizer and RNGs are put back), then
        the epoch buffers; ``id_table``: example id -> position, None to record by position."""
        self.job, self.paths, self.device = job, job.paths, job.device
        self._lock, self._id_table, self._saving = lock, id_table, None
        self.saver = RunSaver(job)
        self.epochs_done = self.saver.epochs_done
        self.buffers = EpochRecorder(len(job.train_ids), job.batch_size, job.device,
                                     by_position=job.sampler.presents_each_once)
        self._batch, self._own_losses, self._copying = 0, True, False
        if self.saver.finished():
            self.saver.report_finished()
        else:
            self._saving = self.saver.stop_safely()
            self._saving.__enter__()

    def begin_epoch(self, presentations):
        """The coming epoch presents ``presentations`` examples (the training scripts: the
        sampler's plan; a user's loop need not call it: every training example once)."""
        self.buffers.begin_epoch(presentations)
        self._batch = 0

    def record(self, ids, outputs, targets, losses=None):
        """Keep one batch: its example ``ids`` (ints, CPU or device; a ``for_job`` Recorder:
        training positions on the device), the model's ``outputs`` (logits, B x classes) and
        ``targets``, as computed before the optimiser step; ``losses``: the per-example losses
        if not the cross-entropy of ``outputs`` (give them for every batch of an epoch or for
        none)."""
        if self._batch == 0:
            self._own_losses = losses is None
        elif self._own_losses != (losses is None):
            raise UsageError("record: pass losses= for every batch of an epoch or for none")
        if self._id_table is not None:
            # The ids are kept as they are, in the positions buffer: end_epoch maps the whole
            # epoch to positions and forms the cross-entropy at once (a few ops per epoch, not
            # per batch; the loop pays only the buffers' slice copies).
            ids = torch.as_tensor(ids).to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
        self.buffers.record(self._batch, ids, outputs, targets, losses)
        self._batch += 1

    def start_weight_copy(self):
        """The epoch's optimiser steps are done: start the host copy of the weights for the
        resume state, beside the test pass, which must only read them (optional: ``end_epoch``
        copies them otherwise)."""
        self._refuse_finished()
        if not self._copying:
            self.saver.start_weight_copy(self.epochs_done)
            self._copying = True

    def end_epoch(self, test_acc=None):
        """The epoch ``epochs_done`` is over: (a user's loop) check it presented every training
        example once; show it to the sampler, then hand it to the saver (the files are written
        in a background thread). ``test_acc``: the test accuracy in percent (None: 0.0, for a
        loop without a test set; the files hold a number). Returns the epoch's ``EpochStats``."""
        self._refuse_finished()
        batches, self._batch = self._batch, 0
        if self._id_table is not None:   # before the weight copy: a refused epoch copies nothing
            self._ids_to_positions(batches)
        self.start_weight_copy()
        epoch, self._copying = self.epochs_done, False
        stats = self.buffers.to_host(0.0 if test_acc is None else test_acc)
        presented = self.buffers.epoch_device_stats()
        self.job.sampler.observe(epoch, presented.positions, presented.loss, presented.correct)
        self.saver.commit(epoch, stats)
        self.epochs_done = epoch + 1
        return stats

    def _refuse_finished(self):
        if self._saving is None:
            raise UsageError(f"the run in {self.paths.resume_state} already finished "
                             f"{self.epochs_done} epochs; start the loop at rec.epochs_done")

    def _ids_to_positions(self, batches):
        """A user's epoch of ``batches`` batches: its ids become training positions, checked
        to hold every position once, and (unless ``record`` was given them) the losses are
        the cross-entropy."""
        rec = self.buffers
        n_train = rec.n_train
        if not batches * rec.batch_size >= n_train > (batches - 1) * rec.batch_size:
            raise UsageError(f"epoch {self.epochs_done + 1} recorded {batches} batches; "
                             f"{n_train} examples in batches of {rec.batch_size} make "
                             f"{-(-n_train // rec.batch_size)}")
        table, ids = self._id_table, rec.positions[:n_train]
        inside = (ids >= 0) & (ids < len(table))
        positions = torch.where(inside, table[ids.clamp(0, len(table) - 1)], -1)
        # one host copy per epoch: every training position exactly once
        seen = np.bincount(positions.cpu().numpy() + 1, minlength=n_train + 1)
        if seen[0] or not (seen[1:] == 1).all():
            raise UsageError(f"epoch {self.epochs_done + 1} did not present every training "
                             "example exactly once (ids missing, repeated or not in train_ids)")
        rec.positions[:n_train] = positions
        if self._own_losses:   # row by row, the same numbers as batch by batch
            rec.loss[:n_train] = F.cross_entropy(rec.outputs[:n_train], rec.targets[:n_train],
                                                 reduction="none")
        rec.begin_epoch(n_train)   # the statistics are formed again from the buffers

    def close(self):
        """Wait for the last epoch's files, write the complete stats pickle, release the lock."""
        self._finish(None, None, None)

    def _finish(self, exc_type, exc, tb):
        try:
            if self._saving is not None:
                saving, self._saving = self._saving, None
                saving.__exit__(exc_type, exc, tb)
        finally:
            if self._lock is not None:   # a user's Recorder; the scripts hold their own
                self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._finish(exc_type, exc, tb)
        return False
