"""The correlations and retrieval scores the paper reports, on one value per example.

Pure numpy (no scipy: not a dependency of the project). Every function returns a Python float,
NaN where the number is undefined (fewer than two values, a constant input, an empty set), so
a measured line prints ``nan`` rather than a warning or a traceback.
"""
import numpy as np


def pearson(x, y):
    """Pearson's correlation of two equal-length arrays; NaN with fewer than two values or a
    constant input."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of one length, got {x.shape} and {y.shape}")
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    norm = np.sqrt((dx @ dx) * (dy @ dy))
    if norm == 0:
        return float("nan")
    # Rounding can carry |r| a hair past 1 for (anti)identical inputs.
    return float(np.clip((dx @ dy) / norm, -1.0, 1.0))


def average_ranks(x):
    """Ranks 1..n of ``x``, tied values sharing the mean of their ranks (Spearman's
    convention); float64 (n,)."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    # Runs of equal values in sorted order: each gets the mean of its positions (1-based).
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], x.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x, y):
    """Spearman's rank correlation: Pearson's of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def precision_recall(retrieved, relevant):
    """``(precision, recall)`` of the boolean mask ``retrieved`` against ``relevant``:
    |both| / |retrieved| and |both| / |relevant|, NaN for an empty denominator."""
    retrieved = np.asarray(retrieved, dtype=bool)
    relevant = np.asarray(relevant, dtype=bool)
    if retrieved.shape != relevant.shape:
        raise ValueError(f"masks of different shapes: {retrieved.shape} and {relevant.shape}")
    both = int(np.count_nonzero(retrieved & relevant))
    n_retrieved, n_relevant = int(retrieved.sum()), int(relevant.sum())
    return (both / n_retrieved if n_retrieved else float("nan"),
            both / n_relevant if n_relevant else float("nan"))
