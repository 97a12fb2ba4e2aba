"""The run's stats log: one fixed-size binary record appended per finished epoch.

``<save_fname>__resume_stats.bin`` = a header (magic, n_train, n_batches, the training ids
in training order) followed by one record per epoch::

    loss float32[n] | margin float64[n] | acc uint8[n] | train_acc float64[n_batches] | test_acc float64

Appending is O(n_train) per epoch. Records past the resume state's ``epochs_done`` are
ignored and overwritten, so a crash in the middle of an append loses nothing committed.
The legacy ``__stats_dict.pkl`` is built from this file (forgetting/files/stats_pickle.py).
"""
import os

import numpy as np

from forgetting.files import atomic
from forgetting.errors import UsageError

MAGIC = b"FGTLOG01"
_HEADER = np.dtype([("magic", "S8"), ("n_train", "<i8"), ("n_batches", "<i8")])


def record_dtype(n_train, n_batches):
    """The numpy structured dtype of one epoch record (packed, little-endian)."""
    return np.dtype([("loss", "<f4", (n_train,)), ("margin", "<f8", (n_train,)),
                     ("acc", "u1", (n_train,)), ("train_acc", "<f8", (n_batches,)),
                     ("test_acc", "<f8")])


class StatsLog:
    """Reader/appender of one run's statistics log."""

    def __init__(self, path, ids, n_batches):
        self.path, self.ids, self.n_batches = path, ids, n_batches
        self.record = record_dtype(len(ids), n_batches)
        self.data_offset = _HEADER.itemsize + ids.nbytes

    @classmethod
    def create(cls, path, ids, n_batches):
        """Start a new, empty log (atomically replacing any old one)."""
        ids = np.ascontiguousarray(ids, dtype="<i8")
        header = np.array((MAGIC, len(ids), n_batches), dtype=_HEADER)
        atomic.write_bytes(path, header.tobytes() + ids.tobytes())
        return cls(path, ids, n_batches)

    @classmethod
    def open(cls, path):
        """An existing log, its header checked."""
        try:
            with open(path, "rb") as handle:
                header = np.frombuffer(handle.read(_HEADER.itemsize), dtype=_HEADER)
                if len(header) != 1 or header["magic"][0] != MAGIC:
                    raise ValueError("bad header")
                n_train = int(header["n_train"][0])
                ids = np.frombuffer(handle.read(8 * n_train), dtype="<i8")
                if len(ids) != n_train:
                    raise ValueError("truncated header")
        except (OSError, ValueError) as err:
            raise UsageError(f"{path} is not a readable statistics log ({err}); "
                             "start the run again without --resume") from None
        return cls(path, ids.astype(np.int64), int(header["n_batches"][0]))

    def append(self, epoch, stats):
        """Write epoch ``epoch`` (0-based) as record ``epoch`` and fsync it."""
        rec = np.zeros((), dtype=self.record)
        rec["loss"], rec["margin"], rec["acc"] = stats.loss, stats.margin, stats.acc
        rec["train_acc"], rec["test_acc"] = stats.train_acc, stats.test_acc
        with open(self.path, "r+b") as handle:
            handle.seek(self.data_offset + epoch * self.record.itemsize)
            handle.write(rec.tobytes())
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, epochs):
        """The first ``epochs`` records as a structured array of shape (epochs,)."""
        records = np.fromfile(self.path, dtype=self.record, count=epochs, offset=self.data_offset)
        if len(records) != epochs:
            raise UsageError(f"{self.path} holds {len(records)} epochs but the resume state "
                             f"expects {epochs}; start the run again without --resume")
        return records


def peek(path):
    """``(n_train, n_batches, data_offset, record dtype)`` from the header alone, without
    reading the ids: what a results table needs to read single fields (``read_field``).
    ValueError if ``path`` is no statistics log; OSError if it cannot be read."""
    with open(path, "rb") as handle:
        header = np.frombuffer(handle.read(_HEADER.itemsize), dtype=_HEADER)
    if len(header) != 1 or header["magic"][0] != MAGIC:
        raise ValueError("not a statistics log (bad header)")
    n_train, n_batches = int(header["n_train"][0]), int(header["n_batches"][0])
    if n_train < 0 or n_batches < 0:
        raise ValueError("not a statistics log (negative sizes in its header)")
    return n_train, n_batches, _HEADER.itemsize + 8 * n_train, record_dtype(n_train, n_batches)


def read_field(path, epoch, name):
    """Field ``name`` (e.g. ``'test_acc'``) of record ``epoch`` (0-based), read at its offset
    without reading the rest of the log. ValueError if the log is too short to hold it."""
    _, _, data_offset, record = peek(path)
    field, offset = record.fields[name][:2]
    values = np.fromfile(path, dtype=field, count=1,
                         offset=data_offset + epoch * record.itemsize + offset)
    if len(values) != 1:
        raise ValueError(f"the log ends before epoch {epoch + 1}")
    return values[0]
