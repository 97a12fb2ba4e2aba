"""Every training run below a directory as one row of a pandas DataFrame.

Runs are found and selected as every reading tool finds them (files/run_selection.py:
``--input_fname_args`` on file names and recorded values, each run once), but the 200 MB
stats pickles are never opened. A row is read from the run's small files instead:

- the run record (``__run.json``, files/run_record.py) gives the flags, the intended and
  finished epochs, presentations, accuracies and whether the run finished;
- a run written before records existed is read as before: the file name gives its flags
  (``naming.parse_save_fname``), the resume state's plain entries (``files.resume_scalars``:
  a few KB of the archive, not the weights) give ``epochs_done`` and the best accuracies, and
  the stats log gives ``n_train`` and ``final_test_acc``; such a run is finished when it
  committed exactly ``epochs`` epochs (200 unless told) and its stats pickle is complete.

A run that is still going, was stopped, was killed, diverged, or whose files are damaged or
missing is a row with ``finished=False`` and the reason in ``problem``. Damage that leaves a
file readable (flipped bytes) shows only with ``verify``: every byte of the run's resume state,
stats log and stats pickle is then read and checked against the checksums the run wrote
(``_damage``), about 1 s per 50,000 x 200 run, which the default table does without.

Columns: the flags that change results (``dataset``, ``no_dropout`` or
``data_augmentation`` ..., in file-name order, then ``sampling`` and its options, then the
other recorded ones such as ``lr``; typed as the scripts parse them, missing where a run does
not have the flag), then ``RESULT_COLUMNS``.
"""
import os

import numpy as np
import pandas as pd

from forgetting.errors import UsageError
from forgetting.files import run_record, stats_log
from forgetting.files.naming import FNAME_FLAG_TYPES, OPTIONAL_FLAG_TYPES, sorting_file_name
from forgetting.files.regular import open_regular
from forgetting.files.resume_scalars import read_scalars
from forgetting.files.run_selection import (DEFAULT_EPOCHS, add_verbose_flag,
                                            check_run_selection, epochs_of, find_runs)

RESULT_COLUMNS = ("n_train", "epochs", "epochs_done", "presentations", "final_test_acc",
                  "best_test_acc", "best_train_acc", "finished", "problem", "path")
_COLUMN_TYPES = {"n_train": "Int64", "epochs": "Int64", "epochs_done": "Int64",
                 "presentations": "Int64", "final_test_acc": "float64",
                 "best_test_acc": "float64", "best_train_acc": "float64", "finished": "bool",
                 "problem": "object", "path": "object"}
# The kind of every flag column whose kind is known without looking at the values.
FLAG_TYPES = {**FNAME_FLAG_TYPES, **OPTIONAL_FLAG_TYPES}
# Flag columns with a missing value (runs of both scripts in one table) keep their kind.
_NULLABLE = {int: "Int64", float: "Float64", bool: "boolean", str: "object"}
_PLAIN = {int: "int64", float: "float64", bool: "bool", str: "object"}


def _read_best_acc_txt(path):
    """(best train, best test) from ``__best_acc.txt``; ValueError/OSError if unreadable."""
    with open_regular(path, "r") as handle:
        lines = handle.read().split("\n")
    if len(lines) != 2 or lines[0].split() != ["train", "test"]:
        raise ValueError("not a best_acc.txt")
    train, test = lines[1].split()
    return float(train), float(test)


def _number(value, kind):
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"it holds {value!r} where a number belongs")
    return value


# What a row says of a run killed after a commit, before its stats pickle caught up.
_PICKLE_TRAILS = ("its stats pickle holds fewer epochs than were trained (the run was killed); "
                  "rerun it with --resume to complete the file")


def _unread_row():
    """The result columns before anything of the run is read."""
    return {"n_train": None, "epochs": None, "epochs_done": None, "presentations": None,
            "final_test_acc": np.nan, "best_test_acc": np.nan, "best_train_acc": np.nan}


def _from_record(record, epochs):
    """The result columns of a run with a record, and its problem or None."""
    row = {key: record.get(key) for key in _unread_row()}
    wanted = epochs or record["epochs"]
    problem = None
    if record.get("diverged_at_epoch") is not None:
        problem = (f"diverged: the training loss is not finite from epoch "
                   f"{record['diverged_at_epoch']} on")
    elif record["epochs_done"] != wanted:
        problem = f"{record['epochs_done']} of {wanted} epochs done"
    elif not record["finished"] or record["stats_pickle_epochs"] != record["epochs_done"]:
        problem = _PICKLE_TRAILS
    return row, problem


def _from_run_files(paths, epochs):
    """The result columns of a run without a record, from its resume state and stats log, and
    its problems (a list)."""
    row = _unread_row()
    problems, state = [], {}
    try:
        state = read_scalars(paths.resume_state)
        row["epochs_done"] = _number(state.get("epochs_done"), int)
        row["best_train_acc"] = float(_number(state.get("best_train"), (int, float)))
        row["best_test_acc"] = float(_number(state.get("best_test"), (int, float)))
    except FileNotFoundError:
        problems.append("no resume state (a run of the original scripts, or one that never "
                        "finished an epoch)")
        try:  # the original's own record of the best accuracies
            row["best_train_acc"], row["best_test_acc"] = _read_best_acc_txt(paths.best_acc)
        except (OSError, ValueError):
            pass
    except (OSError, ValueError) as err:
        problems.append(f"resume state unreadable ({err})")

    try:
        row["n_train"] = stats_log.peek(paths.stats_log)[0]
        if row["epochs_done"]:
            row["final_test_acc"] = float(stats_log.read_field(paths.stats_log,
                                                               row["epochs_done"] - 1, "test_acc"))
    except FileNotFoundError:
        problems.append("no stats log")
    except (OSError, ValueError) as err:
        problems.append(f"stats log unreadable ({err})")

    epochs = epochs or DEFAULT_EPOCHS
    if not problems and row["epochs_done"] != epochs:
        problems.append(f"{row['epochs_done']} of {epochs} epochs done")
    if not problems and state.get("legacy_epochs") != row["epochs_done"]:
        problems.append(_PICKLE_TRAILS)
    return row, problems


def _damage(run):
    """What reading every byte of a recorded run's resume state, stats log and stats pickle
    finds wrong against their checksums (the record's sha256 entries, the log's per-record
    crc32), as a list of problems."""
    record, paths, problems = run.record, run.paths, []
    if paths is None:
        return problems
    if os.path.exists(paths.resume_state):
        try:
            problem = run_record.resume_state_problem(
                record, read_scalars(paths.resume_state), run_record.file_sha256(paths.resume_state))
        except (OSError, ValueError) as err:
            problem = f"unreadable ({err})"
        if problem:
            problems.append(f"resume state {problem}")
    try:
        done = record["epochs_done"]
        intact = stats_log.open_stats_log(paths.stats_log).intact(done)
        if intact < done:
            problems.append(f"stats log damaged from epoch {intact + 1} on (a record fails its "
                            "checksum)")
    except (OSError, UsageError) as err:
        problems.append(f"stats log unreadable ({err})")
    try:
        problem = run_record.pickle_problem(record, lambda: run_record.file_sha256(run.path))
    except OSError as err:
        problem = f"unreadable ({err.strerror or err})"
    if problem:
        problems.append(f"stats pickle {problem}")
    return problems


def read_run(run, epochs=None, verify=False):
    """One run's row (``run``: a ``run_selection.FoundRun``) as a dict, flag columns first,
    then RESULT_COLUMNS; never raises for a damaged run: what could not be read is NaN/None
    and ``problem`` says why. ``epochs``: the --epochs a finished run must have done (None: a
    recorded run's own, 200 for a run without a record). ``verify``: check every byte of a
    recorded run's files against their checksums (``_damage``)."""
    flags = dict(run.flags)
    if run.record is not None:
        flags = run_record.result_flags(flags)
        if isinstance(flags.get("sorting_file"), str):  # a path given: the name the run's files use
            flags["sorting_file"] = sorting_file_name(flags["sorting_file"])
        row, problem = _from_record(run.record, epochs)
        problems = _damage(run) if verify else []
        problems += [problem] if problem else []
    elif run.paths is None:
        row = _unread_row()
        problems = [] if flags else ["not a run's file name"]
        problems.append("its name does not end in __stats_dict.pkl, so its run files are "
                        "unknown")
    else:
        row, problems = _from_run_files(run.paths, epochs)
    if run.record_problem:
        problems.insert(0, run.record_problem)
    return {**flags, **row, "finished": not problems, "problem": "; ".join(problems),
            "path": run.path}


def _with_types(frame):
    """``frame`` with every known column of its real type (a flag column with a missing value,
    from a table mixing both scripts' runs, takes pandas' nullable type of its kind)."""
    for column in frame.columns:
        kind = FLAG_TYPES.get(column)
        if kind is not None:
            frame[column] = frame[column].astype(
                _NULLABLE[kind] if frame[column].isna().any() else _PLAIN[kind])
    return frame.astype({c: t for c, t in _COLUMN_TYPES.items() if c in frame.columns})


def _typed_frame(rows):
    """The rows as a DataFrame, columns in table order: the file-name flags, sampling and its
    options, the other recorded flags (sorted), then RESULT_COLUMNS."""
    # a flag no run has a value of (the options of a sampling mode none used) is no column
    present = dict.fromkeys(k for row in rows for k, v in row.items()
                            if k not in RESULT_COLUMNS and v is not None)
    known = [c for c in FLAG_TYPES if c in present]
    others = sorted(c for c in present if c not in FLAG_TYPES)
    return _with_types(pd.DataFrame(rows, columns=[*known, *others, *RESULT_COLUMNS]))


def collect(input_dir, fname_args=(), epochs=None, say=None, verbose=False, verify=False):
    """The DataFrame of every run below ``input_dir`` that ``fname_args`` (the flat
    ``[arg1, val1, ...]`` list of ``--input_fname_args``) selects, one row per run, in the
    ordering script's file order. ``epochs``: the --epochs a run must have finished to count
    as finished (None: the runs' own, which must agree; see run_selection.epochs_of). ``say``
    gets the run selection's lines (default: silent); ``verify``: see ``read_run``. No run
    found: an empty DataFrame."""
    runs = find_runs(input_dir, list(fname_args), say=say or (lambda line: None), verbose=verbose,
                     list_included=verbose)
    if runs:
        epochs_of(runs, epochs)  # refuses runs of different recorded epochs unless told
    return _typed_frame([read_run(run, epochs, verify) for run in runs])


def flag_columns(frame):
    """The frame's flag columns, in table order."""
    return [c for c in frame.columns if c not in RESULT_COLUMNS]


def summarize(frame):
    """Runs grouped by every flag but ``seed``: ``runs``, ``finished``, and the mean and
    standard deviation (ddof 1) of ``final_test_acc`` over the finished runs of the group."""
    keys = [c for c in flag_columns(frame) if c != "seed"]
    acc = frame["final_test_acc"].where(frame["finished"])
    grouped = frame.assign(_acc=acc).groupby(keys, dropna=False, sort=True)
    return grouped.agg(runs=("path", "size"), finished=("finished", "sum"),
                       mean_test_acc=("_acc", "mean"), std_test_acc=("_acc", "std"))


def format_summary(summary):
    """The summary as text: flags shared by every group on one line, then a table of the
    flags that differ between groups with the four figures."""
    index = summary.index.to_frame(index=False)
    constant = [c for c in index.columns if index[c].nunique(dropna=False) == 1]
    lines = []
    if constant:
        lines.append("all runs: " + " ".join(f"{c}={index[c].iloc[0]}" for c in constant))
    varying = [c for c in index.columns if c not in constant]
    table = pd.concat([index[varying], summary.reset_index(drop=True)], axis=1)
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.2f}",
                                 na_rep="-"))
    return "\n".join(lines)


def read_results(csv_path):
    """A table written by ``collect_results.py`` back as a DataFrame with the same column
    types (string flags stay strings: a sorting file named ``NA`` is not a missing value)."""
    header = pd.read_csv(csv_path, nrows=0).columns
    text = [c for c in header if FLAG_TYPES.get(c) is str or c in ("problem", "path")]
    frame = pd.read_csv(csv_path, dtype={c: str for c in text}, keep_default_na=False,
                        na_values={c: [""] for c in header if c not in text})
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"not a results table of collect_results.py (no {', '.join(missing)} "
                         "column)")
    return _with_types(frame)


def add_selection_flags(parser):
    """``--input_fname_args`` and ``--epochs``, as collect_results.py and plot_figures.py
    take them (``--input_dir`` is each script's own: required in one, an alternative to
    ``--results`` in the other)."""
    parser.add_argument("--input_fname_args", nargs="+", metavar="ARG_OR_VALUE",
                        help="name/value pairs 'arg1 val1 arg2 val2 ...': keep a run only if its "
                             "file name holds '<arg>_<val>__' for every pair (as the ordering "
                             "script); default: every run")
    parser.add_argument("--epochs", type=int, default=None,
                        help="a run is finished when it has done exactly this many epochs "
                             "(default: the runs' own --epochs from their run records, which "
                             "must agree; 200 for runs without one)")
    add_verbose_flag(parser)


def check_selection(args):
    """The flat ``--input_fname_args`` list, after refusing an odd one, ``--epochs`` below 1
    and an ``--input_dir`` (when given) that is no directory."""
    return check_run_selection(args.input_fname_args, args.epochs, args.input_dir)
