"""Forgetting counts after fewer epochs, and the unforgettable sets they give (the paper's
Sec. 6: "Throughout training", Fig. 7 left, and "Between architectures", Fig. 7 middle).

The counts **after N epochs** are the forgetting counts over each run's first N presentations
(``forgetting_counts(accs, N)``: an example never learned by then counts N for that run),
summed over the runs as the ordering script sums them. An example is **unforgettable after N
epochs** when that sum is 0: learned in every run by presentation N and never forgotten
before it.

- ``budget_agreement``: the counts after N epochs against those after all of them: Spearman's
  rank correlation (what the paper plots in Fig. 7 left), Pearson's, and the precision and
  recall with which the unforgettable set after N retrieves the final unforgettable set;
- ``retrieval``: precision and recall of one unforgettable set retrieving another (Fig. 7
  middle: the small network's, after N of its epochs, retrieving the ResNet18's).
"""
from typing import NamedTuple

import numpy as np

from forgetting.analysis.correlation import pearson, precision_recall, spearman
from forgetting.analysis.run_stream import reduce_runs
from forgetting.errors import UsageError
from forgetting.scores.forgetting import forgetting_counts


def check_budgets(budgets, epochs, flag="--budgets"):
    """The sorted distinct budgets, after refusing one outside 1..``epochs``."""
    bad = [n for n in budgets if not 1 <= n <= epochs]
    if bad:
        raise UsageError(f"{flag} {bad[0]}: the runs are read for {epochs} epochs; give "
                         f"numbers of epochs from 1 to {epochs}")
    return sorted(set(budgets))


def counts_at_budgets(paths, epochs, budgets):
    """``(ids, {N: counts})`` for every N in ``budgets`` and for ``epochs`` itself: int64 (n,)
    forgetting counts over the first N presentations of each run, summed over the runs. Each
    file is read once, for its first ``epochs`` presentations."""
    wanted = sorted(set(budgets) | {epochs})

    def reduce(run):
        return [forgetting_counts(run.accs, n, run.lengths) for n in wanted]

    ids, per_run = reduce_runs(paths, epochs, reduce)
    return ids, {n: np.sum([run[i] for run in per_run], axis=0, dtype=np.int64)
                 for i, n in enumerate(wanted)}


class Agreement(NamedTuple):
    spearman: float
    pearson: float
    precision: float  # of the unforgettable set after N retrieving the final one
    recall: float


def retrieval(counts, reference_counts):
    """``(precision, recall)`` of the examples with ``counts`` 0 retrieving those with
    ``reference_counts`` 0 (same examples, same order)."""
    return precision_recall(np.asarray(counts) == 0, np.asarray(reference_counts) == 0)


def budget_agreement(counts_at, epochs):
    """``{N: Agreement}`` of the counts after N epochs with those after ``epochs``, for every
    N of ``counts_at`` (``counts_at_budgets``' second value; ``epochs`` itself agrees fully)."""
    full = counts_at[epochs]
    return {n: Agreement(spearman(c, full), pearson(c, full), *retrieval(c, full))
            for n, c in counts_at.items()}
