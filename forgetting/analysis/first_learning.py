"""First learning events against forgetting counts (the paper's Sec. 4.1, "First learning
events": Spearman rank correlation 0.56 over CIFAR-10's training set).

An example's **first learning event** is the first presentation at which it is classified
correctly (the paper's Algorithm 1 starts every example at "misclassified", so being right at
the first presentation is a learning event). Presentations are numbered from 1, over the
first ``epochs`` of each run, as the forgetting count reads them.

Over several runs an example's first-learning presentation is the mean over the runs, and its
forgetting count the sum (the ordering script's count). An example never classified correctly
in some run has no first learning event there: it is left out of the correlation and of the
figure (its count is the ``epochs``-per-run convention, not an observation), and reported as
such.
"""
from typing import NamedTuple

import numpy as np

from forgetting.analysis.correlation import spearman
from forgetting.analysis.run_stream import reduce_runs
from forgetting.scores.forgetting import forgetting_counts, forgetting_events


class FirstLearning(NamedTuple):
    ids: np.ndarray  # int64 (n,), ascending
    # float64 (n,): mean 1-based first-learning presentation; NaN if never learned in some run
    presentation: np.ndarray
    counts: np.ndarray  # int64 (n,): forgetting counts summed over the runs

    @property
    def learned(self):
        """Bool (n,): learned in every run (the examples the correlation is over)."""
        return ~np.isnan(self.presentation)

    def spearman(self):
        """Spearman's rank correlation of presentation and count over the learned examples."""
        keep = self.learned
        return spearman(self.presentation[keep], self.counts[keep])


def first_learned(accs, epochs, lengths=None):
    """Float64 (n,): the 1-based presentation at which each example is first classified
    correctly within its first ``epochs`` presentations, NaN if never."""
    _, correct = forgetting_events(accs, epochs, lengths)
    first = correct.argmax(axis=1).astype(np.float64) + 1
    first[~correct.any(axis=1)] = np.nan
    return first


def first_learning_over_runs(paths, epochs):
    """``FirstLearning`` of the runs ``paths`` over their first ``epochs`` presentations."""
    def reduce(run):
        return (first_learned(run.accs, epochs, run.lengths),
                forgetting_counts(run.accs, epochs, run.lengths))

    ids, per_run = reduce_runs(paths, epochs, reduce)
    presentation = np.mean([first for first, _ in per_run], axis=0)  # NaN in any run: NaN
    counts = np.sum([counts for _, counts in per_run], axis=0, dtype=np.int64)
    return FirstLearning(ids, presentation, counts)
