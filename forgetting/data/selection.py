"""Which example ids train: the sorting-file removal window, random removal, remove_subsample;
and the one line a removal run prints about what it keeps of each class.

The selections return int64 numpy arrays of example ids in training order (docs/training.md#training-set).
Random draws use numpy's global generator, as the original did, so the caller must call
``select_train_ids`` right after seeding (random removal is the run's first numpy draw).
"""
import os

import numpy as np

from forgetting.files import safe_pickle
from forgetting.errors import UsageError


def sorting_file_candidates(input_dir, sorting_file):
    """The paths ``--sorting_file`` may mean, in the order they are tried.

    A plain name (no directory part) is the original's: ``<input_dir>/<name>.pkl``, then
    ``<input_dir>/<name>``; then the name as given, relative to the working directory, bare
    and with ``.pkl``. A path (a directory part, or absolute) is tried as given first (bare,
    then with ``.pkl``), then under ``input_dir`` as the original would.
    """
    original = [os.path.join(input_dir, sorting_file) + ".pkl", os.path.join(input_dir, sorting_file)]
    as_given = [sorting_file, sorting_file + ".pkl"]
    plain = not os.path.dirname(sorting_file)
    return list(dict.fromkeys(original + as_given if plain else as_given + original))


def sorting_file_path(input_dir, sorting_file):
    """The first of ``sorting_file_candidates`` that exists, or a UsageError naming them all."""
    # Not isfile: a FIFO or device of that name is then refused by the loader, saying what it
    # is, rather than reported missing (a directory is never a sorting file: skipped).
    candidates = sorting_file_candidates(input_dir, sorting_file)
    for path in candidates:
        if os.path.exists(path) and not os.path.isdir(path):
            return path
    raise UsageError(
        f"sorting file not found: --sorting_file {sorting_file} is none of {', '.join(candidates)}; "
        "check --input_dir and --sorting_file (or run order_examples_by_forgetting.py first)")


def load_sorted_ids(input_dir, sorting_file, n_examples):
    """The validated ``'indices'`` of a sorting file: a permutation-free list of distinct ids
    in ``0..n_examples-1`` (it may hold fewer than all ids)."""
    path = sorting_file_path(input_dir, sorting_file)
    content = safe_pickle.load(path)
    if not isinstance(content, dict) or "indices" not in content:
        raise UsageError(f"{path} has no 'indices' entry: it is not a sorting file written by "
                         "order_examples_by_forgetting.py")
    try:
        ids = safe_pickle.as_numbers(content["indices"])
        if not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
            raise ValueError
        ids = ids.astype(np.int64)
    except (ValueError, TypeError):
        raise UsageError(f"{path}: 'indices' must be a flat list of integer example ids") from None
    bad = ids[(ids < 0) | (ids >= n_examples)]
    if bad.size:
        raise UsageError(f"{path}: {bad.size} ids lie outside 0..{n_examples - 1} (e.g. {bad[0]}); "
                         "the sorting file was made for another dataset")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise UsageError(f"{path}: {int((counts > 1).sum())} ids appear more than once "
                         f"(e.g. {unique[counts > 1][0]}); re-create the sorting file")
    return ids


def check_removal_flags(remove_n, keep_lowest_n, sorting_file, remove_subsample=0):
    """Refuse impossible removal flags before any data is loaded."""
    if remove_n < 0:
        raise UsageError(f"--remove_n is {remove_n}; it must be 0 or more")
    if remove_subsample:
        if remove_subsample < 0:
            raise UsageError(f"--remove_subsample is {remove_subsample}; it must be 0 or more")
        if sorting_file == "none":
            raise UsageError("--remove_subsample needs a --sorting_file to take the lowest ids from")
        if remove_subsample > keep_lowest_n:
            raise UsageError(f"--remove_subsample {remove_subsample} is larger than --keep_lowest_n "
                             f"{keep_lowest_n}; it can remove at most keep_lowest_n examples")


def select_train_ids(n_examples, input_dir, sorting_file, remove_n, keep_lowest_n,
                     remove_subsample=0, say=print):
    """The training ids, in training order, for a training set of ``n_examples``.

    The flags must have passed ``check_removal_flags`` (the scripts check them before any data
    is loaded); what only the data can refuse (a sorting file, an empty set) is refused here.
    """
    sorted_ids = None if sorting_file == "none" else load_sorted_ids(input_dir, sorting_file, n_examples)

    if remove_subsample:
        if keep_lowest_n > len(sorted_ids):
            raise UsageError(f"--keep_lowest_n {keep_lowest_n} is larger than the sorting file's "
                             f"{len(sorted_ids)} ids; lower it")
        lowest = sorted_ids[:keep_lowest_n]
        kept = lowest[np.random.permutation(keep_lowest_n)[:keep_lowest_n - remove_subsample]]
        ids = np.concatenate([kept, sorted_ids[keep_lowest_n:]])
    elif keep_lowest_n < 0:
        if remove_n >= n_examples:
            raise UsageError(f"--remove_n {remove_n} removes the whole training set of {n_examples}; "
                             "remove fewer")
        ids = np.random.permutation(n_examples)[:n_examples - remove_n].astype(np.int64)
    elif sorted_ids is None:
        ids = np.arange(n_examples, dtype=np.int64)
    else:
        window = sorted_ids[keep_lowest_n:keep_lowest_n + remove_n]
        if len(window) < remove_n:
            say(f"note: the removal window {keep_lowest_n}..{keep_lowest_n + remove_n} runs past the "
                f"end of the sorting file ({len(sorted_ids)} ids); removing {len(window)} examples")
        ids = np.setdiff1d(np.arange(n_examples, dtype=np.int64), window)

    if len(ids) == 0:
        raise UsageError("the removal leaves no training examples; remove fewer (--remove_n) or "
                         "change --keep_lowest_n")
    return ids


def say_kept_per_class(labels, num_classes, ids, sorting_file, keep_lowest_n, say=print):
    """For a removal run (a sorting file, or random removal: ``keep_lowest_n < 0``), say in one
    line how many examples of each class 0..num_classes-1 train, of how many the full training
    set has: ``keeping 3000 of 4000 examples, per class (kept/all): 0:351/400 1:357/400 ...``.

    Classes are the true labels (before any label noise). A pruned training set can lose a
    class almost entirely (ties in a sorting file follow the ids), and this line shows it.
    """
    if sorting_file == "none" and keep_lowest_n >= 0:
        return
    labels = np.asarray(labels)
    kept = np.bincount(labels[ids], minlength=num_classes)
    total = np.bincount(labels, minlength=num_classes)
    per_class = " ".join(f"{c}:{k}/{t}" for c, (k, t) in enumerate(zip(kept.tolist(), total.tolist())))
    say(f"keeping {len(ids)} of {len(labels)} examples, per class (kept/all): {per_class}")
