#!/usr/bin/env python
"""Every experiment of the paper in one command, at the paper's scale or in miniature.

    python reproduce_paper.py --list
    python reproduce_paper.py fig1 fig6 --scale mini
    python reproduce_paper.py all --scale full --address HEAD:6379 --gpus_per_run 1 --dry_run

Each experiment runs its training grids through sweep.py (its Ray flags pass through), then
order_examples_by_forgetting.py, collect_results.py and its plot_figures.py subcommand, from the
repository's directory; runs shared between experiments are trained once, and a rerun skips
what is finished (forgetting/paper/runner.py). Each experiment ends with a table of the paper's
numbers beside ours, printed and written to <output_dir>/<experiment>/<experiment>.md.
docs/reproduce.md has every experiment, its commands and both scales.
"""
import argparse
import os
import sys

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files import atomic
from forgetting.analysis.measured import parse_measured
from forgetting.paper.commands import Plan
from forgetting.paper.compare import comparison_table
from forgetting.paper.experiments import BY_ID, EXPERIMENTS, IDS
from forgetting.paper.runner import REPO, StepFailed, run_steps
from forgetting.paper.scales import SCALES

# sweep.py's flags that reproduce_paper.py passes on to every sweep when given: (flag, type).
SWEEP_OPTIONS = (("--workers", int), ("--address", str), ("--connect_timeout", float),
                 ("--cpus_per_run", int), ("--gpus_per_run", float), ("--retries", int),
                 ("--progress_every", float))


def checked(kind):
    """An argparse type that refuses what ``kind`` cannot read but keeps the text as given
    (sweep.py reads it again; ``--gpus_per_run 1`` stays 1, not 1.0)."""
    def check(text):
        kind(text)
        return text
    check.__name__ = kind.__name__  # argparse names the type in its refusal
    return check


def build_parser():
    parser = ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the paper's experiments (the ids of --list, or all) end to end: "
                    "training sweeps, orderings, tables, figures, and the paper's numbers "
                    "beside ours.",
        epilog=__doc__.split("\n\n")[1])
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help=f"experiment ids ({', '.join(IDS)}) or all")
    parser.add_argument("--list", action="store_true",
                        help="print the experiments, one per line, with what each shows")
    parser.add_argument("--scale", choices=sorted(SCALES),
                        help="full: the paper's setting (GPUs, days); mini: the bundled digits, "
                             "minutes on 2 CPU cores")
    parser.add_argument("--output_dir", default=None,
                        help="where runs, sorting files, tables and figures go (default: "
                             "paper_results/<scale> in the repository)")
    parser.add_argument("--dry_run", action="store_true",
                        help="print the commands, one per line, and run nothing (finished steps "
                             "as '# finished, not run: ...' comments)")
    parser.add_argument("--data_dir", default=None,
                        help="--data_dir of the training scripts and the gallery (default: "
                             "theirs, /tmp/data)")
    sweep = parser.add_argument_group("passed on to every sweep.py (see its --help)")
    for flag, kind in SWEEP_OPTIONS:
        sweep.add_argument(flag, type=checked(kind), default=None)
    sweep.add_argument("--no_progress", action="store_true")
    return parser


def list_lines():
    return [f"{e.id:<15} {e.figure}: {e.shows}" for e in EXPERIMENTS]


def chosen(names):
    """The experiment ids asked for, in the table's order; a UsageError for an unknown one."""
    unknown = [name for name in names if name != "all" and name not in BY_ID]
    if unknown:
        raise UsageError(f"unknown experiment {unknown[0]!r}; known: {', '.join(IDS)}, or all")
    if not names:
        raise UsageError(f"name the experiments to run ({', '.join(IDS)}, or all), or give --list")
    return [i for i in IDS if "all" in names or i in names]


def sweep_options(args):
    options = []
    for flag, _ in SWEEP_OPTIONS:
        value = getattr(args, flag[2:])
        if value is not None:
            options += [flag, value]
    return options + (["--no_progress"] if args.no_progress else [])


def output_dir(args):
    """--output_dir as the commands spell it: relative to the repository when inside it (the
    steps run from there), else absolute."""
    given = args.output_dir or os.path.join(REPO, "paper_results", args.scale)
    absolute = os.path.abspath(given)
    inside = os.path.commonpath([absolute, REPO]) == REPO
    return os.path.relpath(absolute, REPO) if inside else absolute


def make_plan(ids, args):
    plan = Plan(SCALES[args.scale], output_dir(args), sweep_options(args), args.data_dir)
    for experiment in ids:
        plan.build(experiment)
    return plan


def write_tables(ids, plan, say=print):
    """Each experiment's comparison table, from its figure's log: printed and written."""
    for experiment in ids:
        log = plan.figures[experiment].log  # as the commands spell it, from the repository
        with open(os.path.join(REPO, log)) as text:
            measured = parse_measured(text.read())
        table = comparison_table(BY_ID[experiment], plan.scale, measured)
        path = os.path.join(os.path.dirname(log), experiment + ".md")
        atomic.write_text(os.path.join(REPO, path), table)
        say(table)
        say(f"wrote {path}\n")


@exit_on_usage_error
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(list_lines()))
        return
    ids = chosen(args.experiments)
    if args.scale is None:
        raise UsageError("give --scale full (the paper's setting) or --scale mini (the bundled "
                         "digits, minutes on 2 CPU cores)")
    plan = make_plan(ids, args)
    try:
        run_steps(plan.steps, dry_run=args.dry_run)
    except StepFailed as failed:
        if failed.returncode == 130:
            print("stopped by Ctrl-C; run the same command again to continue (finished steps "
                  "are skipped, the runs resume)", file=sys.stderr)
            sys.exit(130)
        print(f"error: {failed}; fix it and run the same command again (finished steps are "
              "skipped)", file=sys.stderr)
        sys.exit(1)
    if not args.dry_run:
        write_tables(ids, plan)


if __name__ == "__main__":
    main()
