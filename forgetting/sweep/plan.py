"""What a sweep will do, decided before anything starts.

``load_script`` finds the training script and its flags (its own ``build_parser``);
``check_grid`` refuses axes the script does not have or that the fixed flags already set;
``plan_runs`` parses every command with the script's parser, as the script itself will, and
reads each run's resume state to tell runs to start from runs to continue and finished runs
to skip (no training process is started to find that out); ``check_sorting_files`` refuses
a sorting file the runs to start would not find.
"""
import dataclasses
import importlib.util
import os
import sys
from typing import List, Optional

from forgetting.data.selection import sorting_file_path
from forgetting.errors import UsageError
from forgetting.files.naming import SCRIPT_FNAME_FLAGS, RunPaths, save_fname, sweep_log_path
from forgetting.files.resume_scalars import read_scalars
from forgetting.sweep.grid import shell_line

# Flags the sweep sets itself: --threads from --cpus_per_run, --resume for unfinished runs.
SWEEP_FLAGS = {"threads": "set it with sweep.py --cpus_per_run",
               "resume": "the sweep adds --resume to the runs that need it"}


def saved_epochs(path):
    """The finished epochs in the resume state at ``path`` (read without its weights), or
    None when there is none or it cannot be read: the run is not known to be finished."""
    try:
        epochs = read_scalars(path).get("epochs_done")
    except (OSError, ValueError):
        return None
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


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
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:  # its own imports (models, forgetting) live beside it
        sys.path.insert(0, directory)
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


def _options(parser):
    """{'--flag': action} over every option string the parser knows."""
    return parser._option_string_actions  # argparse has no public accessor for this table


def _dest_of(parser, word):
    """The dest of option ``word`` (``--x`` or ``--x=v``, abbreviations as argparse allows), or None."""
    flag = word.split("=", 1)[0]
    options = _options(parser)
    if flag in options:
        return options[flag].dest
    matches = {action.dest for option, action in options.items() if option.startswith(flag)}
    return matches.pop() if len(matches) == 1 and parser.allow_abbrev else None


def check_grid(script, fixed, axes):
    """Refuse, before anything runs, an axis that is not a value flag of the script, an axis
    the fixed flags also set, and a flag the sweep sets itself."""
    options = _options(script.parser)
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


@dataclasses.dataclass
class Run:
    """One grid point: its command (argv without the interpreter) and its files."""

    argv: List[str]
    fname: str
    output_dir: str
    epochs: int
    epochs_done: Optional[int]   # from its resume state; None: no (readable) state

    @property
    def finished(self):
        return self.epochs_done is not None and self.epochs_done >= self.epochs

    @property
    def log_path(self):
        return sweep_log_path(self.output_dir, self.fname)

    def command(self, threads, resume):
        """The argv the sweep runs: the grid's command, plus --threads and --resume."""
        extra = ["--threads", str(threads)] + (["--resume"] if resume else [])
        return self.argv + extra


def plan_runs(script, commands):
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
        state = RunPaths.for_run(args.output_dir, fname).resume_state
        runs.append(Run(argv, fname, args.output_dir, args.epochs, saved_epochs(state)))
    return runs


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
