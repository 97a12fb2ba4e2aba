"""Stability of forgetting counts across seeds (the paper's Sec. 6, "Across seeds": over 10
seeds of CIFAR-10 the mean Pearson correlation of two seeds' counts is 89.2%; the counts
summed within two random halves of 5 seeds correlate at 97.6%).

Each run's counts are its own forgetting counts over its first ``epochs`` presentations (an
example never learned in the run counts ``epochs``, as in the ordering script).

- **pairwise**: the correlation of two runs' counts, averaged over every pair of runs;
- **split-half**: the runs split into two halves (``R // 2`` and the rest), each half's counts
  summed as the ordering script sums them, and the two sums correlated. The paper reports one
  random split; here the correlation is averaged over every split into halves (each once, not
  also mirrored), or over ``MAX_SPLITS`` of them drawn with a fixed seed when there are more,
  so the number does not depend on which split chance picked.

Both with Pearson's correlation (the paper's) and Spearman's.
"""
import itertools
from typing import NamedTuple

import numpy as np

from forgetting.analysis.correlation import pearson, spearman
from forgetting.analysis.run_stream import reduce_runs
from forgetting.scores.forgetting import forgetting_counts

MAX_SPLITS = 128  # C(10, 5) / 2 = 126: every split of the paper's 10 seeds
CORRELATIONS = {"pearson": pearson, "spearman": spearman}


def per_run_counts(paths, epochs):
    """``(ids, counts)``: counts int64 (R, n), row r the forgetting counts of run ``paths[r]``."""
    ids, counts = reduce_runs(paths, epochs,
                              lambda run: forgetting_counts(run.accs, epochs, run.lengths))
    return ids, np.stack(counts)


def pairwise_matrix(counts, correlation=pearson):
    """(R, R) float64: ``correlation`` of every two runs' counts (1 on the diagonal)."""
    r = len(counts)
    matrix = np.eye(r)
    for a, b in itertools.combinations(range(r), 2):
        matrix[a, b] = matrix[b, a] = correlation(counts[a], counts[b])
    return matrix


def mean_pairwise(matrix):
    """The mean of the off-diagonal entries of a ``pairwise_matrix`` (NaN below 2 runs)."""
    r = len(matrix)
    if r < 2:
        return float("nan")
    return float(matrix[~np.eye(r, dtype=bool)].mean())


def half_splits(r, max_splits=MAX_SPLITS, seed=0):
    """The splits of ``r`` runs into two halves, as tuples of the first half's run indices
    (``r // 2`` of them). With an even ``r`` a split and its mirror image are the same split:
    only the one whose first half holds run 0 is kept. More than ``max_splits``: that many,
    drawn without replacement by ``numpy.random.RandomState(seed)``, in ascending order."""
    if r < 2:
        return []
    half = r // 2
    splits = [s for s in itertools.combinations(range(r), half) if r != 2 * half or 0 in s]
    if len(splits) > max_splits:
        keep = np.random.RandomState(seed).choice(len(splits), max_splits, replace=False)
        splits = [splits[i] for i in np.sort(keep)]
    return splits


def split_half_sums(counts, first_half):
    """``(sum over the runs in first_half, sum over the others)``, int64 (n,) each."""
    mask = np.zeros(len(counts), dtype=bool)
    mask[list(first_half)] = True
    return counts[mask].sum(axis=0), counts[~mask].sum(axis=0)


def mean_split_half(counts, correlation=pearson, splits=None):
    """The mean over ``splits`` (default ``half_splits(R)``) of the correlation of the two
    halves' summed counts."""
    splits = half_splits(len(counts)) if splits is None else splits
    return float(np.mean([correlation(*split_half_sums(counts, s)) for s in splits]))


class Stability(NamedTuple):
    pairwise: dict  # {"pearson": mean, "spearman": mean}
    split_half: dict  # {"pearson": mean, "spearman": mean}; {} below 4 runs
    matrix: np.ndarray  # (R, R) Pearson matrix
    splits: list  # the splits averaged over


def stability(counts, min_runs_split_half=4):
    """Pairwise and split-half correlations of per-run ``counts`` (R, n); split-half only from
    ``min_runs_split_half`` runs on (halves of one run say nothing about summing)."""
    matrix = pairwise_matrix(counts, pearson)
    pairwise = {"pearson": mean_pairwise(matrix),
                "spearman": mean_pairwise(pairwise_matrix(counts, spearman))}
    splits, split_half = [], {}
    if len(counts) >= min_runs_split_half:
        splits = half_splits(len(counts))
        split_half = {name: mean_split_half(counts, corr, splits)
                      for name, corr in CORRELATIONS.items()}
    return Stability(pairwise, split_half, matrix, splits)
