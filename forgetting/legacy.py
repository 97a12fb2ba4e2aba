"""The original's ``__stats_dict.pkl`` and ``__best_acc.txt``, built from the run's log.

Layout (SPEC section 3, loadable with plain ``pickle.load``)::

    {example_id (int): [losses (floats), accs (ints 0/1), margins (floats)], ...,
     'train': [[], running train accuracy after every batch, in percent],
     'test':  [[], test accuracy after every epoch, in percent]}

Rebuilding the pickle costs O(epochs x n_train), so during a run it is refreshed by a
separate process (``python -m forgetting.legacy LOG EPOCHS OUT``) that never blocks training;
the final, complete file is written when the run ends or is stopped.

The file is encoded straight from the log's arrays (``encode_stats_pickle``) rather than by
``pickle.dump`` of the dict: at 50,000 x 200, building the 30 million Python numbers and
pickling them took 2.8 s and ~0.9 GB, encoding takes 0.4 s and a few MB beyond the log's
arrays (benchmarks/RESULTS.md, item 3). The bytes are plain protocol-2 opcodes, so
``pickle.load`` gives exactly ``build_stats_dict``'s dict (same keys in the same order, the
same float bits, ints for the accuracies).
"""
import ctypes
import os
import signal
import subprocess
import sys
import time

import numpy as np

from forgetting import atomic
from forgetting.errors import UsageError
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


def best_acc_text(best_train, best_test):
    """``best_acc.txt``: ``train test \\n``, then ``str()`` of the best running train accuracy
    and of the best test accuracy, no newline at the end (SPEC section 3)."""
    return f"train test \n{best_train} {best_test}"


# Pickle opcodes (protocol 2; see pickletools): the encoder below writes only these.
_PROTO2, _STOP, _MARK = b"\x80\x02", b".", b"("
_EMPTY_DICT, _SETITEMS, _EMPTY_LIST, _APPENDS, _LIST = b"}", b"u", b"]", b"e", b"l"
_BININT, _BININT1, _BINFLOAT, _BINUNICODE = b"J", b"K", b"G", b"X"
_CHUNK = 2048   # examples encoded per write: bounds the encoder's memory to a few MB


def _floats(values):
    """(rows, k) numbers -> (rows, 9k) bytes: BINFLOAT + big-endian double per value."""
    values = np.ascontiguousarray(values, dtype=">f8")
    out = np.empty(values.shape + (9,), dtype=np.uint8)
    out[..., 0] = _BINFLOAT[0]
    out[..., 1:] = values.view(np.uint8).reshape(values.shape + (8,))
    return out.reshape(values.shape[0], -1)


def _list_of(items):
    """(rows, m) encoded items -> (rows, m + 3): EMPTY_LIST MARK items APPENDS."""
    rows = items.shape[0]
    return np.hstack([np.full((rows, 2), np.frombuffer(_EMPTY_LIST + _MARK, np.uint8)), items,
                      np.full((rows, 1), _APPENDS[0], np.uint8)])


def _one_list(values):
    return _list_of(_floats(np.asarray(values, dtype=np.float64).reshape(1, -1))).tobytes()


def _unicode(text):
    data = text.encode("utf-8")
    return _BINUNICODE + len(data).to_bytes(4, "little") + data


def encode_stats_pickle(ids, records, write):
    """Write the pickle of ``build_stats_dict(ids, records)`` through ``write(bytes)``.

    One entry per example: BININT key, then MARK, three lists (losses as BINFLOAT doubles of
    the float32 values, accs as BININT1, margins as BINFLOAT), LIST; all pairs under one
    SETITEMS, then 'train' and 'test'. Ids must fit in a signed 32-bit int (BININT).
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < -2**31 or ids.max() >= 2**31):
        raise ValueError("example ids beyond 32 bits")
    epochs = len(records)
    write(_PROTO2 + _EMPTY_DICT + _MARK)
    for start in range(0, len(ids), _CHUNK):
        part = slice(start, start + _CHUNK)
        rows = len(ids[part])
        key = np.empty((rows, 5), dtype=np.uint8)
        key[:, 0] = _BININT[0]
        key[:, 1:] = ids[part].astype("<i4").view(np.uint8).reshape(rows, 4)
        accs = np.empty((rows, epochs, 2), dtype=np.uint8)
        accs[..., 0] = _BININT1[0]
        accs[..., 1] = records["acc"][:, part].T
        block = np.hstack([
            key, np.full((rows, 1), _MARK[0], np.uint8),
            _list_of(_floats(records["loss"][:, part].T)),
            _list_of(accs.reshape(rows, 2 * epochs)),
            _list_of(_floats(records["margin"][:, part].T)),
            np.full((rows, 1), _LIST[0], np.uint8)])
        write(block.tobytes())
    write(_SETITEMS)
    empty = _EMPTY_LIST
    write(_MARK + _unicode("train") + _MARK + empty + _one_list(records["train_acc"]) + _LIST
          + _unicode("test") + _MARK + empty + _one_list(records["test_acc"]) + _LIST
          + _SETITEMS + _STOP)


def write_stats_pickle(log_path, epochs, out_path):
    """Atomically (re)write the legacy pickle holding the log's first ``epochs`` epochs."""
    log = RunLog.open(log_path)
    records = log.read(epochs)
    try:
        with atomic.atomic_open(out_path) as handle:
            encode_stats_pickle(log.ids, records, handle.write)
    except ValueError:  # ids beyond 32 bits: the slow, general way
        atomic.write_pickle(out_path, build_stats_dict(log.ids, records))


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
                filter(None, [package_root, os.environ.get("PYTHONPATH")])),
                **{PARENT_PID_VARIABLE: str(os.getpid())})
            self.started = time.monotonic()
            self.child = subprocess.Popen(
                [sys.executable, "-m", "forgetting.legacy", self.log_path, str(epochs), self.out_path],
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
