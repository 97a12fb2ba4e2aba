#!/usr/bin/env python
"""Every training run below a directory as one row of a table (CSV), and a summary over seeds.

Finds runs as order_examples_by_forgetting.py does (``--input_dir``, ``--input_fname_args``)
and reads each run's small files, never its stats pickle (forgetting/sweep/results.py). In a
notebook: ``from collect_results import collect; df = collect('mnist_results')``.
"""
import argparse
import os

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files import atomic
from forgetting.files.outdir import check_output_dir, make_output_dir
from forgetting.sweep.results import (RESULT_COLUMNS, add_selection_flags, check_selection,
                                      collect, format_summary, summarize)

__all__ = ["collect", "main"]


def parse_args(argv=None):
    parser = ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Collect every training run of run_mnist.py / run_cifar.py below --input_dir into\n"
            "one table, one row per run: a column per flag that changes results (typed), then\n"
            f"{', '.join(RESULT_COLUMNS)}.\n"
            "Reads each run's record (__run.json; runs without one: resume state, stats log and\n"
            "best_acc.txt), never its stats pickle. Prints a summary grouped by every flag but\n"
            "seed: runs, finished runs,\n"
            "mean and std of the final test accuracy (%) over the finished runs."
        ),
        epilog=(
            "finished: the run committed all its epochs (its own --epochs, or --epochs when\n"
            "given) and its stats pickle is complete. Runs still going, stopped, killed,\n"
            "diverged or damaged are rows with\n"
            "finished=False and the reason in 'problem'.\n"
            "\n"
            "example:\n"
            "  python collect_results.py --input_dir mnist_results \\\n"
            "      --input_fname_args dataset mnist --output mnist_results.csv"
        ),
    )
    parser.add_argument("--input_dir", required=True,
                        help="directory searched recursively for runs (their *stats_dict.pkl)")
    add_selection_flags(parser)
    parser.add_argument("--output", default="results.csv",
                        help="the CSV file to write (default: results.csv)")
    parser.add_argument("--verify", action="store_true",
                        help="also read every byte of each run's resume state, stats log and "
                             "stats pickle and check them against their checksums (a damaged "
                             "run: finished=False, 'damaged' in problem); about 1 s per "
                             "50,000 x 200 run, so off by default")
    return parser.parse_args(argv)


def check_args(args):
    """Refuse bad input before reading anything, touching nothing."""
    fname_args = check_selection(args)
    if os.path.isdir(args.output) or not os.path.basename(args.output):
        raise UsageError(f"--output {args.output} is a directory; give a file name such as "
                         "results.csv")
    check_output_dir(os.path.dirname(args.output) or ".", "--output's directory")
    return fname_args


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    fname_args = check_args(args)
    frame = collect(args.input_dir, fname_args, epochs=args.epochs, say=print, verbose=args.verbose,
                    verify=args.verify)
    if frame.empty:
        raise UsageError(f"No input files found in {args.input_dir} that match {fname_args}")
    make_output_dir(os.path.dirname(args.output) or ".", "--output's directory")
    try:
        atomic.write_text(args.output, frame.to_csv(index=False))
    except OSError as err:
        raise UsageError(f"cannot write --output {args.output}: {err.strerror or err}") from None
    unfinished = frame[~frame["finished"]]
    print(f"{len(frame)} runs ({len(frame) - len(unfinished)} finished) from {args.input_dir}; "
          f"wrote {args.output}")
    for _, run in unfinished.head(5).iterrows():
        print(f"  not finished: {os.path.basename(run['path'])}: {run['problem']}")
    if len(unfinished) > 5:
        print(f"  ... and {len(unfinished) - 5} more (see the 'problem' column)")
    print(format_summary(summarize(frame)))


if __name__ == "__main__":
    main()
