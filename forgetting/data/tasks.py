"""The two tasks of run_continual.py (the paper's Sec. 4.2, Fig. 4): which example ids each holds.

- ``random_split``: ``2 * task_size`` ids drawn at random from the training set, the first
  half task A, the second task B;
- ``forgetting_split``: from a sorting file's ``'forgetting counts'``, task A = ``task_size``
  ids drawn at random from those with zero forgetting events ("f0"), task B = ``task_size``
  drawn from those forgotten at least once ("fN"; examples never learned count as forgotten
  in the ordering script's files, so they are here).

Both draws come from ``numpy.random.RandomState(seed)``, a generator of their own (numpy's
frozen legacy stream: the same on every machine), so a partition depends on the seed and the
data alone, not on what else the run draws. The forgetting split draws from each group in
ascending id order, so the order of tied ids in the sorting file does not change it. Each
task's ids are in the order drawn.
"""
import numpy as np

from forgetting.data.selection import load_sorted_ids, sorting_file_path
from forgetting.errors import UsageError
from forgetting.files import safe_pickle
from forgetting.files.naming import TASK_NAMES
COUNTS_KEY = "forgetting counts"


def check_tasks(tasks):
    """Refuse a --tasks sequence that is empty or names a task other than A and B."""
    if not tasks or set(tasks) - set(TASK_NAMES):
        raise UsageError(f"--tasks is {tasks!r}; give the order of the tasks as letters A and B, "
                         "e.g. AB, BA or ABA")


def random_split(n_examples, task_size, seed):
    """``(task A ids, task B ids)``: ``2 * task_size`` distinct ids of ``0..n_examples-1``."""
    if 2 * task_size > n_examples:
        raise UsageError(f"--task_size {task_size} needs {2 * task_size:,} training examples for "
                         f"two tasks; the dataset has {n_examples:,}: give --task_size "
                         f"{n_examples // 2} or less")
    chosen = np.random.RandomState(seed).permutation(n_examples)[:2 * task_size].astype(np.int64)
    return chosen[:task_size], chosen[task_size:]


def load_forgetting_counts(input_dir, sorting_file, n_examples):
    """``(ids, counts, path)`` of a sorting file: its validated ``'indices'`` and the matching
    ``'forgetting counts'`` (int64, non-negative)."""
    path = sorting_file_path(input_dir, sorting_file)
    ids = load_sorted_ids(input_dir, sorting_file, n_examples)
    content = safe_pickle.load(path)
    if COUNTS_KEY not in content:
        keys = ", ".join(repr(k) for k in content if k != "indices") or "none"
        raise UsageError(f"{path} has no {COUNTS_KEY!r} entry (its scores: {keys}); --split "
                         "forgetting needs a sorting file of order_examples_by_forgetting.py")
    try:
        counts = np.asarray(content[COUNTS_KEY], dtype=np.float64)
    except (ValueError, TypeError):
        counts = None
    if (counts is None or counts.shape != ids.shape or not np.isfinite(counts).all()
            or (counts < 0).any() or (counts != np.round(counts)).any()):
        raise UsageError(f"{path}: {COUNTS_KEY!r} must hold one non-negative whole count per id "
                         "of 'indices'; re-create the sorting file")
    return ids, counts.astype(np.int64), path


def forgetting_split(ids, counts, task_size, seed, path="the sorting file"):
    """``(f0 ids, fN ids)``: ``task_size`` ids drawn from those of ``ids`` whose count is 0,
    and as many from those whose count is 1 or more; ``path`` names the file in refusals."""
    groups = ((np.sort(ids[counts == 0]), "with zero forgetting events"),
              (np.sort(ids[counts >= 1]), "forgotten at least once"))
    for group, what in groups:
        if len(group) < task_size:
            raise UsageError(f"{path} has {len(group):,} examples {what}; --task_size "
                             f"{task_size} needs that many: give --task_size {len(group)} or less")
    rng = np.random.RandomState(seed)
    return tuple(rng.permutation(group)[:task_size].astype(np.int64) for group, _ in groups)
