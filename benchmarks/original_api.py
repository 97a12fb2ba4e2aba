#!/usr/bin/env python
"""The original ordering script's notebook functions: ours (vectorised, in
forgetting/scores/original.py) against a plain loop over the dict, one example at a time
(tests/original_loops.py, the tests' oracle, shaped like the original's code).

One synthetic run of n x E (default 50,000 x 200) as the dict ``pickle.load`` gives:
* ``compute_forgetting_statistics(stats, E)``;
* ``sort_examples_by_forgetting`` over 5 runs' dicts (the same run 5 times).
Prints medians of ``--repeats`` for ours and one timing of the loop (it is slow).
"""
import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, spread  # noqa: E402
from ordering_at_scale import synthetic_records  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests"))
from original_loops import original_compute, original_counts  # noqa: E402

from forgetting.files.stats_pickle import build_stats_dict  # noqa: E402
from forgetting.scores.original import compute_forgetting_statistics, sort_examples_by_forgetting  # noqa: E402


def timed(function, *args):
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):   # the sort prints a line
        result = function(*args)
    return time.perf_counter() - started, result


def loop_sort(unlearned_all, first_all, npresentations):
    counts = original_counts(unlearned_all, first_all, npresentations)
    ids, values = np.array(list(counts)), np.array(list(counts.values()))
    order = np.argsort(values)
    return ids[order], values[order]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 x 20 (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.epochs = 5000, 20
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
