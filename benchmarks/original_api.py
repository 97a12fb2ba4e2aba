#!/usr/bin/env python
"""The original ordering script's notebook functions: ours (vectorised, in
forgetting/scores/original.py) against a plain loop over the dict, one example at a time
(tests/original_loops.py, the tests' oracle, shaped like the original's code).

One synthetic run of n x E (default 50,000 x 200) as the dict ``pickle.load`` gives:
* ``compute_forgetting_statistics(stats, E)``;
* ``sort_examples_by_forgetting`` over 5 runs' dicts (the same run 5 times).
Prints CPU seconds: medians of ``--repeats`` for ours, one timing of the loop (it is slow).
"""
import contextlib
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, parse_size_args, spread  # noqa: E402
from ordering_at_scale import synthetic_records  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests"))
from original_loops import original_compute, original_counts  # noqa: E402

from forgetting.files.stats_pickle import build_stats_dict  # noqa: E402
from forgetting.scores.original import compute_forgetting_statistics, sort_examples_by_forgetting  # noqa: E402


def timed(function, *args):
    started = time.process_time()   # CPU time: the machine is shared with other jobs
    with contextlib.redirect_stdout(io.StringIO()):   # the sort prints a line
        result = function(*args)
    return time.process_time() - started, result


def loop_sort(unlearned_all, first_all, npresentations):
    counts = original_counts(unlearned_all, first_all, npresentations)
    ids, values = np.array(list(counts)), np.array(list(counts.values()))
    order = np.argsort(values)
    return ids[order], values[order]


def main(argv=None):
    args = parse_size_args(__doc__, argv, repeats=3)
    header(f"the original's ordering functions, {args.n:,} x {args.epochs}")
    stats = build_stats_dict(np.arange(args.n), synthetic_records(args.n, args.epochs, seed=0))
    ours = [timed(compute_forgetting_statistics, stats, args.epochs) for _ in range(args.repeats)]
    loop_seconds, expected = timed(original_compute, stats, args.epochs)
    assert list(ours[0][1][0].items()) == list(expected[0].items())
    print(f"compute_forgetting_statistics: ours {median([t for t, _ in ours]):.3f} s "
          f"({spread([t for t, _ in ours])}), plain loop {loop_seconds:.3f} s")
    per_run = ours[0][1]
    unlearned_all, first_all = [per_run[1]] * 5, [per_run[3]] * 5
    sorts = [timed(sort_examples_by_forgetting, unlearned_all, first_all, args.epochs)
             for _ in range(args.repeats)]
    loop_seconds, (loop_ids, loop_counts) = timed(loop_sort, unlearned_all, first_all, args.epochs)
    np.testing.assert_array_equal(sorts[0][1][1], loop_counts)
    print(f"sort_examples_by_forgetting, 5 runs: ours {median([t for t, _ in sorts]):.3f} s "
          f"({spread([t for t, _ in sorts])}), plain loop {loop_seconds:.3f} s")


if __name__ == "__main__":
    main()
