"""The child process that keeps the legacy stats pickle within a few epochs of the run.

Rewriting ``__stats_dict.pkl`` costs O(epochs x n_train) (about 0.4 s at 50,000 x 200), too
much for the training path, so ``BackgroundRefresher`` runs
``python -m forgetting.training.refresher STATS_LOG EPOCHS OUT`` now and then, within a CPU
budget; the saver writes the final, complete file itself when the run ends or stops.
"""
import ctypes
import os
import signal
import subprocess
import sys
import time

from forgetting.errors import UsageError
from forgetting.files.stats_pickle import write_stats_pickle


class BackgroundRefresher:
    """Keeps the legacy pickle within a few epochs of the run, in a child process.

    A refresh starts only when none is running and the last one finished at least
    ``idle_factor`` times its own duration ago, so the child uses at most about
    1 / (1 + idle_factor) of one core (it shares the machine with training).
    """

    def __init__(self, stats_log_path, out_path, idle_factor=9.0):
        self.stats_log_path, self.out_path, self.idle_factor = stats_log_path, out_path, idle_factor
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
            # the child imports the installed package (pip install -e .); no path is passed on
            env = dict(os.environ, **{PARENT_PID_VARIABLE: str(os.getpid())})
            self.started = time.monotonic()
            self.child = subprocess.Popen(
                [sys.executable, "-m", "forgetting.training.refresher", self.stats_log_path, str(epochs), self.out_path],
                env=env, stdin=subprocess.DEVNULL)

    def stop(self):
        """Wait for a running refresh (its file is complete either way)."""
        if self.child is not None:
            self.child.wait()
        self._reap()


PARENT_PID_VARIABLE = "FORGETTING_REFRESH_PARENT"
_PR_SET_PDEATHSIG = 1


def _become_refresh_child():
    """Tie this refresh process to the training process that started it.

    - It ignores SIGINT and SIGTERM: Ctrl-C in a terminal (or a scheduler's SIGTERM to the
      whole process group) reaches the child too; the training process handles them, waits
      for this refresh and then writes the final pickle itself.
    - It dies with its parent (Linux): after a kill -9 of the training process an orphaned
      refresh could otherwise rename an OLDER pickle over the one that a ``--resume`` run has
      written since. Killed, it leaves at most a temporary file, which the next run removes.
    """
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if parent is None:  # started by hand, not by BackgroundRefresher
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != int(parent):  # the parent died before the line above took effect
        sys.exit(0)


if __name__ == "__main__":
    _become_refresh_child()
    try:
        write_stats_pickle(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    except (OSError, UsageError) as err:  # disk full, ...: one line, no traceback
        sys.exit(f"error: {err}")
