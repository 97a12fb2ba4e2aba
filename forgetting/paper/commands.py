"""The steps of each experiment: the project's own commands, shared where the paper shares runs.

A ``Step`` is one command line (a sweep, the ordering script, collect_results.py or a
plot_figures.py subcommand) with the files it makes and the files it is made from. ``Plan``
collects the steps of several experiments in order; a step needed twice (the same command:
the uniform runs of Figure 1, the seeds and first-learning experiments...) is kept once, at
its first place, so a run needed twice is trained once; a sweep that adds runs to a directory
an earlier step reads moves before that step (``Plan.add``).

Layout under the output directory (``out``):

    runs/<dataset>/uniform/seeds_1-5/     the runs on the whole training set (seeds_6-10: more)
    runs/<dataset>/removal/               the removal grid (selected and random) and the windows
    runs/<dataset>/label_noise/, pixel_noise/, continual/, <model>/, <model>_removal/
    sorting/<name>.pkl                    sorting files (order_examples_by_forgetting.py)
    tables/<name>.csv                     collect_results.py's tables
    <experiment>/<experiment>.png, .log   the figure and its subcommand's output (measured lines)
"""
import dataclasses
import os
import shlex
from typing import Optional, Tuple


# Networks without dropout: run_mnist.py refuses --no_dropout with them (it would name a
# second, identical run), so the dataset's --no_dropout is left out when one replaces its net.
WITHOUT_DROPOUT = ("mlp",)


def with_model(flags, model):
    """The dataset's training ``flags`` with ``--model model`` (None: as they are)."""
    if not model:
        return tuple(flags)
    if model in WITHOUT_DROPOUT:
        flags = [flag for flag in flags if flag != "--no_dropout"]
    return (*flags, "--model", model)


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str                   # "sweep", "order", "collect" or "figure"
    argv: Tuple[str, ...]       # the script, then its flags
    outputs: Tuple[str, ...] = ()  # files it writes (a sweep's runs decide for themselves)
    inputs: Tuple[str, ...] = ()   # files and directories its outputs are made from
    log: Optional[str] = None      # figure steps: where their output (measured lines) is kept

    def line(self):
        """The command as a shell would take it, from the repository's directory."""
        return "python " + " ".join(shlex.quote(word) for word in self.argv)


def _flag(argv, flag):
    """The value of ``flag`` in ``argv`` (its last), or None."""
    values = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == flag]
    return values[-1] if values else None


def grid_seeds(first, last):
    return f"seed={first}" if first == last else f"seed={first}:{last}:1"


class Plan:
    """The steps of the experiments added so far, each command once, in order.

    ``scale``: forgetting.paper.scales.Scale; ``out``: the output directory as the commands
    spell it; ``sweep_options``: sweep.py flags passed through (--address, --gpus_per_run,
    ...); ``data_dir``: --data_dir for the training scripts and the gallery (None: theirs)."""

    def __init__(self, scale, out, sweep_options=(), data_dir=None):
        self.scale, self.out = scale, out
        self.sweep_options = tuple(sweep_options)
        self.data = ("--data_dir", data_dir) if data_dir else ()
        self.steps = []     # in the order they run
        self.figures = {}   # experiment -> its figure Step

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def add(self, step):
        """``step`` in the plan once; the step already there if it is. A sweep into a
        directory that an earlier step reads (Figure 5 right's windows beside Figure 5 left's
        grid) goes before that reader, after what the sweep needs, so that a table or
        ordering is made once, from all the runs, and a rerun finds it current."""
        for known in self.steps:
            if known.argv == step.argv:
                return known
        at = len(self.steps)
        if step.kind == "sweep":
            runs = _flag(step.argv, "--output_dir")
            readers = [i for i, known in enumerate(self.steps)
                       if any(runs == path or runs.startswith(path + os.sep)
                              for path in known.inputs)]
            needs = os.path.join(_flag(step.argv, "--input_dir") or "",
                                 (_flag(step.argv, "--sorting_file") or "") + ".pkl")
            makers = [i for i, known in enumerate(self.steps) if needs in known.outputs]
            if readers and (not makers or makers[-1] < readers[0]):
                at = readers[0]
        self.steps.insert(at, step)
        return step

    # ---------------------------------------------------------------- the building blocks

    def sweep(self, grid, script, *fixed):
        axes = ("--grid", *grid) if grid else ()
        self.add(Step("sweep", ("sweep.py", *self.sweep_options, *axes, "--", script, *fixed,
                                *self.data)))

    def training_flags(self, ds, flags, output_dir):
        return ("--dataset", ds.name, *flags, "--epochs", str(self.scale.epochs),
                "--output_dir", output_dir)

    def uniform(self, ds, more=False):
        """The directory of ``ds``'s runs on the whole training set: seeds 1..seeds, or with
        ``more`` seeds+1..seeds_more (beside them, under runs/<dataset>/uniform/)."""
        first, last = ((self.scale.seeds + 1, self.scale.seeds_more) if more
                       else (1, self.scale.seeds))
        where = self.path("runs", ds.name, "uniform",
                          f"seeds_{first}-{last}" if first < last else f"seed_{first}")
        self.sweep([grid_seeds(first, last)], ds.script,
                   *self.training_flags(ds, ds.uniform, where))
        return where

    def order(self, name, input_dir, *pairs):
        """The sorting file ``sorting/<name>.pkl`` of the runs below ``input_dir`` that match
        ``pairs`` (--input_fname_args)."""
        output = self.path("sorting", name + ".pkl")
        self.add(Step("order", ("order_examples_by_forgetting.py", "--input_dir", input_dir,
                                "--input_fname_args", *pairs, "--output_dir", self.path("sorting"),
                                "--output_name", name), outputs=(output,), inputs=(input_dir,)))
        return output

    def sorted_uniform(self, ds):
        """The sorting file of ``ds``'s uniform runs (all seeds 1..seeds)."""
        return self.order(ds.sorted_name, self.uniform(ds), "dataset", ds.name,
                          "sorting_file", "none")

    def sorted_seed_1(self, ds):
        """The sorting file of seed 1's uniform run alone (Figure 3's labels before noise)."""
        return self.order(f"{ds.name}_seed_1_sorted", self.uniform(ds), "dataset", ds.name,
                          "sorting_file", "none", "seed", "1")

    def removal(self, ds, model=None, seeds=None):
        """The removal grid of ``ds`` on its sorting file: every --remove_n of the grid, the
        least forgotten (--keep_lowest_n 0) and random (-1); its directory."""
        self.sorted_uniform(ds)
        where = self.path("runs", ds.name, f"{model}_removal" if model else "removal")
        flags = (*with_model(ds.removal, model), "--sorting_file", ds.sorted_name,
                 "--input_dir", self.path("sorting"))
        self.sweep([grid_seeds(1, seeds or self.scale.seeds), f"remove_n={ds.remove_n}",
                    "keep_lowest_n=0,-1"], ds.script, *self.training_flags(ds, flags, where))
        return where

    def collect(self, input_dir, name, *pairs):
        output = self.path("tables", name + ".csv")
        selection = ("--input_fname_args", *pairs) if pairs else ()
        self.add(Step("collect", ("collect_results.py", "--input_dir", input_dir, *selection,
                                  "--output", output), outputs=(output,), inputs=(input_dir,)))
        return output

    def figure(self, experiment, subcommand, *flags, inputs):
        output = self.path(experiment, experiment + ".png")
        log = self.path(experiment, experiment + ".log")
        step = self.add(Step("figure", ("plot_figures.py", subcommand, *flags, "--output", output),
                             outputs=(output, log), inputs=tuple(inputs), log=log))
        self.figures[experiment] = step
        return step

    # ---------------------------------------------------------------- the experiments

    def build(self, experiment):
        """Add ``experiment``'s steps (its id from forgetting.paper.experiments)."""
        getattr(self, "_" + experiment)(experiment)

    def _fig1(self, exp):
        datasets = self.scale.datasets_of(("mnist", "permuted", "cifar10"))
        files = [self.sorted_uniform(ds) for ds in datasets]
        self.figure(exp, "histogram", "--sorting_file", *files, inputs=files)

    def _run_selection(self, exp, subcommand, *extra, more=False):
        ds = self.scale.main
        where = self.uniform(ds)
        if more:
            self.uniform(ds, more=True)
            where = os.path.dirname(where)  # both seed ranges, read recursively
        self.figure(exp, subcommand, "--input_dir", where, "--input_fname_args", "dataset",
                    ds.name, *extra, inputs=[where])

    def _first_learning(self, exp):
        self._run_selection(exp, "first_learning")

    def _fig2_margin(self, exp):
        self._run_selection(exp, "margin")

    def _seeds(self, exp):
        self._run_selection(exp, "seeds", more=True)

    def _fig7_left(self, exp):
        self._run_selection(exp, "epoch_budget", "--budgets", *map(str, self.scale.budgets))

    def _fig2_gallery(self, exp):
        ds = self.scale.main
        sorting = self.sorted_uniform(ds)
        self.figure(exp, "gallery", "--sorting_file", sorting, "--dataset", ds.name, *self.data,
                    inputs=[sorting])

    def _fig3(self, exp):
        ds, percent = self.scale.main, str(self.scale.label_noise)
        before = self.sorted_seed_1(ds)
        where = self.path("runs", ds.name, "label_noise")
        flags = (*ds.uniform, "--seed", "1", "--noise_percent_labels", percent)
        self.sweep([], ds.script, *self.training_flags(ds, flags, where))
        noisy = self.order(f"{ds.name}_label_noise_{percent}_sorted", where, "dataset", ds.name,
                           "noise_percent_labels", percent)
        changed = os.path.join(where, changed_labels_name(ds, flags, self.scale.epochs))
        self.figure(exp, "noise", "--sorting_file", noisy, "--changed_labels", changed,
                    "--before", before, inputs=[noisy, before])

    def _pixel_noise(self, exp):
        ds = self.scale.main
        clean = self.sorted_seed_1(ds)
        where = self.path("runs", ds.name, "pixel_noise")
        flags = (*ds.uniform, "--seed", "1", "--noise_percent_pixels", "100")
        self.sweep([f"noise_std_pixels={','.join(self.scale.pixel_stds)}"], ds.script,
                   *self.training_flags(ds, flags, where))
        files = [clean] + [self.order(f"{ds.name}_pixels_std_{std}_sorted", where, "dataset",
                                      ds.name, "noise_std_pixels", std)
                           for std in self.scale.pixel_stds]
        self.figure(exp, "histogram", "--sorting_file", *files, inputs=files)

    def _fig4(self, exp):
        ds = self.scale.main
        self.sorted_uniform(ds)
        where = self.path("runs", ds.name, "continual")
        self.sweep([grid_seeds(1, self.scale.continual_seeds), "split=random,forgetting",
                    "tasks=AB,BA"],
                   "run_continual.py", *self.scale.continual, "--sorting_file", ds.sorted_name,
                   "--input_dir", self.path("sorting"), "--output_dir", where)
        self.figure(exp, "continual", "--input_dir", where, inputs=[where])

    def _fig5_left(self, exp):
        ds = self.scale.main
        table = self.collect(self.removal(ds), f"{ds.name}_removal")
        self.figure(exp, "removal", "--results", table, inputs=[table])

    def _fig5_right(self, exp):
        ds = self.scale.main
        self.sorted_uniform(ds)
        # Beside the removal grid, which holds the windows at 0 and the random removal of as
        # many: whichever sweep comes first trains them, the other finds them finished.
        where = self.path("runs", ds.name, "removal")
        size, starts = self.scale.window
        flags = (*ds.removal, "--sorting_file", ds.sorted_name, "--input_dir", self.path("sorting"),
                 "--remove_n", str(size))
        self.sweep([grid_seeds(1, self.scale.seeds), f"keep_lowest_n={starts},-1"], ds.script,
                   *self.training_flags(ds, flags, where))
        table = self.collect(where, f"{ds.name}_windows", "remove_n", str(size))
        sorting = self.path("sorting", ds.sorted_name + ".pkl")
        self.figure(exp, "window", "--results", table, "--remove_n", str(size), "--sorting_file",
                    sorting, inputs=[table, sorting])

    def _fig6(self, exp):
        datasets = self.scale.datasets_of(("mnist", "permuted", "cifar10"))
        tables = [self.collect(self.removal(ds), f"{ds.name}_removal") for ds in datasets]
        self.figure(exp, "removal", "--results", *tables, "--labels",
                    *(ds.name for ds in datasets), "--error_increase", inputs=tables)

    def _fig7_mid(self, exp):
        ds = self.scale.main
        reference = self.uniform(ds)
        model = self.scale.small_model[0]
        where = self.path("runs", ds.name, model)
        self.sweep([grid_seeds(1, self.scale.seeds)], ds.script,
                   *self.training_flags(ds, with_model(ds.uniform, model), where))
        self.figure(exp, "cross_arch", "--reference_dir", reference, "--reference_args", "dataset",
                    ds.name, "--input_dir", where, "--input_fname_args", "dataset", ds.name,
                    inputs=[reference, where])

    def _fig7_right(self, exp):
        ds = self.scale.main
        model = self.scale.other_model[0]
        where = self.removal(ds, model=model, seeds=self.scale.other_model_seeds)
        table = self.collect(where, f"{ds.name}_{model}_removal")
        self.figure(exp, "removal", "--results", table, inputs=[table])

    def _cifar100(self, exp):
        ds = self.scale.dataset("cifar100")
        table = self.collect(self.removal(ds), f"{ds.name}_removal")
        self.figure(exp, "removal", "--results", table, inputs=[table])


def changed_labels_name(ds, flags, epochs):
    """The changed-labels file of the label-noise run: ``<save_fname>_changed_labels.txt``,
    the name the training script gives the run (its parser and forgetting/files/naming.py).
    A script without --noise_percent_labels yet is named by the rule of docs/flags.md for
    flags added by this project: ``__noise_percent_labels_<p>`` after the original's name."""
    from forgetting.errors import UsageError
    from forgetting.files.naming import SCRIPT_FNAME_FLAGS, save_fname
    from forgetting.sweep.plan import load_script

    script = load_script(repo_path(ds.script))
    fixed = ["--epochs", str(epochs), "--output_dir", "."]
    try:
        args = script.parser.parse_args(["--dataset", ds.name, *flags, *fixed])
        name = save_fname(args, SCRIPT_FNAME_FLAGS[ds.script])
    except UsageError:
        cut = flags.index("--noise_percent_labels")
        args = script.parser.parse_args(["--dataset", ds.name, *flags[:cut], *flags[cut + 2:],
                                         *fixed])
        name = (save_fname(args, SCRIPT_FNAME_FLAGS[ds.script])
                + f"__noise_percent_labels_{flags[cut + 1]}")
    return name + "_changed_labels.txt"


def repo_path(*parts):
    """A path in the repository (the scripts live at its root)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), *parts)
