"""The sorting file's order: ascending score, ties by ascending example id (SPEC section 7)."""
import numpy as np


def sort_by_score(ids, scores):
    """``(ids, scores)`` ordered by ascending score, ties by ascending id.

    Returns ``(int64 ids, scores)`` as new arrays. NaN scores sort last.
    """
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 1:
        raise ValueError("ids and scores must be 1-D arrays of the same length")
    order = np.lexsort((ids, scores))  # last key is the primary one
    return ids[order], scores[order]
