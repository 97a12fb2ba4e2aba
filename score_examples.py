#!/usr/bin/env python
"""Rank training examples by a difficulty score and write the sorting file a removal run reads.

Same run selection as order_examples_by_forgetting.py (``--input_dir``, ``--input_fname_args``,
``--epochs``). ``--score NAME`` writes ``<output_dir>/<output_name>.pkl`` =
``{'indices': example ids easiest first, <key>: the matching values}``, ties by ascending id
(``--ties random``: in a seeded shuffle, as the ordering script), so ``--sorting_file
<output_name> --remove_n r --keep_lowest_n 0`` removes the r easiest examples under that score.
``--compare A B ...`` prints the Spearman rank correlations of several scores over the same
runs instead. The scores, their keys and directions are in forgetting/scores/catalog.py; bad
input is one ``error:`` line and exit status 2.
"""
import argparse
import os

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.run_selection import (add_combining_flags, check_run_selection,
                                            runs_to_combine)
from forgetting.files.outdir import check_output_dir, write_output_pickle
from forgetting.scores.catalog import SCORES
from forgetting.scores.over_runs import score_runs
from forgetting.scores.ranking import add_tie_flags, check_tie_flags, sort_by_score


def _score_list():
    width = max(map(len, SCORES))
    lines = []
    for score in SCORES.values():
        lines.append(f"  {score.name:{width}s}  {score.direction}; key '{score.key}'")
        lines.append(f"  {'':{width}s}  {score.summary}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score every training example over one or more training runs and write the examples\n"
            "easiest first: the sorting file that run_mnist.py and run_cifar.py take with\n"
            "--sorting_file. Stats-based scores read the runs' *stats_dict.pkl files and are\n"
            "computed per run, then averaged (forgetting: summed, as the ordering script);\n"
            "el2n and grand need the weights that the training scripts save with\n"
            "--save_weights_at E, taken at --weights_epoch E (or each at its own epoch,\n"
            "--weights_epoch el2n=E1 grand=E2) and averaged over runs."
        ),
        epilog=(
            "scores (direction: which end is easy; 'indices' always lists the easiest first):\n"
            f"{_score_list()}\n"
            "\n"
            "output: <output_dir>/<output_name>.pkl = {'indices': int64 ids easiest first (ties by\n"
            "ascending id; --ties random: a seeded shuffle), <key>: the matching values}; --score\n"
            "forgetting writes the very file of order_examples_by_forgetting.py (same --ties).\n"
            "\n"
            "examples:\n"
            "  python score_examples.py --score aum --input_dir cifar10_results \\\n"
            "      --input_fname_args dataset cifar10 data_augmentation True \\\n"
            "      --output_dir cifar10_results --output_name cifar10_aum\n"
            "  python score_examples.py --score el2n --weights_epoch 20 --input_dir cifar10_results \\\n"
            "      --output_dir cifar10_results --output_name cifar10_el2n\n"
            "  python score_examples.py --compare forgetting aum el2n grand \\\n"
            "      --weights_epoch el2n=20 grand=0 --input_dir cifar10_results"
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--score", choices=list(SCORES), metavar="NAME",
                      help=f"the score to write: {', '.join(SCORES)}")
    what.add_argument("--compare", nargs="+", choices=list(SCORES), metavar="NAME",
                      help="print the Spearman rank correlation between these scores over the same "
                           "runs (each oriented easiest first, so +1 = same order); writes nothing")
    parser.add_argument("--input_dir", required=True,
                        help="directory searched recursively for training runs' *stats_dict.pkl files")
    parser.add_argument("--input_fname_args", nargs="+", metavar="ARG_OR_VALUE",
                        help="name/value pairs that select input files, as in "
                             "order_examples_by_forgetting.py: 'arg1 val1 arg2 val2 ...'")
    parser.add_argument("--output_dir", help="directory for the sorting file (created if missing); "
                                             "needed with --score")
    parser.add_argument("--output_name", help="file name of the sorting file; '.pkl' is appended "
                                              "unless present; needed with --score")
    add_combining_flags(parser, "presentations per run that the stats-based scores consider "
                                "(the first ones)")
    parser.add_argument("--weights_epoch", nargs="+", metavar="E|NAME=E",
                        help="el2n/grand: the weights saved after epoch E (--save_weights_at E; "
                             "0 = at initialisation, the paper's choice for grand; the paper "
                             "takes el2n early, ~20 on CIFAR-10); NAME=E takes score NAME at its "
                             "own epoch, e.g. el2n=20 grand=0 with --compare")
    parser.add_argument("--data_dir", default="/tmp/data",
                        help="el2n/grand: where torchvision's datasets are (default: /tmp/data)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                        help="el2n/grand: where to run the model (default: auto)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="el2n/grand: examples per forward pass (el2n, default 1000) or per "
                             "batched per-example backward pass (grand, default: what fits in "
                             "~1 GiB of gradients)")
    add_tie_flags(parser)
    parser.set_defaults(no_cuda=False)  # forgetting.cli.pick_device reads it
    return check_tie_flags(parser.parse_args(argv))


def check_args(args, names):
    """Refuse what can be refused from the flags alone, before reading anything."""
    check_run_selection(args.input_fname_args, args.epochs, args.input_dir)
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    args.weights_epochs = weights_epochs(args.weights_epoch, names)
    if args.score is not None:
        for flag in ("output_dir", "output_name"):
            if not getattr(args, flag):
                raise UsageError(f"--score needs --{flag}")
        name = args.output_name[:-len(".pkl")] if args.output_name.endswith(".pkl") else args.output_name
        if not os.path.basename(name):
            raise UsageError(f"--output_name {args.output_name!r} has no file name")
        check_output_dir(args.output_dir, "--output_dir")
        return name
    return None


def weights_epochs(words, names):
    """{model-based score of ``names``: its --weights_epoch} from the flag's words: ``E`` for
    every such score, ``NAME=E`` for one of them (overriding ``E``)."""
    model_based = [name for name in names if SCORES[name].from_weights]
    if not model_based:
        return {}
    if not words:
        verb = "needs" if len(model_based) == 1 else "need"
        raise UsageError(f"{' and '.join(model_based)} {verb} --weights_epoch E: the runs' weights "
                         "saved by --save_weights_at E (0 = at initialisation)")
    every, own = None, {}
    for word in words:
        name, _, number = word.rpartition("=")
        try:
            epoch = int(number)
        except ValueError:
            epoch = -1
        if epoch < 0:
            raise UsageError(f"--weights_epoch {word}: give an epoch (a whole number, 0 or more) "
                             "or NAME=EPOCH")
        if not name:
            if every is not None:
                raise UsageError(f"--weights_epoch has two epochs for every score ({every} and "
                                 f"{epoch}); give one, or NAME=E per score")
            every = epoch
        elif name not in model_based:
            raise UsageError(f"--weights_epoch {word}: {name} is not a weights-based score asked "
                             f"for here ({', '.join(model_based)})")
        elif name in own:
            raise UsageError(f"--weights_epoch gives {name} two epochs ({own[name]} and {epoch})")
        else:
            own[name] = epoch
    missing = [name for name in model_based if name not in own and every is None]
    if missing:
        raise UsageError(f"--weights_epoch gives no epoch for {' and '.join(missing)}; add "
                         f"{missing[0]}=E")
    return {name: own.get(name, every) for name in model_based}


def model_device(args, names):
    """The torch device for el2n/grand (None when no score needs a model: no torch import)."""
    if not any(SCORES[name].from_weights for name in names):
        return None
    from forgetting.cli import pick_device

    return pick_device(args)


def print_comparison(ids, values, names, n_runs):
    """The Spearman table of the scores, each oriented so that ascending = easiest first."""
    import pandas as pd

    table = pd.DataFrame({name: -values[name] if SCORES[name].high_is_easy else values[name]
                          for name in names}, index=ids)
    print(f"Spearman rank correlation over {len(ids)} examples and {n_runs} run(s) "
          "(each score oriented easiest first; +1 = the same order):")
    print(table.corr(method="spearman").round(3).to_string())


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    names = [args.score] if args.score else list(dict.fromkeys(args.compare))
    name = check_args(args, names)
    device = model_device(args, names)
    runs, epochs = runs_to_combine(args)
    paths = [run.path for run in runs]
    ids, values = score_runs(paths, names, epochs, args.weights_epochs, device,
                             args.data_dir, args.batch_size)
    if args.compare:
        print_comparison(ids, values, names, len(paths))
        return
    score = SCORES[args.score]
    sorted_ids, sorted_values = sort_by_score(ids, values[score.name], descending=score.high_is_easy,
                                              ties=args.ties, ties_seed=args.ties_seed)
    if score.name == "forgetting":
        print(f"Number of unforgettable examples: {int((sorted_values == 0).sum())}")
    out_path = os.path.join(args.output_dir, name + ".pkl")
    write_output_pickle(out_path, {"indices": sorted_ids, score.key: sorted_values})
    print(f"Wrote {len(sorted_ids)} examples, easiest first by {score.name} ({score.direction}), "
          f"from {len(paths)} run(s) to {out_path}")


if __name__ == "__main__":
    main()
