"""Forgetting events (docs/scores.md#forgetting-events): the paper's score. Pure, vectorised numpy.

Over the first ``epochs`` presentations, a forgetting event is a presentation where acc is
0 right after one where it was 1; an example never classified correctly counts ``epochs``
events (the flag value, even if the run has fewer presentations), as the original did.
"""
import numpy as np

from forgetting.scores.stats_arrays import first_presentations


def forgetting_events(accs, epochs, lengths=None):
    """Where each example was forgotten, over the first ``epochs`` presentations.

    ``accs``: 2-D int/bool array, nonzero = classified correctly. ``lengths``: optional
    per-row count of real presentations (for padded ragged runs). Returns ``(events,
    correct)``, two bool arrays of shape (n, p): ``events[i, t]`` is True when example i
    was misclassified at presentation t (0-based) after being correct at t - 1 (column 0
    is always False), and ``correct`` is ``accs`` with the padding set to False.
    """
    correct, lengths = first_presentations(accs, epochs, lengths)
    correct = correct.astype(bool)
    real = np.arange(correct.shape[1])[None, :] < lengths[:, None]
    correct = correct & real
    events = np.zeros_like(correct)
    # A transition from column t - 1 to t is real when t < length.
    events[:, 1:] = correct[:, :-1] & ~correct[:, 1:] & real[:, 1:]
    return events, correct


def forgetting_counts(accs, epochs, lengths=None):
    """Forgetting events per example over the first ``epochs`` presentations.

    Arguments as ``forgetting_events``. Returns int64 (n,): the number of 1 -> 0
    transitions, or ``epochs`` for an example never correct.
    """
    events, correct = forgetting_events(accs, epochs, lengths)
    counts = events.sum(axis=1, dtype=np.int64)
    counts[~correct.any(axis=1)] = epochs
    return counts
