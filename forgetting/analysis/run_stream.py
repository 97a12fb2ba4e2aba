"""Read runs one at a time for an analysis: each stats file is loaded, reduced to a few values
per example, and dropped before the next is read (peak memory about one loaded file, as the
ordering script).
"""
from forgetting.scores.over_runs import check_same_ids
from forgetting.scores.stats_arrays import load_run_arrays


def reduce_runs(paths, epochs, reduce, with_margins=False):
    """``(ids, [reduce(run) for each run])``: ``run`` is the file's ``RunArrays`` over its first
    ``epochs`` presentations (accuracies; margins too with ``with_margins``; never losses), ids
    ascending. Runs must hold the same example ids (a one-line UsageError otherwise)."""
    ids = first = None
    reduced = []
    for path in paths:
        run = load_run_arrays(path, epochs, with_losses=False, with_margins=with_margins)
        if ids is None:
            ids, first = run.ids, path
        else:
            check_same_ids(path, run.ids, first, ids)
        reduced.append(reduce(run))
        del run
    return ids, reduced
