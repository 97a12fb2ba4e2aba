"""A run's stats dict (``{id: [losses, accs, margins]}``) as numpy arrays, for the scores.

Shapes: a run's statistics are 2-D arrays ``(n_examples, n_presentations)``, row ``i``
being example ``ids[i]``'s history in presentation order. Runs whose examples were
presented a different number of times ("ragged": an interrupted run, a hand-edited
file, a run that sampled some examples more often) are padded on the right;
``lengths[i]`` then says how many leading entries of row ``i`` are real, and the scores
ignore the padding. Pure numpy: no Python loop over examples, no torch.
"""
import gc
import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Optional

import numpy as np

from forgetting.errors import UsageError
from forgetting.files import run_record, safe_pickle
from forgetting.files.naming import RECORD_SUFFIX, STATS_SUFFIX, is_sampled_run


class StatsFormatError(ValueError):
    """A stats dict that is not what the training scripts write (message says what)."""


class TooFewPresentations(StatsFormatError):
    """A uniform run asked for more presentations per example than it holds (``held``)."""

    def __init__(self, message, held):
        super().__init__(message)
        self.held = held


class RunArrays(NamedTuple):
    """One run's statistics as arrays (rows in ascending id order)."""

    ids: np.ndarray  # int64 (n,), ascending
    accs: Optional[np.ndarray]  # int8 (n, p), 0/1, padded with 0 past lengths[i]; None when not asked for
    losses: Optional[np.ndarray]  # float64 (n, p), padded with 0.0; None when not asked for
    lengths: np.ndarray  # int64 (n,), presentations kept per example (<= epochs)
    margins: Optional[np.ndarray] = None  # float64 (n, p) like losses; None unless asked for


def _as_id(key):
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
        raise StatsFormatError(f"key {key!r} is neither an example id (an integer) nor a string")
    return key


def _matrix(rows, epochs, dtype, what):
    """Stack the first ``epochs`` entries of each row into a right-padded 2-D array.

    Returns ``(matrix, lengths)``; padding is 0. Rows of equal length (the usual case)
    take one ``np.array`` call; ragged ones are flattened and scattered into place.
    """
    n = len(rows)
    raw_lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=n)
    lengths = np.minimum(raw_lengths, epochs)
    width = int(lengths.max()) if n else 0
    try:
        if n and (raw_lengths == raw_lengths[0]).all():
            matrix = np.array(rows, dtype=dtype)
            if matrix.shape != (n, raw_lengths[0]):
                raise ValueError(f"nested values (shape {matrix.shape})")
            return matrix[:, :epochs], lengths
        chained = itertools.chain.from_iterable(itertools.islice(row, epochs) for row in rows)
        flat = np.fromiter(chained, dtype=dtype, count=int(lengths.sum()))
    except (TypeError, ValueError, OverflowError) as err:
        raise StatsFormatError(f"the {what} are not all plain numbers ({err})") from None
    matrix = np.zeros((n, width), dtype=dtype)
    row_index = np.repeat(np.arange(n), lengths)
    starts = np.cumsum(lengths) - lengths
    col_index = np.arange(flat.size) - np.repeat(starts, lengths)
    matrix[row_index, col_index] = flat
    return matrix, lengths


def _int_bits_matrix(rows, epochs):
    """``(int8 matrix, lengths)`` when every row has the same length and holds only integers 0
    or 1 (what the training scripts and the original wrote), else None (the caller then takes
    the general path, which also names what is wrong).

    ``bytes()`` of the chained rows converts them in C and refuses anything that is not an
    integer in 0..255: 0.25 s for 50,000 x 200 against 0.33 s for a float64 array plus its
    checks (benchmarks/RESULTS.md, item 4).
    """
    n = len(rows)
    if not n:
        return None
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        return None
    try:
        flat = bytes(itertools.chain.from_iterable(rows))
    except (TypeError, ValueError):
        return None
    if len(flat) != n * width:
        return None
    matrix = np.frombuffer(flat, dtype=np.uint8).reshape(n, width)[:, :epochs]
    if (matrix > 1).any():
        return None
    return matrix.astype(np.int8), np.full(n, matrix.shape[1], dtype=np.int64)


def stats_to_arrays(stats, epochs, with_losses=True, with_margins=False, with_accs=True,
                    sampled=None):
    """A loaded stats dict as ``RunArrays``, truncated to ``epochs`` presentations (None: all).

    ``stats`` maps example id (Python int or numpy integer) to ``[losses, accs,
    margins]`` (three sequences, one entry per presentation); string keys are skipped, but
    ``'train'`` and ``'test'``, when there, must be ``[[], accuracies]`` of finite percentages
    in 0..100. Accuracies must be 0/1 (checked even with ``with_accs=False``) and each example
    must have as many losses as accuracies. ``sampled=False`` (a uniform run: every example
    once per epoch) also requires every example to have the same number of presentations,
    and at least ``epochs`` of them; ``sampled=True`` (``--sampling``: ragged by design) and
    None (the original's API, which did not check) do not. Raises ``StatsFormatError``
    saying what is wrong otherwise. ``with_losses=False`` skips building (and checking) the
    loss matrix; ``with_margins`` builds (and checks) the margin matrix, which only AUM
    needs; ``with_accs=False`` does not return the accuracy matrix (it is still built, to check
    it and to count each example's presentations: about a fifth of loading the file), for the
    scores that do not read it. Losses and margins may be NaN or infinite (a diverged run).
    """
    if not (with_accs or with_losses or with_margins):
        raise ValueError("ask for at least one of accs, losses, margins")
    if not isinstance(stats, dict):
        raise StatsFormatError(f"it holds a {type(stats).__name__}, not a dict")
    if epochs is None:
        epochs = sys.maxsize
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    _check_accuracy_lists(stats)
    keys = [key for key in stats if not isinstance(key, str)]
    if not keys:
        raise StatsFormatError("it holds no example ids")
    try:
        if set(map(type, keys)) <= _PLAIN_ID_TYPES:  # the usual case, without a call per key
            ids = np.array(keys, dtype=np.int64)
        else:
            ids = np.array([_as_id(key) for key in keys], dtype=np.int64)
    except OverflowError:
        raise StatsFormatError("an example id does not fit in 64 bits") from None
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    records = [stats[keys[i]] for i in order.tolist()]
    bad = next((i for i, rec in enumerate(records) if not _is_plain_record(rec) and not _is_record(rec)), None)
    if bad is not None:
        raise StatsFormatError(
            f"the value for example {ids[bad]} is not [losses, accuracies, margins] (three lists)"
        )
    acc_rows = [rec[1] for rec in records]
    if sampled is False:
        _check_uniform(acc_rows, ids, epochs)
    fast = _int_bits_matrix(acc_rows, epochs)
    if fast is not None:
        accs, lengths = fast
    else:
        accs, lengths = _matrix(acc_rows, epochs, np.float64, "accuracies")
        if not ((accs == 0) | (accs == 1)).all():
            raise StatsFormatError("an accuracy is not 0 or 1")
        accs = accs.astype(np.int8)
    del acc_rows
    losses = margins = None
    if not with_accs:  # checked, then dropped: the caller's scores do not read them
        accs = None
    if with_losses:
        losses = _values(records, 0, "losses", ids, lengths, epochs)
    if with_margins:
        margins = _values(records, 2, "margins", ids, lengths, epochs)
    return RunArrays(ids=ids, accs=accs, losses=losses, lengths=lengths, margins=margins)


def _check_uniform(acc_rows, ids, epochs):
    """A uniform run presents every example once per epoch: refuse examples with different
    numbers of presentations, and fewer presentations than the ``epochs`` asked for."""
    counts = np.fromiter(map(len, acc_rows), dtype=np.int64, count=len(acc_rows))
    odd = np.flatnonzero(counts != counts[0])
    if odd.size:
        i = odd[0]
        raise StatsFormatError(
            f"example {ids[i]} has {counts[i]} presentations but example {ids[0]} has {counts[0]}; "
            "a run without --sampling presents every example once per epoch")
    if epochs != sys.maxsize and epochs > counts[0]:
        raise TooFewPresentations(
            f"{epochs} presentations asked for, but the run holds {counts[0]} per example",
            int(counts[0]))


def _check_accuracy_lists(stats):
    """``'train'``/``'test'``, when present: ``[[], percentages]``, finite and in 0..100."""
    for key in ("train", "test"):
        if key not in stats:
            continue
        entry = stats[key]
        try:
            if not isinstance(entry, (list, tuple)) or len(entry) != 2:
                raise ValueError
            values = np.asarray(entry[1], dtype=np.float64)
            if values.ndim != 1:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise StatsFormatError(f"its '{key}' entry is not [[], accuracies]") from None
        bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0) & (values <= 100)))
        if bad.size:
            raise StatsFormatError(
                f"its '{key}' accuracy {values[bad[0]]} (entry {bad[0]}) is not a percentage "
                "in 0..100")


def _values(records, part, what, ids, lengths, epochs):
    """The float64 matrix of part ``part`` (0 losses, 2 margins) of every record, refusing an
    example with a different number of entries than its accuracies (``lengths``)."""
    matrix, part_lengths = _matrix([rec[part] for rec in records], epochs, np.float64, what)
    mismatch = np.flatnonzero(part_lengths != lengths)
    if mismatch.size:
        i = mismatch[0]
        raise StatsFormatError(
            f"example {ids[i]} has {part_lengths[i]} {what} but {lengths[i]} accuracies"
            f" in its first {epochs} presentations"
        )
    return matrix


# Key types that are example ids as they are: what the training scripts (int) and the original
# scripts (numpy.int64) wrote. Other keys go through _as_id, which names a bad one.
_PLAIN_ID_TYPES = {int, np.int64, np.int32}


def _is_plain_record(record):
    """``[list, list, list]``, checked without further calls (the usual case of _is_record)."""
    return (type(record) is list and len(record) == 3 and type(record[0]) is list
            and type(record[1]) is list and type(record[2]) is list)


def _is_sequence(part):
    return isinstance(part, (list, tuple)) or (isinstance(part, np.ndarray) and part.ndim == 1)


def _is_record(record):
    return isinstance(record, (list, tuple)) and len(record) == 3 and all(_is_sequence(part) for part in record)


def first_presentations(matrix, epochs, lengths):
    """The first ``epochs`` columns and the matching per-row lengths."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D (examples, presentations) array, got shape {matrix.shape}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    matrix = matrix[:, :epochs]
    n, p = matrix.shape
    if lengths is None:
        lengths = np.full(n, p, dtype=np.int64)
    else:
        lengths = np.minimum(np.asarray(lengths, dtype=np.int64), p)
        if lengths.shape != (n,) or (lengths < 0).any():
            raise ValueError("lengths must be one non-negative count per row")
    return matrix, lengths


def _recorded_sha256(path):
    """The sha256 that the run record beside the stats pickle ``path`` holds for it, or None
    (no record, an unreadable one, or a run that is not finished writing it)."""
    if not path.endswith(STATS_SUFFIX):
        return None
    try:
        record = run_record.read_record(path[:-len(STATS_SUFFIX)] + RECORD_SUFFIX)
    except (OSError, ValueError):
        return None
    entry = ((record or {}).get("sha256") or {}).get("stats_pickle")
    return entry["sha256"] if entry else None


class _Checksum:
    """The stats pickle's sha256, computed in a thread while the file loads (hashlib and file
    reads release the GIL), against the one its run record holds."""

    def __init__(self, path):
        self.path, self.expected = path, _recorded_sha256(path)
        self.pool = self.future = None
        if self.expected is not None:
            self.pool = ThreadPoolExecutor(max_workers=1)
            self.future = self.pool.submit(run_record.file_sha256, path)

    def check(self):
        """UsageError if the file differs from its checksum (nothing to check: passes)."""
        if self.future is None:
            return
        try:
            actual = self.future.result()
        except OSError:
            return  # the loader says what is wrong with the file
        finally:
            self.pool.shutdown()
        if actual != self.expected:
            raise UsageError(f"{self.path} is damaged: its sha256 differs from the one its run "
                             "record holds; rerun its training command with --resume to write "
                             "it again")


def load_run_arrays(path, epochs, with_losses=True, with_margins=False, with_accs=True):
    """One stats file as ``RunArrays`` (first ``epochs`` presentations; None: all), through the
    restricted loader; a file that is not a complete stats pickle, or does not add up
    (``stats_to_arrays``' checks, a uniform or sampled run as its name says:
    ``naming.is_sampled_run``), is a one-line UsageError. The loaded dict is dropped on
    return, so callers that stream runs hold about one file at a time.

    The cyclic GC stays off until the loaded file is gone: a stats file is ~200,000 lists
    holding 30 million numbers and no cycles, and with the GC on, every collection after the
    load walked all of it again (0.3 s per walk, 0.5-0.8 s per 50,000 x 200 file measured;
    benchmarks/RESULTS.md, item 4). The file is freed by reference counting either way.

    A run whose record holds the stats pickle's sha256 (files/run_record.py) has the file
    checked against it, hashed in a thread while it loads; a mismatch is a one-line
    "damaged" UsageError.
    """
    checksum = _Checksum(path)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            stats = safe_pickle.load(path)
        except UsageError:
            checksum.check()  # a damaged file says so rather than how it fails to load
            raise
        checksum.check()
        try:
            return stats_to_arrays(stats, epochs, with_losses=with_losses, with_margins=with_margins,
                                   with_accs=with_accs, sampled=is_sampled_run(path))
        except TooFewPresentations as err:
            raise UsageError(f"{path}: --epochs {epochs} asks for more presentations than the run "
                             f"holds ({err.held} per example); give --epochs {err.held} or "
                             "less") from None
        except StatsFormatError as err:
            raise UsageError(
                f"{path}: not a complete stats file ({err}); expected the *stats_dict.pkl that "
                "run_mnist.py or run_cifar.py writes"
            ) from None
        finally:
            del stats
    finally:
        if gc_was_enabled:
            gc.enable()


def mean_over_presentations(values, lengths):
    """Per-row mean of the first ``lengths[i]`` entries of ``values`` (float64 (n,)); NaN for a
    row with none (an example never presented says nothing about its difficulty)."""
    values = np.asarray(values, dtype=np.float64)
    if (lengths == values.shape[1]).all():  # the usual case: no padding to mask out
        totals = values.sum(axis=1)
    else:
        real = np.arange(values.shape[1])[None, :] < lengths[:, None]
        totals = np.where(real, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 -> NaN, on purpose
        return totals / lengths
