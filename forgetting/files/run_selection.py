"""Which runs a reading tool uses (docs/flags.md, "Run selection").

Every tool that reads runs (the ordering script, score_examples.py, collect_results.py,
plot_figures.py) finds them here, the same way:

- every ``*stats_dict.pkl`` below ``--input_dir`` (recursive, sorted), with the run record
  beside it when there is one (``__run.json``);
- ``--input_fname_args arg val ...`` keeps a run when, for every pair, its file name holds
  ``<arg>_<val>__`` (the original's rule) or its flags give ``arg`` the value ``val``: the
  recorded flags, defaults included, or for a run without a record the flags its file name
  gives plus the defaults of those new flags that enter the name only when set (``sampling``
  is ``uniform``). So ``sampling uniform`` selects the runs whose names do not mention it;
- the same run found twice (a copy in another folder below ``--input_dir``) is used once;
- tools that combine runs into one result refuse runs that differ in a flag that changes
  results, other than ``seed`` (``check_one_experiment``), and take the number of epochs from
  the runs' records unless told (``epochs_of``).
"""
import contextlib
import dataclasses
import os
from typing import Optional

from forgetting.errors import UsageError
from forgetting.files import run_record
from forgetting.files.regular import require_regular_file
from forgetting.files.naming import (APPENDED_FLAG_TYPES, APPENDED_FNAME_FLAGS, FNAME_FLAG_TYPES,
                                     IMAGES_APPENDED_FLAGS, OPTIONAL_FLAG_TYPES, STATS_ENDING,
                                     RunPaths, parse_save_fname, typed_flag_value)

# What a run without a record read for --epochs: the training scripts' default.
DEFAULT_EPOCHS = 200


@dataclasses.dataclass
class FoundRun:
    """One run: its stats file, its record (None for runs written before records existed,
    or when it cannot be read: ``record_problem`` says why) and its flags."""

    path: str
    record: Optional[dict]
    flags: dict
    record_problem: Optional[str] = None

    @property
    def name(self):
        return os.path.basename(self.path)

    @property
    def paths(self):
        """The run's files (None when the stats file's name is no save_fname)."""
        return RunPaths.for_stats(self.path)

    def identity(self):
        """What makes two copies of a run the same run."""
        if self.record is not None:
            r = self.record
            return ("record", r["save_fname"], r["started"], r["host"], r["train_ids_sha256"])
        return ("file", os.path.realpath(self.path))


def flags_from_name(name):
    """The flags a file name gives, typed, plus the defaults of the flags that enter names
    only when set (``sampling``; run_mnist.py's ``model`` and noise flags); {} for a name no
    training script made."""
    try:
        flags, extra = parse_save_fname(name)
    except ValueError:
        return {}
    defaults = {"sampling": "uniform"}
    defaults.update(APPENDED_FNAME_FLAGS.get(tuple(flags), {}))
    for part in filter(None, extra.split("__")):
        for flag in (*APPENDED_FLAG_TYPES, *OPTIONAL_FLAG_TYPES, *IMAGES_APPENDED_FLAGS):
            if part.startswith(flag + "_"):
                try:
                    flags[flag] = typed_flag_value(flag, part[len(flag) + 1:])
                except ValueError:
                    pass
                break
    for flag, default in defaults.items():
        flags.setdefault(flag, default)
    return flags


def same_value(value, text):
    """Whether a flag's ``value`` is what ``--input_fname_args`` wrote as ``text``: equal as
    text, or as numbers (``0`` selects ``0.0``)."""
    if hasattr(value, "item"):  # a numpy or pandas scalar from a results table
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (str, list)):
        return str(value) == text
    try:
        return float(text) == float(value)
    except ValueError:
        return False


def matches(run, fname_args):
    """True when every ``(arg, val)`` pair of ``fname_args`` holds for ``run`` (by name or value)."""
    return all(f"{arg}_{val}__" in run.name or (arg in run.flags and same_value(run.flags[arg], val))
               for arg, val in zip(fname_args[0::2], fname_args[1::2]))


def read_found_run(path):
    """The ``FoundRun`` of the stats file at ``path``."""
    run = FoundRun(path, None, flags_from_name(os.path.basename(path)))
    if run.paths is not None:
        try:
            run.record = run_record.read_record(run.paths.record)
        except (OSError, ValueError) as err:
            run.record_problem = f"run record unreadable ({err})"
    if run.record is not None:
        run.flags = dict(run.record["flags"])
    return run


def find_runs(input_dir, fname_args, say=print, verbose=False, list_included=True):
    """The runs below ``input_dir`` that ``fname_args`` selects, each once, in file order.

    Says ``including file: NAME`` per run (with ``list_included``), one line for the files
    passed over (each of them with ``verbose``), and a note for a run found twice."""
    runs, seen, skipped = [], {}, 0
    for directory, subdirs, files in os.walk(input_dir):
        subdirs.sort()
        for name in sorted(files):
            if not name.endswith(STATS_ENDING):
                continue
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):  # a dangling link: its reader says so
                require_regular_file(path)  # a FIFO would block its reader: refuse it now
            run = read_found_run(path)
            if not matches(run, fname_args):
                skipped += 1
                if verbose:
                    say(f"skipping file: {name}")
                continue
            first = seen.setdefault(run.identity(), run)
            if first is not run:
                say(f"the same run is at {first.path} and {run.path}: using it once")
                continue
            if list_included:
                say(f"including file: {name}")
            runs.append(run)
    if skipped and runs and not verbose:  # none at all: the caller's refusal says so
        pairs = " ".join(fname_args)
        say(f"skipping {skipped} stats file(s) that do not match --input_fname_args "
            f"{pairs} (--verbose lists them)")
    return runs


def check_run_selection(fname_args, epochs, input_dir=None):
    """The run selection every reading script shares (``--input_fname_args``, ``--epochs``,
    ``--input_dir``): returns the flat pair list (``[]`` for None) after refusing an odd number
    of words, ``--epochs`` below 1 and an ``input_dir`` (when given) that is no directory."""
    fname_args = fname_args or []
    if len(fname_args) % 2:
        raise UsageError(f"--input_fname_args takes name/value pairs (arg1 val1 arg2 val2 ...), "
                         f"got {len(fname_args)} words: {' '.join(fname_args)}")
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if input_dir is not None and not os.path.isdir(input_dir):
        raise UsageError(f"--input_dir {input_dir} does not exist or is not a directory")
    return fname_args


def check_one_experiment(runs):
    """Refuse runs that differ in a flag that changes results, other than ``seed`` (and
    ``epochs``: see ``epochs_of``), naming the flag to select by."""
    shared = set.intersection(*(set(run.flags) for run in runs)) if runs else set()
    candidates = run_record.result_flags(dict.fromkeys(shared)).keys() - {"seed"}
    # the file name's flags first, then sampling before its options: the flag to name is the
    # one a user chose, not one that follows from it
    order = [*FNAME_FLAG_TYPES, *OPTIONAL_FLAG_TYPES]
    for flag in sorted(candidates, key=lambda f: (order.index(f) if f in order else len(order), f)):
        values = {str(run.flags[flag]) for run in runs}
        if len(values) > 1:
            listed = ", ".join(sorted(values))
            raise UsageError(f"the runs mix experiments ({flag} takes {listed}); keep one with "
                             f"--input_fname_args {flag} VALUE")


def epochs_of(runs, given, say=None):
    """The number of epochs (presentations per example) to read: ``given`` (``--epochs``)
    when it is not None, else the runs' recorded ``epochs``, which must agree; runs without
    a record count the scripts' default, 200. ``say`` gets one line when the runs decided."""
    if given is not None:
        return given
    recorded = sorted({run.record["epochs"] for run in runs if run.record is not None})
    if len(recorded) > 1:
        raise UsageError(f"the runs were trained for different numbers of epochs "
                         f"({', '.join(map(str, recorded))}); keep one with --input_fname_args "
                         "epochs N, or give --epochs")
    epochs = recorded[0] if recorded else DEFAULT_EPOCHS
    if say is not None:
        source = ("the runs' own --epochs" if recorded else
                  "the training scripts' default: these runs have no run record")
        say(f"reading {epochs} epochs per run ({source}; --epochs chooses)")
    return epochs


def refuse_diverged(runs, include):
    """Refuse runs whose record says they diverged, unless ``include`` (--include_diverged)."""
    diverged = [run for run in runs
                if run.record is not None and run.record.get("diverged_at_epoch") is not None]
    if diverged and not include:
        first = diverged[0]
        more = f" and {len(diverged) - 1} more" if len(diverged) > 1 else ""
        raise UsageError(f"{first.name}{more} diverged (non-finite training loss from epoch "
                         f"{first.record['diverged_at_epoch']} on); leave such runs out with "
                         "--input_fname_args, or pass --include_diverged to use them as recorded")


EPOCHS_DEFAULT_HELP = ("default: the runs' own --epochs from their run records, which must agree; "
                       "200 for runs without one")


def add_verbose_flag(parser):
    """``--verbose``: every tool that finds runs lists the files it passed over with it."""
    parser.add_argument("--verbose", action="store_true",
                        help="list every stats file passed over, not only how many")


def add_runs_flags(parser, input_dir_help):
    """``--input_dir`` (required; ``input_dir_help`` says what is searched for) and
    ``--input_fname_args``, as the figures that read runs take them."""
    parser.add_argument("--input_dir", required=True, help=input_dir_help)
    parser.add_argument("--input_fname_args", nargs="+", metavar="ARG_OR_VALUE",
                        help="name/value pairs 'arg1 val1 arg2 val2 ...' selecting the runs, as in "
                             "order_examples_by_forgetting.py; default: every run")


def add_combining_flags(parser, epochs_help):
    """``--epochs`` (``epochs_help`` says what it counts; the default is added),
    ``--verbose`` and ``--include_diverged``: the flags of every tool that combines runs."""
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"{epochs_help} ({EPOCHS_DEFAULT_HELP})")
    add_verbose_flag(parser)
    parser.add_argument("--include_diverged", action="store_true",
                        help="use runs whose training loss became non-finite (refused by default)")


def select_runs(input_dir, fname_args=None, epochs=None, include_diverged=False, say=print,
                verbose=False, list_included=True):
    """``(runs, epochs)``: the runs below ``input_dir`` that ``fname_args`` (``[arg, val, ...]``
    as ``--input_fname_args``) select for one result, and the number of presentations per run
    to read (``epochs``, else the runs' recorded ``--epochs``), after every refusal (a
    UsageError): a missing directory, none found, mixed experiments, diverged runs (unless
    ``include_diverged``), disagreeing epochs. ``say`` gets the selection's lines and which
    epochs were read; ``say=lambda line: None`` silences them.

    The selection every tool that combines runs makes; a notebook calls it directly::

        runs, epochs = select_runs("mnist_results", ["dataset", "mnist_5k"])
        paths = [run.path for run in runs]
    """
    fname_args = check_run_selection(fname_args, epochs, input_dir)
    runs = find_runs(input_dir, fname_args, say=say, verbose=verbose, list_included=list_included)
    require_runs(runs, input_dir, fname_args)
    check_one_experiment(runs)
    refuse_diverged(runs, include_diverged)
    return runs, epochs_of(runs, epochs, say=say)


def runs_to_combine(args, say=print, list_included=True):
    """``select_runs`` with the parsed flags ``args`` (``--input_dir``, ``--input_fname_args``
    and the ``add_combining_flags``)."""
    return select_runs(args.input_dir, args.input_fname_args, args.epochs, args.include_diverged,
                       say=say, verbose=args.verbose, list_included=list_included)


def require_runs(runs, input_dir, fname_args):
    """Refuse an empty selection, in the original's words."""
    if not runs:
        raise UsageError(f"No input files found in {input_dir} that match {list(fname_args)}")
