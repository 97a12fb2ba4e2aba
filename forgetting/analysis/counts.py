"""Statistics of forgetting counts, as plain functions that plot_figures.py prints as
``measured:`` lines and notebooks can call (definitions: docs/figures.md).

A sorting file (docs/files.md#sorting-files) gives ``ids`` (easiest first) and the matching
``counts`` (forgetting events summed over its runs; an example never learned counts the
run's presentations). Everything here is vectorised numpy; the tests check each function
against a plain Python loop.

- ``load_sorting_counts``: (ids, counts) of a sorting file, checked;
- ``unforgettable_percent``, ``mean_count``: the two numbers of each histogram series;
- ``counts_of``: the counts of given ids (the flipped examples of a noise run, say);
- ``window_mean_counts``: the mean count of each removal window ``[start, start + size)``;
- ``spearman``: Spearman's rank correlation (scipy), nan when a side is constant;
- ``gallery_ids``: the most forgotten and the unforgettable ids, ties broken by ascending id.
"""
import numpy as np

from forgetting.errors import UsageError
from forgetting.files import safe_pickle


def load_sorting_counts(path, load=safe_pickle.load):
    """``(ids, counts)`` of the sorting file ``path`` (int64 arrays of one length), read with
    the restricted ``load``; a UsageError naming the fix when it is not a forgetting sorting
    file."""
    content = load(path)
    if not isinstance(content, dict) or "forgetting counts" not in content:
        keys = ", ".join(repr(k) for k in content) if isinstance(content, dict) else "no dict"
        raise UsageError(f"{path} holds no 'forgetting counts' ({keys}); give a sorting file "
                         "written by order_examples_by_forgetting.py")
    try:
        counts = safe_pickle.as_numbers(content["forgetting counts"])
    except (TypeError, ValueError, OverflowError):
        counts = None
    if counts is None or counts.size == 0 or counts.dtype.kind not in "iu" or counts.min() < 0:
        raise UsageError(f"{path}: its 'forgetting counts' are not non-negative whole numbers; "
                         "give a sorting file written by order_examples_by_forgetting.py")
    try:
        ids = safe_pickle.as_numbers(content.get("indices"))
    except (TypeError, ValueError, OverflowError):
        ids = None
    if ids is None or ids.dtype.kind not in "iu":
        raise UsageError(f"{path}: its 'indices' are not a flat list of example ids; re-create it "
                         "with order_examples_by_forgetting.py")
    if ids.size != counts.size:  # one count per id, or the file is broken
        raise UsageError(f"{path}: its 'forgetting counts' hold {counts.size} values for "
                         f"{ids.size} ids; re-create it with order_examples_by_forgetting.py")
    return ids.astype(np.int64), counts.astype(np.int64)


def unforgettable_percent(counts):
    """Percent of the examples with no forgetting event (count 0): learned once and never
    forgotten in any run of the sorting file."""
    return 100.0 * float(np.mean(np.asarray(counts) == 0))


def mean_count(counts):
    """The mean forgetting count per example (never-learned examples count as the sorting
    file counts them: the runs' presentations)."""
    return float(np.mean(np.asarray(counts, dtype=np.float64)))


def counts_of(ids, counts, wanted, where="the sorting file"):
    """The counts of the example ids ``wanted`` (in that order), from a sorting file's
    ``ids`` and ``counts``; a UsageError naming an id the file does not hold."""
    ids, wanted = np.asarray(ids), np.asarray(wanted, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, wanted, sorter=order)
    at = np.minimum(at, len(ids) - 1)
    found = ids[order[at]] == wanted
    if not found.all():
        missing = wanted[~found]
        raise UsageError(f"{where} holds no count for {missing.size} of the {wanted.size} ids "
                         f"(e.g. id {missing[0]}); give the sorting file of the same dataset")
    return np.asarray(counts)[order[at]]


def window_mean_counts(sorted_counts, starts, size):
    """The mean of ``sorted_counts[s:s + size]`` for each start ``s`` (the examples a removal
    run with ``--keep_lowest_n s --remove_n size`` removes); a window must lie within the
    file."""
    sorted_counts = np.asarray(sorted_counts, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    if size < 1 or starts.min() < 0 or starts.max() + size > len(sorted_counts):
        raise UsageError(f"a window of {size} examples starting at {starts.max()} runs past the "
                         f"sorting file's {len(sorted_counts)} examples; give the sorting file "
                         "the windows were removed from")
    totals = np.concatenate([[0], np.cumsum(sorted_counts)])  # exact: int64 sums
    return (totals[starts + size] - totals[starts]) / size


def spearman(x, y):
    """Spearman's rank correlation of ``x`` and ``y`` (ties get mean ranks); nan for fewer
    than two points or a constant side."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y)[0])


def gallery_ids(ids, counts, labels, k, per_class=False):
    """The ids a gallery shows: ``(forgotten, unforgettable)``.

    ``forgotten``: the ``k`` ids with the most forgetting events (count above 0), most first,
    equal counts by ascending id; ``unforgettable``: the ``k`` smallest ids with count 0. With
    ``per_class``, both are dicts {label: ids} chosen the same way among each label's examples
    (every label present in ``labels``, which are the labels of ``ids``). Fewer than ``k``
    where fewer exist.
    """
    ids, counts, labels = (np.asarray(a) for a in (ids, counts, labels))
    # One lexsort: count descending, then id ascending (the last key is the primary one).
    order = np.lexsort((ids, -counts))

    def pick(mask):
        chosen = order[mask[order]]
        forgotten = chosen[counts[chosen] > 0][:k]
        zero = np.sort(ids[mask & (counts == 0)])[:k]
        return ids[forgotten], zero

    if not per_class:
        return pick(np.ones(len(ids), dtype=bool))
    picks = {int(label): pick(labels == label) for label in np.unique(labels)}
    return ({c: f for c, (f, _) in picks.items()}, {c: z for c, (_, z) in picks.items()})


def capped_fractions(counts, cap):
    """Fraction of the examples with each count ``0..cap - 1``, then with ``cap`` or more
    (``cap + 1`` values summing to 1): a histogram whose last bar holds the long tail."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.bincount(np.minimum(counts, cap), minlength=cap + 1) / len(counts)
