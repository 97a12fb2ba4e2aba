"""The original's ``__stats_dict.pkl`` and ``__best_acc.txt``, built from the run's log.

Layout (SPEC section 3, loadable with plain ``pickle.load``)::

    {example_id (int): [losses (floats), accs (ints 0/1), margins (floats)], ...,
     'train': [[], running train accuracy after every batch, in percent],
     'test':  [[], test accuracy after every epoch, in percent]}

Rebuilding the pickle costs O(epochs x n_train) (seconds at 50,000 x 200), so during a run
it is refreshed by a separate process (``python -m forgetting.legacy LOG EPOCHS OUT``) that
never blocks training; the final, complete file is written when the run ends or is stopped.
"""
import os
import subprocess
import sys
import time

import numpy as np

from forgetting import atomic
from forgetting.runlog import RunLog


def build_stats_dict(ids, records):
    """The legacy dict from training ``ids`` and the log ``records`` (one per epoch)."""
    losses = records["loss"].T.tolist()       # float32 -> exact Python floats
    accs = records["acc"].T.astype(np.int64).tolist()
    margins = records["margin"].T.tolist()
    stats = {i: [l, a, m] for i, l, a, m in zip(ids.tolist(), losses, accs, margins)}
    stats["train"] = [[], records["train_acc"].reshape(-1).tolist()]
    stats["test"] = [[], records["test_acc"].tolist()]
    return stats


def best_acc_text(records):
    """``train test \\n`` then the best running train and test accuracies (SPEC section 3)."""
    return f"train test \n{float(records['train_acc'].max())} {float(records['test_acc'].max())}"


def write_stats_pickle(log_path, epochs, out_path):
    """Atomically (re)write the legacy pickle holding the log's first ``epochs`` epochs."""
    log = RunLog.open(log_path)
    atomic.write_pickle(out_path, build_stats_dict(log.ids, log.read(epochs)))


class BackgroundRefresher:
    """Keeps the legacy pickle within a few epochs of the run, in a child process.

    A refresh starts only when none is running and the last one finished at least
    ``idle_factor`` times its own duration ago, so the child uses at most about
    1 / (1 + idle_factor) of one core (it shares the machine with training).
    """

    def __init__(self, log_path, out_path, idle_factor=9.0):
        self.log_path, self.out_path, self.idle_factor = log_path, out_path, idle_factor
        self.child = None
        self.started = self.next_start = 0.0

    def _reap(self):
        if self.child is not None and self.child.poll() is not None:
            if self.child.returncode != 0:
                print(f"warning: refreshing {self.out_path} failed (exit {self.child.returncode}); "
                      "it will be written again at the end of the run", file=sys.stderr)
            took = time.monotonic() - self.started
            self.next_start = time.monotonic() + self.idle_factor * took
            self.child = None

    def maybe_start(self, epochs):
        """Start a refresh for the first ``epochs`` epochs if the budget allows; never waits."""
        self._reap()
        if self.child is None and time.monotonic() >= self.next_start:
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                filter(None, [package_root, os.environ.get("PYTHONPATH")])))
            self.started = time.monotonic()
            self.child = subprocess.Popen(
                [sys.executable, "-m", "forgetting.legacy", self.log_path, str(epochs), self.out_path],
                env=env, stdin=subprocess.DEVNULL)

    def stop(self):
        """Wait for a running refresh (its file is complete either way)."""
        if self.child is not None:
            self.child.wait()
        self._reap()


if __name__ == "__main__":
    write_stats_pickle(sys.argv[1], int(sys.argv[2]), sys.argv[3])
