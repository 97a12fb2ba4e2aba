"""plot_figures.py's statistics subcommands: ``first_learning``, ``margin``, ``seeds``,
``epoch_budget`` and ``cross_arch`` (docs/analyses.md defines each number).

Each selects runs as ``datamap`` does (``--input_dir``, ``--input_fname_args``, ``--epochs``,
``--verbose``, ``--include_diverged``: forgetting/files/run_selection.py), computes its
numbers with the analysis modules, prints one ``measured: <key> = <value>`` line per number
the paper reports (forgetting/analysis/measured.py) and returns the figure for plot_figures.py
to save. ``SUBCOMMANDS`` has the entries plot_figures.py adds to its own.
"""
import numpy as np

from forgetting.analysis import stat_figures
from forgetting.analysis.budgets import (budget_agreement, check_budgets, counts_at_budgets,
                                        retrieval)
from forgetting.analysis.first_learning import first_learning_over_runs
from forgetting.analysis.margin import margins_over_runs
from forgetting.analysis.measured import say_measured
from forgetting.analysis.stability import per_run_counts, stability
from forgetting.errors import UsageError
from forgetting.files.run_selection import (add_combining_flags, add_runs_flags,
                                            runs_to_combine, select_runs)
from forgetting.scores.over_runs import check_same_ids


def add_run_flags(parser):
    add_runs_flags(parser, "directory searched recursively for the runs' *stats_dict.pkl files")
    add_combining_flags(parser, "presentations per run considered, the first ones")


def selected_runs(args):
    """``(runs, epochs)`` that the run selection flags of ``args`` select, after every refusal."""
    return runs_to_combine(args, list_included=False)


# first_learning ------------------------------------------------------------------------

def draw_first_learning(args):
    runs, epochs = selected_runs(args)
    result = first_learning_over_runs([run.path for run in runs], epochs)
    learned = result.learned
    n, kept = len(result.ids), int(learned.sum())
    print(f"first learning: {kept} of {n} examples learned in every run; {n - kept} never "
          f"learned in some run (no first learning event) left out")
    say_measured("spearman_first_learning", result.spearman())
    return stat_figures.first_learning_figure(result, len(runs), epochs)


# margin --------------------------------------------------------------------------------

def draw_margin(args):
    runs, epochs = selected_runs(args)
    result = margins_over_runs([run.path for run in runs], epochs)
    forgotten = result.forgotten
    n, kept = len(result.ids), int(forgotten.sum())
    not_finite = int(((result.events > 0) & ~forgotten).sum())
    print(f"misclassification margin: {kept} of {n} examples forgotten at least once; "
          f"{n - kept - not_finite} without a forgetting event (no margin) left out")
    if not_finite:
        print(f"  and {not_finite} whose margin is not finite (a diverged run) left out")
    say_measured("spearman_margin", result.spearman())
    return stat_figures.margin_figure(result, len(runs), epochs)


# seeds ---------------------------------------------------------------------------------

def run_labels(runs):
    """``seed S`` per run when the seeds tell the runs apart, else ``run 1``, ``run 2``..."""
    seeds = [run.flags.get("seed") for run in runs]
    if None not in seeds and len(set(map(str, seeds))) == len(seeds):
        return [f"seed {s}" for s in seeds]
    return [f"run {i + 1}" for i in range(len(runs))]


def draw_seeds(args):
    runs, epochs = selected_runs(args)
    if len(runs) < 2:
        raise UsageError(f"seeds compares runs, and the selection holds {len(runs)}; select two "
                         "or more seeds of one experiment (leave seed out of --input_fname_args)")
    _, counts = per_run_counts([run.path for run in runs], epochs)
    result = stability(counts)
    labels = run_labels(runs)
    say_measured("pearson_pairwise", result.pairwise["pearson"])
    say_measured("spearman_pairwise", result.pairwise["spearman"])
    if result.split_half:
        print(f"split-half: mean over {len(result.splits)} splits of the {len(runs)} runs into "
              f"halves of {len(runs) // 2} and {len(runs) - len(runs) // 2}")
        say_measured("pearson_split_half", result.split_half["pearson"])
        say_measured("spearman_split_half", result.split_half["spearman"])
    else:
        print(f"split-half: needs at least 4 runs, the selection holds {len(runs)}; not measured")
    return stat_figures.stability_figure(result, counts, labels, epochs)


# epoch_budget --------------------------------------------------------------------------

def add_epoch_budget_flags(parser):
    add_run_flags(parser)
    parser.add_argument("--budgets", type=int, nargs="+", required=True, metavar="N",
                        help="numbers of epochs N: the counts over each run's first N "
                             "presentations are compared with those over all --epochs")


def draw_epoch_budget(args):
    runs, epochs = selected_runs(args)
    budgets = check_budgets(args.budgets, epochs)
    _, counts_at = counts_at_budgets([run.path for run in runs], epochs, budgets)
    agreement = budget_agreement(counts_at, epochs)
    print(f"unforgettable after all {epochs} epochs: {int((counts_at[epochs] == 0).sum())} "
          f"of {len(counts_at[epochs])} examples")
    for n in budgets:
        a = agreement[n]
        print(f"after {n} epochs: {int((counts_at[n] == 0).sum())} unforgettable")
        for key, value in (("spearman", a.spearman), ("pearson", a.pearson),
                           ("precision", a.precision), ("recall", a.recall)):
            say_measured(f"{key}@{n}", value)
    return stat_figures.budget_figure(agreement, budgets, epochs, len(runs))


# cross_arch ----------------------------------------------------------------------------

CROSS_ARCH_POINTS = 10


def add_cross_arch_flags(parser):
    add_run_flags(parser)
    parser.add_argument("--reference_dir", required=True,
                        help="directory searched recursively for the reference runs (the "
                             "paper: the ResNet18's), whose unforgettable set is to be retrieved")
    parser.add_argument("--reference_args", nargs="+", metavar="ARG_OR_VALUE",
                        help="name/value pairs selecting the reference runs, as "
                             "--input_fname_args; default: every run below --reference_dir")
    parser.add_argument("--reference_epochs", type=int, default=None,
                        help="presentations per reference run considered, the first ones "
                             "(default: the reference runs' own --epochs from their run "
                             "records, which must agree; 200 for runs without one)")
    parser.add_argument("--budgets", type=int, nargs="+", metavar="N",
                        help="the selected runs' numbers of epochs at which their unforgettable "
                             "set is compared (default: 10 evenly spaced, up to --epochs)")


def default_points(epochs, points=CROSS_ARCH_POINTS):
    """``points`` evenly spaced numbers of epochs ending at ``epochs`` (fewer when they round
    to the same one)."""
    return sorted({max(1, round(epochs * k / points)) for k in range(1, points + 1)})


def reference_counts(args):
    """``(runs, epochs, ids, counts)`` of the reference selection (``--reference_dir``,
    ``--reference_args``, ``--reference_epochs``): its forgetting counts summed over its runs,
    its lines and refusals naming those flags."""
    try:
        runs, epochs = select_runs(args.reference_dir, args.reference_args, args.reference_epochs,
                                   args.include_diverged,
                                   say=lambda line: print(_reference_flags(line)),
                                   verbose=args.verbose, list_included=False)
        ids, counts = counts_at_budgets([run.path for run in runs], epochs, [])
    except UsageError as err:
        raise UsageError(f"reference runs: {_reference_flags(str(err))}") from None
    return runs, epochs, ids, counts[epochs]


def _reference_flags(text):
    """A run selection's line or refusal, naming the reference selection's flags."""
    return (text.replace("--input_fname_args", "--reference_args")
            .replace("--epochs", "--reference_epochs").replace("--input_dir", "--reference_dir"))


def draw_cross_arch(args):
    print("reference runs:")
    ref_runs, ref_epochs, ref_ids, relevant = reference_counts(args)
    print("selected runs:")
    runs, epochs = selected_runs(args)
    budgets = check_budgets(args.budgets if args.budgets else default_points(epochs), epochs)
    ids, counts_at = counts_at_budgets([run.path for run in runs], epochs, budgets)
    check_same_ids(runs[0].path, ids, ref_runs[0].path, ref_ids)
    print(f"unforgettable: {int((relevant == 0).sum())} of {len(ids)} examples in the reference "
          f"runs, {int((counts_at[epochs] == 0).sum())} in the selected runs")
    points = {n: retrieval(counts_at[n], relevant) for n in sorted(set(budgets) | {epochs})}
    for n in budgets:
        say_measured(f"precision@{n}", points[n][0])
        say_measured(f"recall@{n}", points[n][1])
    say_measured("precision", points[epochs][0])
    say_measured("recall", points[epochs][1])
    x = sorted(points)
    return stat_figures.curves_figure(
        x, {"precision": np.array([points[n][0] for n in x]),
            "recall": np.array([points[n][1] for n in x])},
        "epochs of the selected runs",
        f"Retrieving the reference runs' unforgettable examples ({len(ref_runs)} run(s), "
        f"{ref_epochs} epochs)\nwith the selected runs' ({len(runs)} run(s))")


SUBCOMMANDS = {
    "first_learning": ("Sec. 4.1: presentation at which each example is first learned vs its "
                       "forgetting count, 2-D histogram and Spearman correlation",
                       add_run_flags, draw_first_learning),
    "margin": ("Figure 2 left: forgetting events vs the mean misclassification margin over "
               "them, 2-D histogram and Spearman correlation",
               add_run_flags, draw_margin),
    "seeds": ("Sec. 6: stability of the counts across seeds, pairwise and split-half "
              "correlations", add_run_flags, draw_seeds),
    "epoch_budget": ("Figure 7 left: counts after the first N epochs vs after all, correlation "
                     "and unforgettable precision/recall", add_epoch_budget_flags,
                     draw_epoch_budget),
    "cross_arch": ("Figure 7 middle: precision and recall of the selected runs' unforgettable "
                   "set retrieving the reference runs'", add_cross_arch_flags, draw_cross_arch),
}
