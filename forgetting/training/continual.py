"""Training on tasks in turn (run_continual.py): the task schedule and the per-task table.

The run's training set is task A's examples (positions ``0..task_size-1``) followed by task
B's (``task_size..2*task_size-1``). ``TaskSchedule`` is the loop's sampler
(training/sampling.py): epoch ``e`` trains on task ``tasks[e // epochs_per_task]``, each of
its positions once, in a fresh ``numpy.random.permutation`` from numpy's global generator (as
``UniformOrder``; the resume state's numpy RNG reproduces it). The other task is not
presented, so the stats log is a sampled run's (ragged: each epoch holds one task's examples),
which the ordering script reads.

After each epoch's test pass (``after_test``), it evaluates the model in eval mode on each
task's whole partition, prepared as the test set is (no augmentation), and appends one row to
its table: ``epoch`` (1-based), the task trained in it, each task's accuracy (percent) and mean
loss, and the test set's. The table is the sampler's state, so the resume state holds it and
``--resume`` continues it exactly; ``table_csv`` writes it as ``<save_fname>__tasks.csv``.
"""
import numpy as np
import torch

from forgetting.files.naming import TASK_NAMES
from forgetting.training.loop import evaluate
from forgetting.training.sampling import EpochPlan

TABLE_COLUMNS = ("epoch", "task") + tuple(
    f"{what}_{task}" for task in TASK_NAMES for what in ("acc", "loss")) + ("test_acc", "test_loss")


class TaskSchedule:
    """The sampler of a continual run: one task's positions per epoch (see the module)."""

    presents_each_once = False

    def __init__(self, tasks, epochs_per_task, task_size, say=print):
        self.tasks, self.epochs_per_task, self.task_size = tasks, epochs_per_task, task_size
        self.say = say
        self.table = torch.zeros((0, len(TABLE_COLUMNS)), dtype=torch.float64)

    def task_of(self, epoch):
        """The letter of the task trained in 0-based ``epoch``."""
        return self.tasks[epoch // self.epochs_per_task]

    def span(self, task):
        """``(start, stop)``: the positions of ``task`` in the run's training set."""
        start = TASK_NAMES.index(task) * self.task_size
        return start, start + self.task_size

    def epoch_plan(self, epoch, n_train, device):
        start, _ = self.span(self.task_of(epoch))
        order = np.random.permutation(self.task_size) + start
        return EpochPlan(torch.from_numpy(order).to(device))

    def observe(self, epoch, positions, losses, correct):
        """Nothing to keep from the presentations: the table comes from ``after_test``."""

    def after_test(self, job, epoch, test_acc, test_loss):
        """Evaluate each task's partition after ``epoch``, append the row, say it in one line."""
        row = [epoch + 1, TASK_NAMES.index(self.task_of(epoch))]
        for task in TASK_NAMES:
            start, stop = self.span(task)
            row += evaluate(job, job.train_x[start:stop], job.train_y[start:stop])
        row += [test_acc, test_loss]
        # a new tensor each epoch: the resume state being written holds the previous one
        self.table = torch.cat([self.table, torch.tensor([row], dtype=torch.float64)])
        accs = " | ".join(f"task {task} acc {row[2 + 2 * i]:.2f}%" for i, task in enumerate(TASK_NAMES))
        self.say(f"after epoch {epoch + 1} (trained on task {self.task_of(epoch)}): {accs}")

    def state_dict(self):
        return {"table": self.table}

    def load_state_dict(self, state):
        self.table = state["table"].to(torch.float64)


def table_csv(table):
    """The text of ``<save_fname>__tasks.csv`` for a ``TaskSchedule`` table: a header line
    (``TABLE_COLUMNS``), then one line per epoch; ``task`` as its letter, numbers as Python's
    shortest round-trip ``repr`` (the same bytes for the same values)."""
    lines = [",".join(TABLE_COLUMNS)]
    for row in table.tolist():
        epoch, task, *values = row
        lines.append(",".join([str(int(epoch)), TASK_NAMES[int(task)]] + [repr(v) for v in values]))
    return "\n".join(lines) + "\n"


def read_task_table(path):
    """A ``__tasks.csv`` as a pandas DataFrame (``task`` as its letter)."""
    import pandas as pd

    return pd.read_csv(path, dtype={"task": str})
