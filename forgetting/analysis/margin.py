"""Misclassification margins against forgetting counts (the paper's Sec. 4.1 and Fig. 2 left:
Spearman rank correlation -0.74 over CIFAR-10, 5 seeds).

The classification margin of a presentation is the recorded ``margins`` entry: the output for
the label minus the largest other output (docs/files.md; a difference of log-probabilities is
the difference of the logits, so this is the paper's logit margin for both training scripts).
An example's **misclassification margin** is the mean margin over all its forgetting events:
the presentations where it was misclassified right after being classified correctly, in the
first ``epochs`` of each run, pooled over the runs. It is negative or zero by construction
(misclassified: some other output is at least the label's).

Only examples with at least one forgetting event have a misclassification margin: the
correlation and the figure are over them. Unforgettable examples and examples never learned
(no 1 -> 0 transition) are left out and counted. The count correlated is the number of those
same forgetting events, summed over the runs: the paper correlates "forgetting events", and
the ordering script's convention (``epochs`` events for a run in which the example was never
learned) would put an example learned in all runs but one among the most forgotten, with a
margin averaged over the runs that did learn it.
"""
from typing import NamedTuple

import numpy as np

from forgetting.analysis.correlation import spearman
from forgetting.analysis.run_stream import reduce_runs
from forgetting.scores.forgetting import forgetting_events


class Margins(NamedTuple):
    ids: np.ndarray  # int64 (n,), ascending
    margin: np.ndarray  # float64 (n,): mean margin over the forgetting events; NaN without any
    events: np.ndarray  # int64 (n,): forgetting events summed over the runs (never learned: 0)

    @property
    def forgotten(self):
        """Bool (n,): examples with at least one forgetting event and a finite margin (the
        examples correlated; a run kept with --include_diverged may have recorded NaN)."""
        return (self.events > 0) & np.isfinite(self.margin)

    def spearman(self):
        """Spearman's rank correlation of forgetting events and misclassification margin over
        the forgotten examples."""
        keep = self.forgotten
        return spearman(self.events[keep], self.margin[keep])


def margins_at_forgetting(accs, margins, epochs, lengths=None):
    """``(margin sum, events)``: per example, the sum of ``margins`` at its forgetting events
    within the first ``epochs`` presentations (float64 (n,)) and their number (int64 (n,))."""
    events, _ = forgetting_events(accs, epochs, lengths)
    at_events = np.where(events, np.asarray(margins, dtype=np.float64)[:, :events.shape[1]], 0.0)
    return at_events.sum(axis=1), events.sum(axis=1, dtype=np.int64)


def margins_over_runs(paths, epochs):
    """``Margins`` of the runs ``paths`` over their first ``epochs`` presentations."""
    def reduce(run):
        return margins_at_forgetting(run.accs, run.margins, epochs, run.lengths)

    ids, per_run = reduce_runs(paths, epochs, reduce, with_margins=True)
    total = np.sum([t for t, _ in per_run], axis=0)
    events = np.sum([e for _, e in per_run], axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 -> NaN: no forgetting event
        margin = total / events
    return Margins(ids, margin, events)
