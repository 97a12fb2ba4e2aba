"""The original's ``__stats_dict.pkl`` and ``__best_acc.txt``, built from the run's log.

Layout (docs/files.md#stats-pickle, loadable with plain ``pickle.load``)::

    {example_id (int): [losses (floats), accs (ints 0/1), margins (floats)], ...,
     'train': [[], running train accuracy after every batch, in percent],
     'test':  [[], test accuracy after every epoch, in percent]}

Rebuilding the pickle costs O(epochs x n_train), so during a run it is refreshed by a
separate process (forgetting/training/refresher.py) that never blocks training; the final,
complete file is written when the run ends or is stopped.

The file is encoded straight from the log's arrays (``encode_stats_pickle``) rather than by
``pickle.dump`` of the dict: at 50,000 x 200, building the 30 million Python numbers and
pickling them took 2.8 s and ~0.9 GB, encoding takes 0.4 s and a few MB beyond the log's
arrays (benchmarks/RESULTS.md, item 3). The bytes are plain protocol-2 opcodes, so
``pickle.load`` gives exactly ``build_stats_dict``'s dict (same keys in the same order, the
same float bits, ints for the accuracies).

A sampled run's log (``--sampling``) gives the same layout with lists of different lengths:
each example's presentations in order, none for an epoch that skipped it, two for an epoch
that drew it twice (``build_sampled_stats_dict``; written with ``pickle.dump``, since such a
run's file is smaller than the full run's that the encoder is tuned for).
"""
import pickle

import numpy as np

from forgetting.files import atomic
from forgetting.files.stats_log import open_stats_log


def build_stats_dict(ids, records):
    """The legacy dict from training ``ids`` and the log ``records`` (one per epoch)."""
    losses = records["loss"].T.tolist()       # float32 -> exact Python floats
    accs = records["acc"].T.astype(np.int64).tolist()
    margins = records["margin"].T.tolist()
    stats = {i: [l, a, m] for i, l, a, m in zip(ids.tolist(), losses, accs, margins)}
    stats["train"] = [[], records["train_acc"].reshape(-1).tolist()]
    stats["test"] = [[], records["test_acc"].tolist()]
    return stats


def build_sampled_stats_dict(ids, records):
    """The legacy dict from training ``ids`` and a sampled log's ``records`` (one per epoch,
    presentations in order, ``positions`` indexing ``ids``)."""
    def joined(field, dtype):
        return np.concatenate([np.asarray(r[field], dtype=dtype) for r in records] or
                              [np.zeros(0, dtype)])

    positions = joined("positions", np.int64)
    by_example = np.argsort(positions, kind="stable")  # stable: presentation order within each
    bounds = np.cumsum(np.bincount(positions, minlength=len(ids)))[:-1]
    columns = [np.split(joined(field, dtype)[by_example], bounds)
               for field, dtype in (("loss", np.float32), ("acc", np.int64), ("margin", np.float64))]
    stats = {i: [l.tolist(), a.tolist(), m.tolist()]
             for i, l, a, m in zip(ids.tolist(), *columns)}
    stats["train"] = [[], joined("train_acc", np.float64).tolist()]
    stats["test"] = [[], [float(r["test_acc"]) for r in records]]
    return stats


def best_acc_text(best_train, best_test):
    """``best_acc.txt``: ``train test \\n``, then ``str()`` of the best running train accuracy
    and of the best test accuracy, no newline at the end (docs/files.md#best-accuracies)."""
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

    Keys are Python ints, not the original's ``numpy.int64`` (docs/deviations.md, item 8): an int64
    key is a numpy scalar rebuilt by a call when loading, which made loading 3-7% slower
    (benchmarks/int64_keys.py, RESULTS.md), and it would change the bytes of every run's file.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < -2**31 or ids.max() >= 2**31):
        raise ValueError("example ids beyond 32 bits")
    write(_PROTO2 + _EMPTY_DICT + _MARK)
    for start in range(0, len(ids), _CHUNK):
        part = slice(start, start + _CHUNK)
        write(_examples(_int_keys(ids[part]), records, part))
    write(_SETITEMS)
    write(_accuracy_lists(records))


def _int_keys(ids):
    """(rows,) int64 ids -> (rows, 5) bytes: BININT + little-endian int32."""
    keys = np.empty((len(ids), 5), dtype=np.uint8)
    keys[:, 0] = _BININT[0]
    keys[:, 1:] = ids.astype("<i4").view(np.uint8).reshape(len(ids), 4)
    return keys


def _examples(keys, records, part):
    """The dict entries of the examples in slice ``part``: each encoded key (a row of
    ``keys``) followed by its ``[losses, accs, margins]``."""
    rows, epochs = len(keys), len(records)
    accs = np.empty((rows, epochs, 2), dtype=np.uint8)
    accs[..., 0] = _BININT1[0]
    accs[..., 1] = records["acc"][:, part].T
    return np.hstack([
        keys, np.full((rows, 1), _MARK[0], np.uint8),
        _list_of(_floats(records["loss"][:, part].T)),
        _list_of(accs.reshape(rows, 2 * epochs)),
        _list_of(_floats(records["margin"][:, part].T)),
        np.full((rows, 1), _LIST[0], np.uint8)]).tobytes()


def _accuracy_lists(records):
    """The 'train' and 'test' entries, under their own SETITEMS, and the pickle's STOP."""
    empty = _EMPTY_LIST
    return (_MARK + _unicode("train") + _MARK + empty + _one_list(records["train_acc"]) + _LIST
            + _unicode("test") + _MARK + empty + _one_list(records["test_acc"]) + _LIST
            + _SETITEMS + _STOP)


def write_stats_pickle(stats_log_path, epochs, out_path, digest=False):
    """Atomically (re)write the legacy pickle holding the stats log's first ``epochs`` epochs
    (each verified against its checksum). ``digest``: return the sha256 of the file written
    (hashed as it is written: ~0.4 s at 50,000 x 200; the refresh child does without)."""
    log = open_stats_log(stats_log_path)
    records = log.read(epochs)
    if log.sampled:
        stats = build_sampled_stats_dict(log.ids, records)
    else:
        try:
            with atomic.atomic_open(out_path, digest=digest) as handle:
                encode_stats_pickle(log.ids, records, handle.write)
            return handle.sha256 if digest else None
        except ValueError:  # ids beyond 32 bits: the slow, general way
            stats = build_stats_dict(log.ids, records)
    with atomic.atomic_open(out_path, digest=digest) as handle:
        pickle.dump(stats, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return handle.sha256 if digest else None
