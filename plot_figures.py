#!/usr/bin/env python
"""The paper's figures from your own runs: one subcommand per figure.

    python plot_figures.py histogram --sorting_file mnist_results/mnist_sorted.pkl --output fig1.png
    python plot_figures.py removal --results results.csv --output fig5_left.png
    python plot_figures.py removal --results mnist.csv cifar10.csv --labels mnist cifar10 \
        --output fig6.png
    python plot_figures.py window --results results.csv --remove_n 5000 \
        --sorting_file cifar10_results/cifar10_sorted.pkl --output fig5_right.png
    python plot_figures.py noise --sorting_file noisy_sorted.pkl \
        --changed_labels noisy_run_changed_labels.txt --before clean_sorted.pkl --output fig3.png
    python plot_figures.py gallery --sorting_file mnist_results/mnist_sorted.pkl \
        --dataset mnist --output gallery.png
    python plot_figures.py gallery --sorting_file pets_results/pets_sorted.pkl \
        --examples pets_results/dataset_pets__<...>__seed_1__<...>__examples.tsv --output g.png
    python plot_figures.py datamap --input_dir mnist_results --input_fname_args dataset mnist \
        --output datamap.png
    python plot_figures.py continual --input_dir continual_results --output fig4_continual.png
    python plot_figures.py seeds --input_dir cifar10_results --output seeds.png
    python plot_figures.py epoch_budget --input_dir cifar10_results --budgets 25 75 --output f7.png

``--output``'s extension picks the format (.png, .pdf, .svg). Every number the paper reports
is printed as a ``measured: <key> = <value>`` line (docs/figures.md). A new figure is one entry in
SUBCOMMANDS: a help line, a function adding its flags, and one drawing a matplotlib Figure
from the parsed flags: forgetting/analysis/figure_commands.py has the count and table figures
(docs/figures.md), forgetting/analysis/stat_commands.py the statistics (first_learning,
margin, seeds, epoch_budget, cross_arch; docs/analyses.md).
"""
import argparse
import os

from forgetting.analysis import figure_commands, figures, stat_commands
from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.outdir import check_output_dir, make_output_dir

# name: (help, adds the subcommand's flags, draws the figure from the parsed flags)
SUBCOMMANDS = {**figure_commands.SUBCOMMANDS, **stat_commands.SUBCOMMANDS}


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
