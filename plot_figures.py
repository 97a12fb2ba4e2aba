#!/usr/bin/env python
"""The paper's figures from your own runs: one subcommand per figure.

    python plot_figures.py histogram --sorting_file mnist_results/mnist_sorted.pkl --output fig1.png
    python plot_figures.py removal --results results.csv --output fig6.png
    python plot_figures.py window --results results.csv --remove_n 5000 --output fig5_right.png
    python plot_figures.py datamap --input_dir mnist_results --input_fname_args dataset mnist \
        --output datamap.png
    python plot_figures.py continual --input_dir continual_results --output fig4_continual.png
    python plot_figures.py seeds --input_dir cifar10_results --output seeds.png
    python plot_figures.py epoch_budget --input_dir cifar10_results --budgets 25 75 --output f7.png

``--output``'s extension picks the format (.png, .pdf, .svg). A new figure is one entry in
SUBCOMMANDS: a help line, a function adding its flags, and one drawing a matplotlib Figure
from the parsed flags (forgetting/analysis/figures.py draws the existing ones). The statistics
(first_learning, margin, seeds, epoch_budget, cross_arch) are the entries of
forgetting/analysis/stat_commands.py; they print "measured: <key> = <value>" lines
(docs/analyses.md).
"""
import argparse
import os

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files import safe_pickle
from forgetting.files.run_selection import (add_combining_flags, add_runs_flags,
                                            add_verbose_flag, check_run_selection, find_runs,
                                            require_runs, runs_to_combine, same_value)
from forgetting.files.outdir import check_output_dir, make_output_dir
from forgetting.analysis import figures, stat_commands
from forgetting.analysis.results import add_selection_flags, check_selection, collect, read_results


def add_table_flags(parser):
    """Where the runs come from: a results CSV or a directory of runs (collected here)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", metavar="CSV",
                        help="a table written by collect_results.py")
    source.add_argument("--input_dir",
                        help="a directory of runs, collected as collect_results.py does")
    add_selection_flags(parser)


def load_table(args):
    """The runs the flags select, as a results DataFrame; refusals as one-line UsageErrors."""
    pairs = check_selection(args)
    if args.input_dir is not None:
        frame = collect(args.input_dir, pairs, epochs=args.epochs, say=print, verbose=args.verbose)
        where = args.input_dir
    else:
        try:
            frame = read_results(args.results)
        except FileNotFoundError:
            raise UsageError(f"--results {args.results} does not exist; write it with "
                             "collect_results.py") from None
        except Exception as err:  # whatever pandas says about a file that is not our table
            raise UsageError(f"--results {args.results} is not a table of collect_results.py "
                             f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        for name, value in zip(pairs[0::2], pairs[1::2]):  # the same rule as on file names
            if name not in frame.columns:
                raise UsageError(f"--input_fname_args: the table has no flag {name}")
            frame = frame[frame[name].map(lambda v, text=value: same_value(v, text)).astype(bool)]
        where = args.results
    if frame.empty:
        raise UsageError(f"No runs found in {where} that match {pairs}")
    return frame


def add_histogram_flags(parser):
    parser.add_argument("--sorting_file", nargs="+", required=True, metavar="PKL",
                        help="one or more sorting files of order_examples_by_forgetting.py; one "
                             "series each, labelled by its file name")
    parser.add_argument("--max_events", type=int, default=30, metavar="N",
                        help="the last bar holds the examples with N or more events (default: "
                             "30); examples never learned count --epochs events per run")


def draw_histogram(args):
    if args.max_events < 1:
        raise UsageError(f"--max_events must be at least 1, got {args.max_events}")
    series = []
    for path in args.sorting_file:
        label = os.path.basename(path)
        series.append((label[:-4] if label.endswith(".pkl") else label,
                       figures.load_counts(path, safe_pickle.load)))
    return figures.histogram_figure(series, args.max_events)


def add_window_flags(parser):
    add_table_flags(parser)
    parser.add_argument("--remove_n", type=int, required=True,
                        help="the window's size: runs with this --remove_n are drawn")


def add_datamap_flags(parser):
    add_runs_flags(parser, "directory searched recursively for the runs' *stats_dict.pkl files")
    add_combining_flags(parser, "presentations per run considered, the first ones")


def draw_datamap(args):
    """Confidence, variability and correctness per example, averaged over the selected runs."""
    from forgetting.scores.over_runs import score_runs
    from forgetting.analysis.datamap import datamap_figure

    check_selection(args)
    runs, epochs = runs_to_combine(args, list_included=False)
    paths = [run.path for run in runs]
    ids, values = score_runs(paths, ["variability", "confidence", "correctness"], epochs)
    title = f"Data map: {len(ids)} examples, {len(paths)} run(s), first {epochs} presentations"
    return datamap_figure(values["variability"], values["confidence"], values["correctness"], title)


def add_continual_flags(parser):
    add_runs_flags(parser, "directory searched recursively for run_continual.py's runs")
    add_verbose_flag(parser)


def draw_continual(args):
    """Figure 4 from run_continual.py's task tables; prints the accuracy each task loses
    while the other trains."""
    from forgetting.analysis.continual import continual_figure, forgetting_lines, load_continual_runs
    from forgetting.training.continual import read_task_table

    pairs = check_run_selection(args.input_fname_args, None, args.input_dir)
    found = find_runs(args.input_dir, pairs, verbose=args.verbose, list_included=False)
    require_runs(found, args.input_dir, pairs)
    runs = load_continual_runs(found, read_task_table)
    for line in forgetting_lines(runs):
        print(line)
    return continual_figure(runs)


SUBCOMMANDS = {
    # name: (help, adds the subcommand's flags, draws the figure from the parsed flags)
    "histogram": ("Figure 1: fraction of examples per number of forgetting events",
                  add_histogram_flags, draw_histogram),
    "removal": ("Figures 5 left / 6: test accuracy vs percent of the training set removed, "
                "selected vs random", add_table_flags,
                lambda args: figures.removal_figure(load_table(args))),
    "window": ("Figure 5 right: test accuracy vs where a window of --remove_n removed examples "
               "starts in the sorted order", add_window_flags,
               lambda args: figures.window_figure(load_table(args), args.remove_n)),
    "datamap": ("dataset cartography: variability vs confidence per example, coloured by "
                "correctness (Swayamdipta et al. 2020), from the stats files",
                add_datamap_flags, draw_datamap),
    "continual": ("Figure 4: accuracy on each of two tasks trained in turn (run_continual.py), "
                  "one panel per split and order", add_continual_flags, draw_continual),
}
# first_learning, margin, seeds, epoch_budget, cross_arch
SUBCOMMANDS.update(stat_commands.SUBCOMMANDS)


def parse_args(argv=None):
    parser = ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw the paper's figures from sorting files and results of your own runs.",
        epilog=__doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE",
                                     parser_class=ArgumentParser)
    for name, (help_text, add_flags, _) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_flags(sub)
        sub.add_argument("--output", required=True,
                         help="the figure file; its extension picks the format: "
                              f"{', '.join('.' + f for f in figures.FORMATS)}")
    return parser.parse_args(argv)


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    if args.output.rsplit(".", 1)[-1].lower() not in figures.FORMATS or os.path.isdir(args.output):
        raise UsageError(f"--output {args.output}: give a file name ending in "
                         f"{', '.join('.' + f for f in figures.FORMATS)}")
    directory = os.path.dirname(args.output) or "."
    check_output_dir(directory, "--output's directory")
    fig = SUBCOMMANDS[args.figure][2](args)
    make_output_dir(directory, "--output's directory")
    figures.save_figure(fig, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
