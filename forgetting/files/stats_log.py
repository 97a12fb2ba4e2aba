"""The run's stats log: one fixed-size binary record appended per finished epoch.

``<save_fname>__resume_stats.bin`` = a header (magic, n_train, n_batches, the training ids
in training order) followed by one record per epoch::

    loss float32[n] | margin float64[n] | acc uint8[n] | train_acc float64[n_batches] | test_acc float64

Appending is O(n_train) per epoch. Records past the resume state's ``epochs_done`` are
ignored and overwritten, so a crash in the middle of an append loses nothing committed.
The legacy ``__stats_dict.pkl`` is built from this file (forgetting/files/stats_pickle.py).

A run with ``--sampling`` other than uniform presents a varying number of examples per
epoch, some twice, some not at all, so its log (``SampledStatsLog``, magic ``FGTSMP01``, the
same header) holds variable-size records, each in presentation order::

    presentations int64 | n_batches int64 | positions int64[p] | loss float32[p] |
    margin float64[p] | acc uint8[p] | train_acc float64[n_batches] | test_acc float64

(``positions`` index the header's ids). ``open_stats_log`` opens either kind.

Checksums (format 2, magics ``FGTLOG02`` and ``FGTSMP02``): every record is followed by the
crc32 (zlib's, little-endian uint32) of its bytes, the sampled record's two counts included;
reading a record verifies it and a mismatch is a ``DamagedLog`` naming the epoch. The crc of a
50,000-example record costs ~0.2 ms per epoch (benchmarks/RESULTS.md, issue 20). Logs of format 1
(``FGTLOG01``, ``FGTSMP01``: no checksums) still open, read and take appends in their own
format, so runs written before resume as they were.
"""
import contextlib
import os
import zlib

import numpy as np

from forgetting.files import atomic, regular
from forgetting.errors import UsageError

MAGIC = b"FGTLOG02"
SAMPLED_MAGIC = b"FGTSMP02"
UNCHECKED_MAGIC = b"FGTLOG01"            # format 1, before checksums
UNCHECKED_SAMPLED_MAGIC = b"FGTSMP01"
CHECKED = {MAGIC: True, UNCHECKED_MAGIC: False, SAMPLED_MAGIC: True,
           UNCHECKED_SAMPLED_MAGIC: False}   # magic -> whether its records carry a crc32
_HEADER = np.dtype([("magic", "S8"), ("n_train", "<i8"), ("n_batches", "<i8")])
_CRC = np.dtype("<u4")


class DamagedLog(UsageError):
    """A record of the log fails its checksum. ``epoch``: the first damaged one (0-based)."""

    def __init__(self, path, epoch):
        super().__init__(f"{path} is damaged: the record of epoch {epoch + 1} fails its "
                         "checksum; start the run again without --resume")
        self.path, self.epoch = path, epoch


def _crc(data):
    """The checksum a record's bytes are followed by, as the 4 bytes written."""
    return np.array(zlib.crc32(data), dtype=_CRC).tobytes()


def _first_damaged(rows):
    """Index of the first row of ``rows`` (uint8, (records, record size incl. its crc)) whose
    crc32 does not match its bytes; None if all do. One crc call per record, not per example."""
    for index, row in enumerate(rows):
        if zlib.crc32(row[:-_CRC.itemsize]) != int(row[-_CRC.itemsize:].view(_CRC)[0]):
            return index
    return None


def record_dtype(n_train, n_batches):
    """The numpy structured dtype of one epoch record (packed, little-endian)."""
    return np.dtype([("loss", "<f4", (n_train,)), ("margin", "<f8", (n_train,)),
                     ("acc", "u1", (n_train,)), ("train_acc", "<f8", (n_batches,)),
                     ("test_acc", "<f8")])


def checked_record_dtype(n_train, n_batches):
    """``record_dtype`` followed by the record's crc32 (format 2)."""
    return np.dtype(record_dtype(n_train, n_batches).descr + [("crc32", _CRC)])


def _read_header(path, magics):
    """(ids, n_batches, checked) from the header of the log at ``path``, which must start
    with one of ``magics``."""
    try:
        with regular.open_regular(path) as handle:
            header = np.frombuffer(handle.read(_HEADER.itemsize), dtype=_HEADER)
            if len(header) != 1 or header["magic"][0] not in magics:
                raise ValueError("bad header")
            n_train = int(header["n_train"][0])
            ids = np.frombuffer(handle.read(8 * n_train), dtype="<i8")
            if len(ids) != n_train:
                raise ValueError("truncated header")
    except regular.NotRegularFile:
        raise
    except (OSError, ValueError) as err:
        raise UsageError(f"{path} is not a readable statistics log ({err}); "
                         "start the run again without --resume") from None
    return ids.astype(np.int64), int(header["n_batches"][0]), CHECKED[header["magic"][0]]


def _write_header(path, magic, ids, n_batches):
    ids = np.ascontiguousarray(ids, dtype="<i8")
    header = np.array((magic, len(ids), n_batches), dtype=_HEADER)
    atomic.write_bytes(path, header.tobytes() + ids.tobytes())
    return ids


def _write_at(path, offset, data):
    """Write ``data`` at ``offset``, cut the file there, fsync: one durable append."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def open_stats_log(path):
    """The log at ``path``, whichever kind its magic says."""
    with contextlib.suppress(OSError):
        with regular.open_regular(path) as handle:
            if handle.read(len(SAMPLED_MAGIC)) in (SAMPLED_MAGIC, UNCHECKED_SAMPLED_MAGIC):
                return SampledStatsLog.open(path)
    return StatsLog.open(path)


class StatsLog:
    """Reader/appender of one run's statistics log (every example once per epoch)."""

    sampled = False

    def __init__(self, path, ids, n_batches, checked=True):
        self.path, self.ids, self.n_batches, self.checked = path, ids, n_batches, checked
        self.record = (checked_record_dtype if checked else record_dtype)(len(ids), n_batches)
        self.data_offset = _HEADER.itemsize + ids.nbytes

    @classmethod
    def create(cls, path, ids, n_batches):
        """Start a new, empty log (atomically replacing any old one)."""
        return cls(path, _write_header(path, MAGIC, ids, n_batches), n_batches)

    @classmethod
    def open(cls, path):
        """An existing log (either format), its header checked."""
        return cls(path, *_read_header(path, (MAGIC, UNCHECKED_MAGIC)))

    def append(self, epoch, stats):
        """Write epoch ``epoch`` (0-based) as record ``epoch`` (with its crc32 in format 2)
        and fsync it."""
        rec = np.zeros((), dtype=record_dtype(len(self.ids), self.n_batches))
        rec["loss"], rec["margin"], rec["acc"] = stats.loss, stats.margin, stats.acc
        rec["train_acc"], rec["test_acc"] = stats.train_acc, stats.test_acc
        data = rec.tobytes()
        if self.checked:
            data += _crc(data)
        _write_at(self.path, self.data_offset + epoch * self.record.itemsize, data)

    def records_on_disk(self):
        """How many complete records the file holds (committed or not)."""
        return (os.path.getsize(self.path) - self.data_offset) // self.record.itemsize

    def holds(self, epochs):
        """Whether the file holds at least ``epochs`` complete records."""
        return self.records_on_disk() >= epochs

    def _rows(self, epochs):
        """The first ``epochs`` complete records (or fewer) as uint8 rows."""
        size = self.record.itemsize
        raw = np.fromfile(self.path, dtype=np.uint8, count=epochs * size, offset=self.data_offset)
        return raw[:len(raw) // size * size].reshape(-1, size)

    def intact(self, epochs):
        """How many of the first ``epochs`` records are on disk, complete and (format 2)
        pass their checksum, counted from the first: where a resume can continue from."""
        rows = self._rows(epochs)
        damaged = _first_damaged(rows) if self.checked else None
        return len(rows) if damaged is None else damaged

    def read(self, epochs):
        """The first ``epochs`` records as a structured array of shape (epochs,), each
        verified against its checksum (``DamagedLog`` if one fails)."""
        rows = self._rows(epochs)
        if len(rows) != epochs:
            raise UsageError(f"{self.path} holds {len(rows)} epochs but the resume state "
                             f"expects {epochs}; start the run again without --resume")
        damaged = _first_damaged(rows) if self.checked else None
        if damaged is not None:
            raise DamagedLog(self.path, damaged)
        return rows.reshape(-1).view(self.record)


def peek(path):
    """``(n_train, n_batches, data_offset, record dtype)`` from the header alone, without
    reading the ids: what a results table needs to read single fields (``read_field``).
    A sampled run's log (``SampledStatsLog``) has records of varying size: ``n_batches`` 0
    and the dtype None. ValueError if ``path`` is no statistics log; OSError if it cannot
    be read."""
    with regular.open_regular(path) as handle:
        header = np.frombuffer(handle.read(_HEADER.itemsize), dtype=_HEADER)
    if len(header) != 1 or header["magic"][0] not in CHECKED:
        raise ValueError("not a statistics log (bad header)")
    magic, n_train, n_batches = header["magic"][0], int(header["n_train"][0]), int(header["n_batches"][0])
    if n_train < 0 or n_batches < 0:
        raise ValueError("not a statistics log (negative sizes in its header)")
    if magic in (SAMPLED_MAGIC, UNCHECKED_SAMPLED_MAGIC):
        return n_train, 0, _HEADER.itemsize + 8 * n_train, None
    dtype = checked_record_dtype if CHECKED[magic] else record_dtype
    return n_train, n_batches, _HEADER.itemsize + 8 * n_train, dtype(n_train, n_batches)


def read_field(path, epoch, name):
    """Field ``name`` (e.g. ``'test_acc'``) of record ``epoch`` (0-based), read at its offset
    without reading the rest of the log. ValueError if the log is too short to hold it."""
    _, _, data_offset, record = peek(path)
    if record is None:
        try:
            return SampledStatsLog.open(path).read_record(epoch)[name]
        except UsageError:
            raise ValueError(f"the log ends before epoch {epoch + 1}") from None
    field, offset = record.fields[name][:2]
    values = np.fromfile(path, dtype=field, count=1,
                         offset=data_offset + epoch * record.itemsize + offset)
    if len(values) != 1:
        raise ValueError(f"the log ends before epoch {epoch + 1}")
    return values[0]


_SAMPLED_HEAD = np.dtype([("presentations", "<i8"), ("n_batches", "<i8")])


def sampled_record_dtype(presentations, n_batches):
    """The dtype of one ``SampledStatsLog`` record after its two counts."""
    return np.dtype([("positions", "<i8", (presentations,)), ("loss", "<f4", (presentations,)),
                     ("margin", "<f8", (presentations,)), ("acc", "u1", (presentations,)),
                     ("train_acc", "<f8", (n_batches,)), ("test_acc", "<f8")])


class SampledStatsLog:
    """Reader/appender of a sampled run's log: variable-size records in presentation order.

    Record ``k`` starts where record ``k - 1`` ends, so finding it walks the counts of the
    records before it (one 16-byte read each, remembered). In format 2 each record's crc32
    follows it and covers its counts too."""

    sampled = True

    def __init__(self, path, ids, checked=True):
        self.path, self.ids, self.checked = path, ids, checked
        self.data_offset = _HEADER.itemsize + ids.nbytes
        self._offsets = [self.data_offset]   # start of record k, for the records walked
        self._crc_size = _CRC.itemsize if checked else 0

    @classmethod
    def create(cls, path, ids):
        return cls(path, _write_header(path, SAMPLED_MAGIC, ids, 0))

    @classmethod
    def open(cls, path):
        ids, _, checked = _read_header(path, (SAMPLED_MAGIC, UNCHECKED_SAMPLED_MAGIC))
        return cls(path, ids, checked)

    def _offset(self, epoch):
        """Where record ``epoch`` starts, or None if an earlier one is missing or torn."""
        size = os.path.getsize(self.path)
        with regular.open_regular(self.path) as handle:
            while len(self._offsets) <= epoch:
                start = self._offsets[-1]
                handle.seek(start)
                head = np.frombuffer(handle.read(_SAMPLED_HEAD.itemsize), dtype=_SAMPLED_HEAD)
                if len(head) != 1 or head["presentations"][0] < 0 or head["n_batches"][0] < 0:
                    return None  # torn, or counts no writer wrote
                end = (start + _SAMPLED_HEAD.itemsize + sampled_record_dtype(
                    int(head["presentations"][0]), int(head["n_batches"][0])).itemsize
                       + self._crc_size)
                if end > size:
                    return None
                self._offsets.append(end)
        return self._offsets[epoch]

    def append(self, epoch, stats):
        """Write epoch ``epoch`` (0-based) as record ``epoch`` and fsync it."""
        offset = self._offset(epoch)
        if offset is None:
            raise UsageError(f"{self.path} lacks the records before epoch {epoch + 1}; start "
                             "the run again without --resume")
        del self._offsets[epoch + 1:]
        head = np.array((len(stats.positions), len(stats.train_acc)), dtype=_SAMPLED_HEAD)
        rec = np.zeros((), dtype=sampled_record_dtype(len(stats.positions), len(stats.train_acc)))
        rec["positions"], rec["loss"], rec["margin"] = stats.positions, stats.loss, stats.margin
        rec["acc"], rec["train_acc"], rec["test_acc"] = stats.acc, stats.train_acc, stats.test_acc
        data = head.tobytes() + rec.tobytes()
        if self.checked:
            data += _crc(data)
        _write_at(self.path, offset, data)

    def holds(self, epochs):
        return self._offset(epochs) is not None

    def records_on_disk(self):
        epochs = 0
        while self._offset(epochs + 1) is not None:
            epochs += 1
        return epochs

    def read_record(self, epoch):
        """Record ``epoch`` as a structured scalar (fields as above), verified against its
        checksum (``DamagedLog`` if it fails)."""
        if not self.holds(epoch + 1):
            raise UsageError(f"{self.path} holds fewer than {epoch + 1} epochs; start the run "
                             "again without --resume")
        with regular.open_regular(self.path) as handle:
            handle.seek(self._offsets[epoch])
            raw = handle.read(self._offsets[epoch + 1] - self._offsets[epoch])
        head = np.frombuffer(raw, dtype=_SAMPLED_HEAD, count=1)
        if self.checked and _first_damaged([np.frombuffer(raw, dtype=np.uint8)]) is not None:
            raise DamagedLog(self.path, epoch)
        dtype = sampled_record_dtype(int(head["presentations"][0]), int(head["n_batches"][0]))
        return np.frombuffer(raw, dtype=dtype, count=1, offset=_SAMPLED_HEAD.itemsize)[0]

    def intact(self, epochs):
        """How many of the first ``epochs`` records are complete and pass their checksum,
        counted from the first."""
        for epoch in range(epochs):
            try:
                self.read_record(epoch)
            except UsageError:  # missing, torn or damaged
                return epoch
        return epochs

    def read(self, epochs):
        """The first ``epochs`` records, as a list of structured scalars (fields as above)."""
        if not self.holds(epochs):
            raise UsageError(f"{self.path} holds fewer epochs than the {epochs} the resume state "
                             "expects; start the run again without --resume")
        return [self.read_record(epoch) for epoch in range(epochs)]
