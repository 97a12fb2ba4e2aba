"""plot_figures.py's figures of forgetting counts and results tables: ``histogram``,
``removal``, ``window``, ``noise``, ``gallery``, ``datamap`` and ``continual``
(docs/figures.md defines each number).

Each entry of ``SUBCOMMANDS`` is (help line, a function adding the subcommand's flags, one
drawing the matplotlib Figure from the parsed flags); the drawing functions print one
``measured: <key> = <value>`` line per number the paper reports
(forgetting/analysis/measured.py). plot_figures.py saves the figure; the statistics'
subcommands are forgetting/analysis/stat_commands.py's.
"""
import os

from forgetting.analysis import counts as count_stats
from forgetting.analysis import figures, gallery, label_noise, removal
from forgetting.analysis.measured import say_measured
from forgetting.analysis.results import add_selection_flags, check_selection, collect, read_results
from forgetting.errors import UsageError
from forgetting.files import safe_pickle
from forgetting.files.run_selection import (add_combining_flags, add_runs_flags,
                                            add_verbose_flag, check_run_selection, find_runs,
                                            require_runs, runs_to_combine, same_value)


def add_table_flags(parser, several=False):
    """Where the runs come from: a results CSV (or several, one data set each) or a
    directory of runs (collected here)."""
    source = parser.add_mutually_exclusive_group(required=True)
    if several:
        source.add_argument("--results", metavar="CSV", nargs="+",
                            help="one or more tables written by collect_results.py; several are "
                                 "overlaid, one colour each")
    else:
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
        return _some_runs(frame, args.input_dir, pairs)
    return read_table(args.results, pairs)


def load_tables(args):
    """``[(path, table)]``: each ``--results`` table (or the ``--input_dir`` runs) selected."""
    if args.input_dir is not None:
        return [(args.input_dir, load_table(args))]
    pairs = check_selection(args)
    return [(path, read_table(path, pairs)) for path in args.results]


def read_table(path, pairs):
    """The results table at ``path``, its rows selected by the ``--input_fname_args`` pairs."""
    try:
        frame = read_results(path)
    except FileNotFoundError:
        raise UsageError(f"--results {path} does not exist; write it with "
                         "collect_results.py") from None
    except Exception as err:  # whatever pandas says about a file that is not our table
        raise UsageError(f"--results {path} is not a table of collect_results.py "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    for name, value in zip(pairs[0::2], pairs[1::2]):  # the same rule as on file names
        if name not in frame.columns:
            raise UsageError(f"--input_fname_args: the table has no flag {name}")
        frame = frame[frame[name].map(lambda v, text=value: same_value(v, text)).astype(bool)]
    return _some_runs(frame, path, pairs)


def _some_runs(frame, where, pairs):
    if frame.empty:
        raise UsageError(f"No runs found in {where} that match {pairs}")
    return frame


def add_labels_flag(parser, what):
    parser.add_argument("--labels", nargs="+", metavar="L",
                        help=f"one label per {what}, in order: the legend and the [<label>] of "
                             "the measured lines (no spaces or '=')")


def series_labels(labels, defaults, what):
    """``--labels`` if given (one per ``what``), else ``defaults``; labels must be distinct
    and usable as a measured key's ``[<label>]``."""
    if labels is not None and len(labels) != len(defaults):
        raise UsageError(f"--labels gives {len(labels)} label(s) for {len(defaults)} {what}(s); "
                         f"give one label per {what}")
    chosen = list(labels if labels is not None else defaults)
    for label in chosen:
        if not label or any(c.isspace() for c in label) or "=" in label:
            raise UsageError(f"label {label!r} cannot name a measured number; give --labels "
                             "without spaces or '='")
    if len(set(chosen)) < len(chosen):
        twice = next(label for label in chosen if chosen.count(label) > 1)
        raise UsageError(f"two {what}s are both labelled {twice}; give distinct --labels")
    return chosen


def file_stem(path):
    """A file's name without its directory and its ``.pkl`` / ``.csv`` ending."""
    name = os.path.basename(str(path))
    return name[:-4] if name.endswith((".pkl", ".csv")) else name


def say_all(measures):
    for key, value in measures.items():
        say_measured(key, value)


def add_histogram_flags(parser):
    parser.add_argument("--sorting_file", nargs="+", required=True, metavar="PKL",
                        help="one or more sorting files of order_examples_by_forgetting.py; one "
                             "series each, labelled by its file name unless --labels")
    add_labels_flag(parser, "sorting file")
    parser.add_argument("--max_events", type=int, default=30, metavar="N",
                        help="the last bar holds the examples with N or more events (default: "
                             "30); examples never learned count --epochs events per run")


def draw_histogram(args):
    """Figure 1; prints each series' unforgettable percent and mean count."""
    if args.max_events < 1:
        raise UsageError(f"--max_events must be at least 1, got {args.max_events}")
    labels = series_labels(args.labels, [file_stem(p) for p in args.sorting_file], "sorting file")
    series = [(label, figures.load_counts(path, safe_pickle.load))
              for label, path in zip(labels, args.sorting_file)]
    for label, counts in series:
        say_measured(f"unforgettable_percent[{label}]", count_stats.unforgettable_percent(counts))
        say_measured(f"mean_count[{label}]", count_stats.mean_count(counts))
    return figures.histogram_figure(series, args.max_events)


def add_removal_flags(parser):
    add_table_flags(parser, several=True)
    add_labels_flag(parser, "table")
    parser.add_argument("--error_increase", action="store_true",
                        help="y = test error increase over the full training set (always so for "
                             "several tables)")


def draw_removal(args):
    """Figures 5 left / 6; prints each curve's mean accuracy per percent removed and the
    removable percent (docs/figures.md#removal)."""
    tables = load_tables(args)
    if len(tables) == 1 and args.labels is None:
        (_, frame), = tables
        fig = figures.removal_figure(frame, error_increase=args.error_increase)
        say_all(removal.removal_measures(removal.removal_curves(frame)))
        return fig
    datasets = [str(frame["dataset"].iloc[0]) for _, frame in tables]
    defaults = datasets if len(set(datasets)) == len(datasets) else [file_stem(p) for p, _ in tables]
    labels = series_labels(args.labels, defaults, "table")
    fig = figures.removal_figure([(label, frame) for label, (_, frame) in zip(labels, tables)],
                                 error_increase=args.error_increase)  # refuses before any line
    for label, (_, frame) in zip(labels, tables):
        say_all(removal.removal_measures(removal.removal_curves(frame), suffix=f"[{label}]"))
    return fig


def add_window_flags(parser):
    add_table_flags(parser)
    parser.add_argument("--remove_n", type=int, required=True,
                        help="the window's size: runs with this --remove_n are drawn")
    parser.add_argument("--sorting_file", metavar="PKL",
                        help="the sorting file the windows were removed from: x becomes each "
                             "window's mean forgetting count, and spearman_window is printed")


def draw_window(args):
    """Figure 5 right; with --sorting_file, prints the Spearman correlation of the windows'
    mean forgetting counts and mean test accuracies."""
    frame = load_table(args)
    if args.sorting_file is None:
        return figures.window_figure(frame, args.remove_n)
    name = file_stem(args.sorting_file)
    sorted_counts = figures.load_counts(args.sorting_file, safe_pickle.load)
    x, y = removal.window_count_points(removal.window_curves(frame, args.remove_n),
                                       sorted_counts, name)
    say_measured("spearman_window", count_stats.spearman(x, y))
    return figures.window_figure(frame, args.remove_n, sorted_counts, name)


def add_noise_flags(parser):
    parser.add_argument("--sorting_file", required=True, metavar="PKL",
                        help="the sorting file of the run with --noise_percent_labels (one seed)")
    parser.add_argument("--changed_labels", required=True, metavar="TXT",
                        help="that run's <save_fname>_changed_labels.txt: the flipped ids")
    parser.add_argument("--before", metavar="PKL",
                        help="the sorting file of the same seed's run without noise: adds the "
                             "flipped examples' counts before and after")
    parser.add_argument("--max_events", type=int, default=30, metavar="N",
                        help="the last bar holds the examples with N or more events (default: 30)")


def draw_noise(args):
    """Figure 3; prints the unforgettable share and mean count of the flipped and the
    unchanged examples (and the flipped ones' mean count before, with --before)."""
    if args.max_events < 1:
        raise UsageError(f"--max_events must be at least 1, got {args.max_events}")
    flipped = label_noise.read_changed_labels(args.changed_labels)[0]
    if flipped.size == 0:
        raise UsageError(f"--changed_labels {args.changed_labels} lists no flipped example; give "
                         "the file of a run with --noise_percent_labels above 0")
    ids, counts = count_stats.load_sorting_counts(args.sorting_file)
    noisy, clean = label_noise.noise_groups(ids, counts, flipped)
    if clean.size == 0:
        raise UsageError(f"--changed_labels {args.changed_labels} flips every example of "
                         f"--sorting_file {args.sorting_file}: nothing to compare with")
    before = None
    if args.before is not None:
        before_ids, before_counts = count_stats.load_sorting_counts(args.before)
        before = count_stats.counts_of(before_ids, before_counts, flipped, "--before")
    say_all(label_noise.noise_measures(noisy, clean, before))
    return figures.noise_figure(noisy, clean, before, args.max_events)


def add_gallery_flags(parser):
    parser.add_argument("--sorting_file", required=True, metavar="PKL",
                        help="a sorting file of order_examples_by_forgetting.py")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset",
                      help="the dataset the sorting file's runs trained on: mnist, "
                           "permuted_mnist, mnist_5k, permuted_mnist_5k, cifar10 or cifar100")
    data.add_argument("--examples", metavar="TSV",
                      help="instead of --dataset, for run_images.py runs (your own images): "
                           "the <save_fname>__examples.tsv of one of the sorting file's runs; "
                           "its run record (__run.json, beside it) says where the images are, "
                           "and each image is captioned with its class, count and file name")
    parser.add_argument("--data_dir", default="/tmp/data",
                        help="with --dataset: where torchvision's datasets are (default: "
                             "/tmp/data); mnist_5k is bundled")
    parser.add_argument("--seed", type=int, default=1,
                        help="permuted_* only: show the pixel permutation of this seed's run "
                             "(default: 1)")
    parser.add_argument("--k", type=int, default=8,
                        help="how many most forgotten and unforgettable examples (default: 8)")
    parser.add_argument("--per_class", action="store_true",
                        help=f"k of each per class, one row per class (at most "
                             f"{gallery.MAX_CLASS_ROWS} classes)")


def draw_gallery(args):
    """The k most forgotten and k unforgettable examples, overall or per class."""
    if args.k < 1:
        raise UsageError(f"--k must be at least 1, got {args.k}")
    ids, counts = count_stats.load_sorting_counts(args.sorting_file)
    if args.examples is not None:
        return gallery.listed_gallery(args.examples, ids, counts, args.k, args.per_class)
    if args.per_class and args.dataset == "cifar100":  # before loading 50,000 images
        raise UsageError(f"--per_class draws one row per class, and cifar100 has 100 (at most "
                         f"{gallery.MAX_CLASS_ROWS}); leave out --per_class")
    return gallery.example_gallery(args.dataset, ids, counts, args.k, args.per_class,
                                   args.data_dir, args.seed)


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
    "removal": ("Figures 5 left / 6: test accuracy (or error increase) vs percent of the "
                "training set removed, selected vs random; several tables overlaid",
                add_removal_flags, draw_removal),
    "window": ("Figure 5 right: test accuracy vs where a window of --remove_n removed examples "
               "starts in the sorted order, or its mean forgetting count (--sorting_file)",
               add_window_flags, draw_window),
    "noise": ("Figure 3: forgetting counts of the examples whose labels were flipped vs the "
              "others, and before/after (--before)", add_noise_flags, draw_noise),
    "gallery": ("the most forgotten and the unforgettable training examples as images",
                add_gallery_flags, draw_gallery),
    "datamap": ("dataset cartography: variability vs confidence per example, coloured by "
                "correctness (Swayamdipta et al. 2020), from the stats files",
                add_datamap_flags, draw_datamap),
    "continual": ("Figure 4: accuracy on each of two tasks trained in turn (run_continual.py), "
                  "one panel per split and order", add_continual_flags, draw_continual),
}
