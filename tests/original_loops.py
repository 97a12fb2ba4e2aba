"""The original ordering script's functions as plain loops over the dict, one example at a
time: the oracle for order_examples_by_forgetting's vectorised ones (tests/test_original_users.py)
and the baseline of benchmarks/original_api.py. Re-enacted from the original's described
semantics; ``margins`` is kept per example (the original kept only the last example's, see
docs/deviations.md, item 15)."""
import numpy as np


def original_compute(diag_stats, npresentations):
    needed, unlearned, margins, first_learned = {}, {}, {}, {}
    for example_id, example_stats in diag_stats.items():
        if isinstance(example_id, str):
            continue
        acc = np.array(example_stats[1][:npresentations])
        forgotten_at = [t + 1 for t in range(1, len(acc)) if acc[t - 1] == 1 and acc[t] == 0]
        unlearned[example_id] = np.array(forgotten_at) if forgotten_at else []
        wrong_at = [t for t in range(len(acc)) if acc[t] == 0]
        needed[example_id] = wrong_at[-1] + 1 if wrong_at else 0
        margins[example_id] = np.array(example_stats[2][:npresentations])
        right_at = [t for t in range(len(acc)) if acc[t] == 1]
        first_learned[example_id] = right_at[0] if right_at else np.nan
    return needed, unlearned, margins, first_learned


def original_counts(unlearned_all, first_learned_all, npresentations):
    """Each example's total count, in the first run's key order (before the sort)."""
    counts = {}
    for example_id in unlearned_all[0]:
        counts[example_id] = 0
        for unlearned, first_learned in zip(unlearned_all, first_learned_all):
            if np.isnan(first_learned[example_id]):
                counts[example_id] += npresentations
            else:
                counts[example_id] += len(unlearned[example_id])
    return counts


def original_check_filename(fname, args_list):
    if args_list is None:
        return 1, ""
    for i in range(0, len(args_list), 2):
        if args_list[i] + "_" + args_list[i + 1] + "__" not in fname:
            return 0, "skipping file: " + fname + "\n"
    return 1, ""
