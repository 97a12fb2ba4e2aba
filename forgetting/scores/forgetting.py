"""Forgetting events (SPEC section 4): the paper's score. Pure, vectorised numpy.

Over the first ``epochs`` presentations, a forgetting event is a presentation where acc is
0 right after one where it was 1; an example never classified correctly counts ``epochs``
events (the flag value, even if the run has fewer presentations), as the original did.
"""
import numpy as np

from forgetting.scores.stats_arrays import first_presentations


def forgetting_counts(accs, epochs, lengths=None):
    """Forgetting events per example over the first ``epochs`` presentations.

    ``accs``: 2-D int/bool array, nonzero = classified correctly. ``lengths``: optional
    per-row count of real presentations (for padded ragged runs). Returns int64 (n,):
    the number of 1 -> 0 transitions, or ``epochs`` for an example never correct.
    """
    correct, lengths = first_presentations(accs, epochs, lengths)
    correct = correct.astype(bool)
    n, p = correct.shape
    position = np.arange(p)
    real = position[None, :] < lengths[:, None]
    correct = correct & real
    # A transition from column t to t+1 is real when t+1 < length.
    forgotten = correct[:, :-1] & ~correct[:, 1:] & real[:, 1:]
    counts = forgotten.sum(axis=1, dtype=np.int64)
    never_learned = ~correct.any(axis=1)
    counts[never_learned] = epochs
    return counts
