"""The sorting file's order: easiest first, ties by ascending example id (SPEC section 7)."""
import numpy as np


def sort_by_score(ids, scores, descending=False):
    """``(ids, scores)`` ordered by ascending score (``descending``: by descending score, for
    scores where high means easy), ties by ascending id either way.

    Returns ``(int64 ids, scores)`` as new arrays. NaN scores sort last.
    """
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 1:
        raise ValueError("ids and scores must be 1-D arrays of the same length")
    key = scores
    if descending:
        # Negating keeps NaN a NaN (still last); float64 so the negation of an int cannot wrap.
        key = -scores.astype(np.float64)
    order = np.lexsort((ids, key))  # last key is the primary one
    return ids[order], scores[order]
