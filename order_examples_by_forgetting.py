"""Order training examples by how often they were forgotten (and, optionally, by MLI).

Reads the ``*stats_dict.pkl`` files that run_mnist.py / run_cifar.py wrote (one per
training run), counts each example's forgetting events over the first ``--epochs``
presentations of every run (docs/scores.md#forgetting-events), sums them over runs, and writes the
sorting file that a removal run reads with ``--sorting_file``:

    {'indices': int64 example ids by ascending count (ties by ascending id, or with
     --ties random in a seeded shuffle: forgetting/scores/ranking.py),
     'forgetting counts': the matching int64 counts}

With ``--output_dir_MLI`` it also writes ``<name>_MLI.pkl`` ordered by Max Loss Increase,
the mean over runs of each example's largest loss rise between consecutive presentations
(docs/scores.md#max-loss-increase).

Runs are streamed: one stats file is loaded, reduced to per-example counts, and dropped
before the next is read, so peak memory is about one loaded file. Every input is
checked before anything is written; bad input is one ``error:`` line and exit status 2.

Output lines: ``including file: <name>`` / ``skipping file: <name>`` for every file whose
name ends in ``stats_dict.pkl`` (other files are passed over silently, as the original
script did), then ``Number of unforgettable examples: K``.

Notebooks written for the original import its functions from here, with the original's
arguments and return values: ``compute_forgetting_statistics(diag_stats, npresentations)``,
``sort_examples_by_forgetting(unlearned_per_presentation_all, first_learned_all,
npresentations)`` (both in forgetting/scores/original.py) and ``check_filename(fname,
args_list)``. Importing this module runs nothing.
"""
import argparse
import os
import shlex

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.naming import has_fname_args
from forgetting.files.outdir import check_output_dir, write_output_pickle
from forgetting.files.run_selection import (add_combining_flags, check_run_selection,
                                            runs_to_combine)
from forgetting.scores import forgetting_counts, max_loss_increase, sort_by_score
from forgetting.scores.original import compute_forgetting_statistics, sort_examples_by_forgetting
from forgetting.scores.over_runs import check_same_ids
from forgetting.scores.ranking import add_tie_flags, check_tie_flags
from forgetting.scores.stats_arrays import load_run_arrays

# What notebooks written for the original import from this script (see the docstring).
__all__ = ["check_filename", "compute_forgetting_statistics", "main", "sort_examples_by_forgetting"]


def parse_args(argv=None):
    parser = ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Count forgetting events per training example over one or more training runs and\n"
            "write the examples sorted by ascending count: the sorting file that run_mnist.py\n"
            "and run_cifar.py take with --sorting_file. A forgetting event is a presentation\n"
            "where the example is misclassified right after one where it was classified\n"
            "correctly; an example never classified correctly in a run counts --epochs events\n"
            "for that run. Counts are summed over runs, which must hold the same example ids."
        ),
        epilog=(
            "output:\n"
            "  <output_dir>/<output_name>.pkl       {'indices': int64 example ids by ascending\n"
            "                                        count, ties by ascending id,\n"
            "                                        'forgetting counts': the matching int64 counts}\n"
            "  <output_dir_MLI>/<output_name>_MLI.pkl (with --output_dir_MLI)\n"
            "                                       {'indices': ids by ascending mean Max Loss\n"
            "                                        Increase, ties by ascending id,\n"
            "                                        'max loss increase': the matching float64 scores}\n"
            "  --ties random [--ties_seed S] orders ties in a seeded shuffle instead of by id.\n"
            "  stdout: 'including file: NAME' / 'skipping file: NAME' per *stats_dict.pkl file,\n"
            "  then 'Number of unforgettable examples: K'. Bad input: one 'error:' line, exit 2.\n"
            "\n"
            "example:\n"
            "  python order_examples_by_forgetting.py --input_dir mnist_results \\\n"
            "      --input_fname_args dataset mnist no_dropout True sorting_file none \\\n"
            "                         remove_n 0 keep_lowest_n 0 \\\n"
            "      --output_dir mnist_results --output_name mnist_sorted"
        ),
    )
    parser.add_argument(
        "--input_dir", type=str, required=True,
        help="directory searched recursively for training runs' *stats_dict.pkl files",
    )
    parser.add_argument(
        "--input_fname_args", nargs="+", metavar="ARG_OR_VALUE",
        help="name/value pairs that select input files: 'arg1 val1 arg2 val2 ...' keeps a "
        "file only if its name contains '<arg>_<val>__' for every pair (leave out --seed to "
        "combine all seeds); without it every *stats_dict.pkl file is used",
    )
    parser.add_argument(
        "--output_dir", type=str, required=True,
        help="directory for the sorting file (created if missing)",
    )
    parser.add_argument(
        "--output_name", type=str, required=True,
        help="file name of the sorting file; '.pkl' is appended unless present",
    )
    add_combining_flags(
        parser, "number of presentations per run to consider (the first ones), and the count "
        "given to an example never classified correctly in a run")
    parser.add_argument(
        "--output_dir_MLI", type=str, default=None, metavar="DIR",
        help="also write DIR/<output_name>_MLI.pkl, the examples ordered by Max Loss "
        "Increase (mean over runs of max_t loss[t+1] - loss[t]); created if missing",
    )
    add_tie_flags(parser)
    return check_tie_flags(parser.parse_args(argv))


def check_filename(fname, args_list):
    """The original's filter: 1 if ``fname`` holds ``'<arg>_<val>__'`` for every pair of
    ``args_list`` (``[arg1, val1, arg2, val2, ...]``, or None for no filter), else print
    ``skipping file: <fname>`` and return 0."""
    if args_list is None or has_fname_args(fname, args_list):
        return 1
    print('skipping file: ' + fname)
    return 0


def score_run(path, epochs, with_mli):
    """One run's ``(ids, forgetting counts, MLI or None)``; the loaded file is dropped on return."""
    run = load_run_arrays(path, epochs, with_losses=with_mli)
    counts = forgetting_counts(run.accs, epochs, run.lengths)
    mli = max_loss_increase(run.losses, epochs, run.lengths) if with_mli else None
    return run.ids, counts, mli


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    check_run_selection(args.input_fname_args, args.epochs, args.input_dir)
    name = args.output_name[:-len(".pkl")] if args.output_name.endswith(".pkl") else args.output_name
    if not os.path.basename(name):
        raise UsageError(f"--output_name {args.output_name!r} has no file name")
    check_output_dir(args.output_dir, "--output_dir")
    if args.output_dir_MLI is not None:
        check_output_dir(args.output_dir_MLI, "--output_dir_MLI")

    runs, epochs = runs_to_combine(args)
    paths = [run.path for run in runs]

    with_mli = args.output_dir_MLI is not None
    ids = total_counts = mli_sum = None
    for path in paths:
        run_ids, counts, mli = score_run(path, epochs, with_mli)
        if ids is None:
            ids, total_counts, mli_sum = run_ids, counts, mli
            first_path = path
            continue
        check_same_ids(path, run_ids, first_path, ids)
        total_counts += counts
        if with_mli:
            mli_sum += mli

    sorted_ids, sorted_counts = sort_by_score(ids, total_counts, ties=args.ties, ties_seed=args.ties_seed)
    print(f"Number of unforgettable examples: {int((total_counts == 0).sum())}")
    out_path = os.path.join(args.output_dir, name + ".pkl")
    write_output_pickle(out_path, {"indices": sorted_ids, "forgetting counts": sorted_counts}, "--output_dir")
    print(f"Wrote {len(sorted_ids)} examples from {len(paths)} run(s) to {out_path}")

    if with_mli:
        mli_ids, mli_scores = sort_by_score(ids, mli_sum / len(paths), ties=args.ties, ties_seed=args.ties_seed)
        mli_name = f"{name}_MLI"
        mli_path = os.path.join(args.output_dir_MLI, mli_name + ".pkl")
        write_output_pickle(mli_path, {"indices": mli_ids, "max loss increase": mli_scores}, "--output_dir_MLI")
        print(f"Wrote the Max Loss Increase ordering to {mli_path}")
        print(
            "To remove examples by MLI, give the training script: "
            f"--input_dir {shlex.quote(args.output_dir_MLI)} --sorting_file {shlex.quote(mli_name)}"
        )


if __name__ == "__main__":
    main()
