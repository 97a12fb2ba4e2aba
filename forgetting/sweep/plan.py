"""What a sweep will do, decided before anything starts.

``load_script`` finds the training script and its flags (its own ``build_parser``);
``check_grid`` refuses axes the script does not have or that the fixed flags already set;
``plan_runs`` parses every command with the script's parser, as the script itself will, and
reads each run's record (``__run.json``) and resume state to tell runs to start from runs to
continue and finished runs to skip (no training process is started to find that out);
``epoch_refusals`` names the runs whose recorded --epochs differ from the sweep's;
``check_sorting_files`` refuses a sorting file the runs to start would not find.

The plan only decides what to start and what to refuse. Whether a started process trains,
continues or does nothing is decided by the run itself, under its lock, from its files: every
run is started with ``--resume`` (no resume state: it starts from scratch) and, unless the
sweep has --extend, ``--no_extend`` (a run that another process started or finished with
other --epochs in the meantime is refused, not extended). So a run that another process
finishes after the plan is not trained again.
"""
import dataclasses
import importlib.util
import os
from typing import List, Optional

from forgetting.data.selection import sorting_file_path
from forgetting.errors import UsageError
from forgetting.files.naming import SCRIPT_FNAME_FLAGS, RunPaths, save_fname, sweep_log_path
from forgetting.files.resume_scalars import read_scalars
from forgetting.files.run_record import read_record
from forgetting.sweep.grid import shell_line

# Flags the sweep sets itself: --threads from --cpus_per_run, --resume and --no_extend.
SWEEP_FLAGS = {"threads": "set it with sweep.py --cpus_per_run",
               "resume": "the sweep adds --resume to every run",
               "no_extend": "the sweep adds --no_extend unless given --extend"}


def _count(value):
    """``value`` if it is a count of epochs (an int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def saved_epochs(path):
    """The finished epochs in the resume state at ``path`` (read without its weights), or
    None when there is none or it cannot be read: the run is not known to be finished."""
    try:
        return _count(read_scalars(path).get("epochs_done"))
    except (OSError, ValueError):
        return None


@dataclasses.dataclass
class TrainingScript:
    path: str              # as the user gave it (the commands use this spelling)
    parser: object         # the script's argparse parser; errors raise UsageError
    fname_flags: tuple


def load_script(path):
    """The training script at ``path`` with its parser, or a UsageError."""
    name = os.path.basename(path)
    if name not in SCRIPT_FNAME_FLAGS:
        known = ", ".join(sorted(SCRIPT_FNAME_FLAGS))
        raise UsageError(f"'{path}' is not a training script sweep.py can run ({known}); give "
                         "the script itself after --, e.g. -- run_mnist.py --output_dir out")
    if not os.path.isfile(path):
        raise UsageError(f"script {path} not found; run sweep.py from the directory that holds it "
                         "or give its path")
    # The script's own imports (forgetting, models, cutout) come from the installed package.
    spec = importlib.util.spec_from_file_location(f"_swept_{name[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "build_parser"):
        raise UsageError(f"{path} has no build_parser(); sweep.py needs it to check the grid")
    parser = module.build_parser()
    parser.prog = name

    def refuse(message):
        raise UsageError(message)

    parser.error = refuse  # the script's parser would exit; here a bad command is a refusal
    return TrainingScript(path, parser, SCRIPT_FNAME_FLAGS[name])


def _dest_of(parser, word):
    """The dest of option ``word`` (``--x`` or ``--x=v``, abbreviations as argparse allows), or None."""
    flag = word.split("=", 1)[0]
    options = parser.options
    if flag in options:
        return options[flag].dest
    matches = {action.dest for option, action in options.items() if option.startswith(flag)}
    return matches.pop() if len(matches) == 1 and parser.allow_abbrev else None


def check_grid(script, fixed, axes):
    """Refuse, before anything runs, an axis that is not a value flag of the script, an axis
    the fixed flags also set, and a flag the sweep sets itself."""
    options = script.parser.options
    fixed_dests = {_dest_of(script.parser, word): word for word in fixed if word.startswith("--")}
    for dest, why in SWEEP_FLAGS.items():
        if dest in fixed_dests:
            raise UsageError(f"--{dest} is given after --; {why}")
    for name, _ in axes:
        action = options.get(f"--{name}")
        if action is None:
            raise UsageError(f"--grid {name}: {script.path} has no flag --{name}; see "
                             f"python {script.path} --help")
        if action.nargs == 0:
            raise UsageError(f"--grid {name}: --{name} is a switch without a value; put it in the "
                             "fixed flags after -- (or run two sweeps, with and without it)")
        if action.dest in SWEEP_FLAGS:
            raise UsageError(f"--grid {name}: {SWEEP_FLAGS[action.dest]}")
        if action.dest in fixed_dests:
            raise UsageError(f"--grid {name} is also given as the fixed flag "
                             f"{fixed_dests[action.dest]} after --; drop one of them")


def _read_record(path):
    """The run record at ``path``, or None when there is none or it cannot be read (the run
    then counts as one written before records: its resume state decides)."""
    try:
        return read_record(path)
    except (OSError, ValueError):
        return None


@dataclasses.dataclass
class Run:
    """One grid point: its command (argv without the interpreter), its files and how far its
    files say it got when the sweep was planned."""

    argv: List[str]
    fname: str
    output_dir: str
    epochs: int                     # the sweep's --epochs for it
    epochs_done: Optional[int]      # committed epochs: its resume state's, else its record's;
                                    # None: neither exists, the run has not started
    recorded_epochs: Optional[int]  # the --epochs of its record; None: no (readable) record
    recorded_finished: bool         # its record says all those epochs and the pickle are done
    extend: bool = False            # sweep.py --extend: its --epochs may change

    @property
    def started(self):
        return self.epochs_done is not None

    @property
    def finished(self):
        """Nothing left to do: its record says it finished the sweep's --epochs; a run without
        a record (written before records existed) has as many epochs in its resume state."""
        if self.recorded_epochs is None:
            return self.started and self.epochs_done >= self.epochs
        return self.recorded_finished and self.recorded_epochs == self.epochs

    @property
    def changes_epochs(self):
        """The sweep would extend (or cut short) a run started with other --epochs."""
        return bool(self.epochs_done) and self.recorded_epochs not in (None, self.epochs)

    @property
    def log_path(self):
        return sweep_log_path(self.output_dir, self.fname)

    def command(self, threads):
        """The argv the sweep runs: the grid's command, plus --threads, --resume (the run
        decides under its lock whether there is anything to continue) and --no_extend."""
        return self.argv + ["--threads", str(threads), "--resume"] + (
            [] if self.extend else ["--no_extend"])

    def dry_run_line(self):
        """The line ``--dry_run`` prints: the command, with --resume for a started run; a
        comment for a finished one, so that a scheduler fed these lines skips it."""
        if self.finished:
            return f"# finished, not run: {shell_line(self.argv)}"
        return shell_line(self.argv + (["--resume"] if self.started else []))


def plan_runs(script, commands, extend=False):
    """A ``Run`` per command, each parsed by the script's parser; two commands naming the same
    run (same output directory and file name) are refused, as they would fight over its files."""
    runs, seen = [], {}
    for argv in commands:
        try:
            args = script.parser.parse_args(argv[1:])
        except UsageError as err:
            raise UsageError(f"{script.path} refuses `{shell_line(argv)}`: {err}") from None
        fname = save_fname(args, script.fname_flags)
        key = (os.path.realpath(args.output_dir), fname)
        if key in seen:
            raise UsageError(f"`{shell_line(seen[key])}` and `{shell_line(argv)}` are the same run "
                             f"({fname} in {args.output_dir}); remove the repeated value")
        seen[key] = argv
        paths = RunPaths.for_run(args.output_dir, fname)
        record = _read_record(paths.record) or {}
        done = saved_epochs(paths.resume_state)
        if done is None:
            done = _count(record.get("epochs_done"))
        runs.append(Run(argv, fname, args.output_dir, args.epochs, done,
                        _count(record.get("epochs")), record.get("finished") is True, extend))
    return runs


def epoch_refusals(runs):
    """One line for each run the sweep must not start: a run whose record has other --epochs
    than the sweep (the sweep would extend it, or take it for finished at another length),
    unless the sweep has --extend; even with --extend, a run with more epochs done than the
    sweep's --epochs, which cannot be undone."""
    lines = []
    for run in runs:
        if not run.changes_epochs:
            continue
        where = f"run {run.fname} in {run.output_dir}"
        if not run.extend:
            lines.append(f"{where} was started with --epochs {run.recorded_epochs} "
                         f"({run.epochs_done} done), not the sweep's {run.epochs}; give --epochs "
                         f"{run.recorded_epochs}, or --extend to continue it to {run.epochs}")
        elif run.epochs_done > run.epochs:
            lines.append(f"{where} has {run.epochs_done} epochs done, more than the sweep's "
                         f"--epochs {run.epochs}; give --epochs {run.recorded_epochs}")
    return lines


def check_sorting_files(script, runs):
    """Refuse, before anything starts, a ``--sorting_file`` that one of ``runs`` would not
    find: looked up as the script will, from the sweep's working directory (the runs'),
    once per distinct --input_dir and --sorting_file."""
    looked_up = set()
    for run in runs:
        args = script.parser.parse_args(run.argv[1:])
        where = (args.input_dir, args.sorting_file)
        if args.sorting_file != "none" and where not in looked_up:
            sorting_file_path(*where)
            looked_up.add(where)
