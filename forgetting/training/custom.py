"""``Recorder``: the training scripts' recording and saving, for a loop the user writes.

A plain PyTorch loop calls it per batch, BEFORE ``optimizer.step()``, with the example ids,
the outputs (logits) and the targets, and once per epoch; it writes the same run files as
run_mnist.py (docs/files.md: the stats log, the original-format ``__stats_dict.pkl``,
``__best_acc.txt``, the resume state and the run record), atomically, with the same resume
guarantees. It is not a second implementation: the per-batch recording is the scripts'
``EpochRecorder`` (training/recorder.py) and everything durable is their ``RunSaver``
(training/saver.py), over a ``TrainingJob`` holding the user's model and optimizer.

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
only copies into the scripts' epoch buffers; once per epoch, ids map to training positions
through a device lookup table built once and the per-example loss is the cross-entropy of
the outputs (unless ``losses`` is given). With ``resume=True`` the run
continues after its last committed epoch: the model, optimizer and the numpy/torch global
RNGs are put back as they were, so a loop that draws its order from them (a shuffling
DataLoader made per epoch) continues as if never stopped. SIGINT/SIGTERM inside the ``with``
block raise ``RunStopped`` after the finished epochs are saved.
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
from forgetting.training.loop import TrainingJob
from forgetting.training.recorder import EpochRecorder
from forgetting.training.saver import RunSaver

SCRIPT = "custom"   # the run record's "script" for runs written by a Recorder


class Recorder:
    """Records one run of the user's loop into ``output_dir`` under the save_fname ``name``.

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
        self.device = torch.device(device)
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
        self.paths = RunPaths.for_run(output_dir, name)
        self._lock = hold_run_lock(output_dir, name)   # before any file of the run is written
        self._saving = None
        try:
            self._start(output_dir, name, train_ids, epochs, batch_size, model, optimizer,
                        resume, record, say)
        except BaseException:
            self._lock.release()
            raise

    def _start(self, output_dir, name, train_ids, epochs, batch_size, model, optimizer, resume,
               record, say):
        """Under the lock: set an earlier run aside or resume it, then the epoch buffers."""
        make_room(self.paths, output_dir, name, resume, say)
        self.job = TrainingJob(
            model=model, optimizer=optimizer, loss_fn=None, prepare_train=None,
            prepare_test=None, train_x=None, train_y=None, test_x=None, test_y=None,
            train_ids=train_ids, batch_size=int(batch_size), epochs=int(epochs),
            device=self.device, paths=self.paths, config={"batch_size": int(batch_size)},
            resume=resume, say=say, record=record)
        self.saver = RunSaver(self.job)   # resumes: model, optimizer, RNGs put back
        self.epochs_done = self.saver.epochs_done
        self._recorder = EpochRecorder(len(train_ids), int(batch_size), self.device)
        # example id -> training position; -1 for ids not in the training set
        table = torch.full((int(train_ids.max()) + 1,), -1, dtype=torch.int64)
        table[torch.from_numpy(train_ids)] = torch.arange(len(train_ids))
        self._positions = table.to(self.device)
        self._batch, self._own_losses = 0, True
        if self.saver.finished():
            self.saver.report_finished()
        else:
            self._saving = self.saver.stop_safely()
            self._saving.__enter__()

    def record(self, ids, outputs, targets, losses=None):
        """Keep one batch: its example ``ids`` (ints, CPU or device), the model's ``outputs``
        (logits, B x classes) and ``targets``, as computed before the optimiser step;
        ``losses``: the per-example losses if not the cross-entropy of ``outputs`` (give them
        for every batch of an epoch or for none)."""
        if self._batch == 0:
            self._own_losses = losses is None
        elif self._own_losses != (losses is None):
            raise UsageError("record: pass losses= for every batch of an epoch or for none")
        # The ids are kept as they are, in the positions buffer: end_epoch maps the whole
        # epoch to positions and forms the cross-entropy at once (a few ops per epoch, not
        # per batch; the loop pays only the recorder's slice copies).
        ids = torch.as_tensor(ids).to(self.device, non_blocking=True)
        self._recorder.record(self._batch, ids, outputs, targets.to(self.device, non_blocking=True),
                              losses)
        self._batch += 1

    def end_epoch(self, test_acc=None):
        """The epoch ``epochs_done`` is over: check it presented every training example once,
        then hand it to the saver (the files are written in a background thread).
        ``test_acc``: the test accuracy in percent (None: 0.0, for a loop without a test set;
        the files hold a number)."""
        if self._saving is None:
            raise UsageError(f"the run in {self.paths.resume_state} already finished "
                             f"{self.epochs_done} epochs; start the loop at rec.epochs_done")
        rec, batches = self._recorder, self._batch
        n_train = rec.n_train
        self._batch = 0
        if not batches * rec.batch_size >= n_train > (batches - 1) * rec.batch_size:
            raise UsageError(f"epoch {self.epochs_done + 1} recorded {batches} batches; "
                             f"{n_train} examples in batches of {rec.batch_size} make "
                             f"{-(-n_train // rec.batch_size)}")
        ids = rec.positions[:n_train]
        inside = (ids >= 0) & (ids < len(self._positions))
        positions = torch.where(inside, self._positions[ids.clamp(0, len(self._positions) - 1)], -1)
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
        epoch = self.epochs_done
        self.saver.start_weight_copy(epoch)
        self.saver.commit(epoch, rec.to_host(0.0 if test_acc is None else test_acc))
        self.epochs_done = epoch + 1

    def close(self):
        """Wait for the last epoch's files, write the complete stats pickle, release the lock."""
        self._finish(None, None, None)

    def _finish(self, exc_type, exc, tb):
        try:
            if self._saving is not None:
                saving, self._saving = self._saving, None
                saving.__exit__(exc_type, exc, tb)
        finally:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._finish(exc_type, exc, tb)
        return False
