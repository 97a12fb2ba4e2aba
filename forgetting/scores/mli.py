"""Max Loss Increase (docs/scores.md#max-loss-increase). Pure, vectorised numpy.

``max_t loss[t+1] - loss[t]`` over the first ``epochs`` presentations, 0 with fewer than
two presentations. A NaN loss makes the example's MLI NaN (as ``np.max`` would).
"""
import numpy as np

from forgetting.scores.stats_arrays import first_presentations


def max_loss_increase(losses, epochs, lengths=None):
    """Largest rise of the loss between consecutive presentations, per example.

    ``losses``: 2-D float array; ``lengths`` as in ``forgetting_counts``. Returns float64
    (n,): ``max_t losses[t+1] - losses[t]`` over the first ``epochs`` presentations, 0
    for an example with fewer than two.
    """
    values, lengths = first_presentations(losses, epochs, lengths)
    values = values.astype(np.float64, copy=False)
    n, p = values.shape
    if p < 2:
        return np.zeros(n, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as np.diff per example gives
        rises = np.diff(values, axis=1)
    real = np.arange(1, p)[None, :] < lengths[:, None]
    scores = np.where(real, rises, -np.inf).max(axis=1)
    scores[lengths < 2] = 0.0
    return scores
