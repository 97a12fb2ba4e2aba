"""The original ordering script's notebook functions, computed from our score arrays.

Notebooks written for the original do ``from order_examples_by_forgetting import
compute_forgetting_statistics, sort_examples_by_forgetting``; the script re-exports these two
with the original's arguments and return values. Each example's statistics come from one
vectorised pass over the run's ``(examples, presentations)`` arrays (``forgetting_events``);
only building the returned dicts touches every example in Python.

Deviation 15 (docs/deviations.md): the original returned as ``margins_per_presentation`` the margins
of the last example it looked at (the variable was overwritten in its loop); here it is a
dict of every example's margins.
"""
import numpy as np

from forgetting.scores.forgetting import forgetting_events
from forgetting.scores.ranking import sort_by_score
from forgetting.scores.stats_arrays import stats_to_arrays


def compute_forgetting_statistics(diag_stats, npresentations):
    """Per-example statistics of one run's stats dict over its first ``npresentations``.

    ``diag_stats``: a loaded ``__stats_dict.pkl`` (``{example_id: [losses, accs, margins]}``
    plus the ``'train'``/``'test'`` string keys, which are skipped). Returns four dicts keyed
    by the dict's own example ids, in its key order, as the original did:

    - ``presentations_needed_to_learn[id]``: 1 + the (0-based) last presentation with acc 0,
      or 0 if the example was never misclassified;
    - ``unlearned_per_presentation[id]``: int64 array of the 1-based presentations at which
      the example was forgotten (acc 0 right after acc 1), or ``[]`` if none;
    - ``margins_per_presentation[id]``: float64 array of its margins;
    - ``first_learned[id]``: the 0-based first presentation with acc 1 (numpy int), or NaN.

    Raises ``StatsFormatError`` (a ValueError) when ``diag_stats`` is not a stats dict.
    """
    keys = [key for key in diag_stats if not isinstance(key, str)]
    run = stats_to_arrays(diag_stats, npresentations, with_losses=False, with_margins=True)
    # run's rows are in ascending id order; put them back in the dict's key order.
    rows = np.searchsorted(run.ids, np.array(keys, dtype=np.int64))
    accs, lengths, margins = run.accs[rows], run.lengths[rows], run.margins[rows]
    events, correct = forgetting_events(accs, npresentations, lengths)
    n, width = correct.shape
    column = np.arange(width)[None, :]
    real = column < lengths[:, None]
    wrong = real & ~correct

    example_rows, columns = np.nonzero(events)       # row-major: each example's in order
    unlearned = _pieces(columns + 1, np.bincount(example_rows, minlength=n))   # 1-based
    unlearned_per_presentation = {
        key: (presentations if presentations.size else []) for key, presentations in zip(keys, unlearned)
    }

    # initial=: also defined for npresentations 0 (no columns), where the original gave 0 / NaN.
    last_wrong = np.where(wrong, column, -1).max(axis=1, initial=-1)
    presentations_needed_to_learn = dict(zip(keys, last_wrong + 1))   # 0 when never wrong

    first_correct = np.where(correct, column, width).min(axis=1, initial=width)
    first = list(first_correct)                     # numpy ints, as np.where(...)[0][0] gave
    for row in np.flatnonzero(first_correct == width).tolist():
        first[row] = np.nan
    first_learned = dict(zip(keys, first))

    margins_per_presentation = dict(zip(keys, _pieces(margins[real], lengths)))
    return presentations_needed_to_learn, unlearned_per_presentation, margins_per_presentation, first_learned


def _pieces(flat, sizes):
    """``flat`` cut into consecutive views of ``sizes[i]`` entries: np.split, but the slices
    are made by map in C, without np.split's per-piece Python work (about a third of the time)."""
    ends = np.cumsum(sizes)
    return list(map(flat.__getitem__, map(slice, (ends - sizes).tolist(), ends.tolist())))


def sort_examples_by_forgetting(unlearned_per_presentation_all, first_learned_all, npresentations):
    """Example ids by ascending forgetting count summed over runs, and the sorted counts.

    Arguments: one ``unlearned_per_presentation`` and one ``first_learned`` dict per run (from
    ``compute_forgetting_statistics``); an example never learned in a run counts
    ``npresentations`` events for that run. Prints ``Number of unforgettable examples: K``.
    Returns ``(ids, counts)``: numpy arrays of the first run's example ids and their total
    counts, ascending; ties by ascending id (the original's quicksort left them arbitrary).
    """
    keys = list(unlearned_per_presentation_all[0])
    n = len(keys)
    totals = np.zeros(n, dtype=np.int64)
    for unlearned, first_learned in zip(unlearned_per_presentation_all, first_learned_all):
        # map() walks the dicts in C: no Python-level loop body per example.
        events = np.fromiter(map(len, map(unlearned.__getitem__, keys)), dtype=np.int64, count=n)
        never = np.isnan(np.fromiter(map(first_learned.__getitem__, keys), dtype=np.float64, count=n))
        totals += np.where(never, npresentations, events)
    print('Number of unforgettable examples: {}'.format(int((totals == 0).sum())))
    return sort_by_score(np.array(keys), totals)
