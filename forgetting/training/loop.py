"""The one training loop the scripts use: train an epoch, evaluate, hand it to the Recorder, say it.

Per epoch (docs/training.md#each-epoch): the sampler gives the batch order (the original's fresh
``numpy.random.permutation``, or a ``--sampling`` plan with per-presentation loss weights);
each batch is an index gather from the device-resident training set; the per-example
statistics are recorded BEFORE the optimiser step; then the test set is evaluated and the
sampler observes the epoch's losses and correctness (on the device). Recording and saving
go through ``forgetting.Recorder`` (training/custom.py), the object a user's own loop calls
too: its ``record`` per batch and ``end_epoch`` per epoch; behind it, durability (resume,
commit thread, legacy pickle, signals) is the ``RunSaver``'s job (training/saver.py).
Progress within an epoch is ``EpochProgress``'s (training/progress.py).

What it says (``job.say``): the original's ``Training on N examples`` once, then per epoch the
original's ``Validation Epoch`` line (0-based epoch, mean test loss, test accuracy; users grep
logs for both) and our one-line summary, which says how many presentations the epoch made.
"""
import contextlib
import sys
import time

import torch

from forgetting.files.naming import SAMPLING_OPTIONS
from forgetting.files.run_record import new_record
from forgetting.training.custom import Recorder
from forgetting.training.progress import EpochProgress
from forgetting.training.sampling import make_sampler
from forgetting.training.saver import RunStopped, os_errors_stop_the_run

EVAL_BATCH = 1000
VALIDATION_LINE = "\n| Validation Epoch #%d\t\t\tLoss: %.4f Acc@1: %.2f%%"   # the original's text


def flag_fields(args, script, fname, paths, device, train_ids, n_test, say, sampler=None):
    """The ``TrainingJob`` fields every training script fills the same way from its parsed
    flags (``--batch_size``, ``--epochs``, ``--resume``, ``--progress_every``,
    ``--save_weights_at``, ``--sampling`` and its options) and its run: ``script`` its file
    name, ``fname`` the save_fname, ``paths`` its RunPaths. The scripts add the rest.
    ``sampler``: the script's own (run_continual.py's task schedule) instead of --sampling's."""
    if sampler is None:
        options = {name: getattr(args, name) for name in SAMPLING_OPTIONS[args.sampling]}
        sampler = make_sampler(args.sampling, len(train_ids), args.epochs, args.seed, device,
                               **options)
    return dict(
        train_ids=train_ids, batch_size=args.batch_size, epochs=args.epochs, device=device,
        paths=paths, resume=args.resume, say=say, progress_every=args.progress_every,
        save_weights_at=tuple(args.save_weights_at),
        record=new_record(script, fname, args, n_test), sampler=sampler)


def _autocast(job):
    if not job.amp:
        return contextlib.nullcontext()
    return torch.autocast(job.device.type, dtype=torch.bfloat16)


def evaluate(job, images=None, labels=None):
    """``(accuracy in percent, mean loss)`` in eval mode, with one host sync, on the test set
    or on ``images``/``labels`` (uint8 images and labels on the device, prepared as the test
    set is: no augmentation)."""
    if images is None:
        images, labels = job.test_x, job.test_y
    job.model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=job.device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=job.device)
    with torch.no_grad(), _autocast(job):
        for start in range(0, len(labels), EVAL_BATCH):
            targets = labels[start:start + EVAL_BATCH]
            outputs = job.model(job.prepare_test(images[start:start + EVAL_BATCH]))
            correct += (outputs.argmax(dim=1) == targets).sum()
            loss_sum += job.loss_fn(outputs.float(), targets).sum()
    # float32 holds the count exactly (test sets are far below 2**24 examples)
    correct, loss_sum = torch.stack([correct.to(torch.float32), loss_sum]).tolist()
    return 100.0 * int(correct) / len(labels), loss_sum / len(labels)


def train_epoch(job, rec, epoch, order, progress=None, weights=None):
    """One pass over the training positions ``order`` (device int64), batch by batch,
    recording every example into the ``Recorder`` ``rec`` before the optimiser step;
    ``progress.batch_done`` after each. ``weights`` (device float32 per entry of ``order``, or
    None) multiply the per-example losses in the step's mean."""
    if job.lr_for_epoch is not None:
        for group in job.optimizer.param_groups:
            group["lr"] = job.lr_for_epoch(epoch)
    job.model.train()
    rec.begin_epoch(len(order))
    for batch_index, start in enumerate(range(0, len(order), job.batch_size)):
        positions = order[start:start + job.batch_size]
        targets = job.train_y[positions]
        inputs = job.prepare_train(job.train_x[positions])
        job.optimizer.zero_grad(set_to_none=True)
        with _autocast(job):
            outputs = job.model(inputs)
        losses = job.loss_fn(outputs.float(), targets)
        rec.record(positions, outputs, targets, losses)
        if weights is None:
            losses.mean().backward()
        else:
            (losses * weights[start:start + job.batch_size]).mean().backward()
        job.optimizer.step()
        if progress is not None:
            progress.batch_done(batch_index + 1)


@os_errors_stop_the_run
def run_training(job):
    """Train ``job.epochs`` epochs (or the rest of them with ``job.resume``), saving as it goes
    through ``forgetting.Recorder`` (training/custom.py), the object a user's loop uses.

    Raises RunStopped, after saving every finished epoch, when SIGINT/SIGTERM arrives.
    """
    with Recorder.for_job(job) as rec:
        if rec.saver.finished():
            return
        run_started = time.perf_counter()
        # A sampler presents a chosen subset (sgd_s: the hardest examples), so the running
        # accuracy over its presentations is not the training set's and may fall while the
        # model improves.
        train_acc_label = ("train acc" if job.sampler.presents_each_once
                           else "train acc on the presented examples")
        job.say('Training on ' + str(len(job.train_ids)) + ' examples')
        for epoch in range(rec.epochs_done, job.epochs):
            started = time.perf_counter()
            plan = job.sampler.epoch_plan(epoch, len(job.train_ids), job.device)
            n_batches = -(-len(plan.order) // job.batch_size)
            with EpochProgress(rec.buffers, epoch, job.epochs, n_batches,
                               job.progress_every) as progress:
                train_epoch(job, rec, epoch, plan.order, progress, plan.weights)
            rec.start_weight_copy()
            test_acc, test_loss = evaluate(job)
            if job.after_test is not None:
                job.after_test(job, epoch, test_acc, test_loss)
            stats = rec.end_epoch(test_acc)
            job.say(VALIDATION_LINE % (epoch, test_loss, test_acc))
            train_acc = f"{stats.train_acc[-1]:.2f}%" if len(stats.train_acc) else "-"
            job.say(f"epoch {epoch + 1}/{job.epochs} | {len(plan.order)} presentations | "
                    f"{train_acc_label} {train_acc} | test acc {test_acc:.2f}% | "
                    f"{time.perf_counter() - started:.2f} s")
    rec.saver.say_totals(time.perf_counter() - run_started)


def run_job(job):
    """Run the training job; on SIGINT/SIGTERM (finished epochs already saved) say how to
    continue and exit with 128 + the signal number, as a shell would report it."""
    try:
        run_training(job)
    except RunStopped as stop:
        print(f"stopped by signal {stop.signum}; finished epochs are saved. Continue with the same "
              "command plus --resume", file=sys.stderr)
        sys.exit(128 + stop.signum)
