"""Every training run below a directory as one row of a pandas DataFrame.

Runs are found as the ordering script finds them (``find_stats_files``: every
``*stats_dict.pkl`` whose name holds ``<arg>_<val>__`` for each ``--input_fname_args``
pair), but the 200 MB stats pickles are never opened. A row is read from the run's own
small files instead:

- the file name gives the flags, typed (``naming.parse_save_fname``);
- the resume state's plain entries (``files.resume_scalars``: a few KB of the archive, not
  the weights) give ``epochs_done`` and the best accuracies; they are the run's commit
  point, so they are what ``--resume`` would continue from;
- the stats log's header gives ``n_train``, and the ``test_acc`` field of its last
  committed record (one 8-byte read at a known offset) gives ``final_test_acc``.

``finished`` is True when the run committed exactly ``epochs`` epochs (the training
scripts' ``--epochs``, which no file of the run records: the resume state stores how far a
run got, not how far it was asked to go) and its stats pickle was written complete after
the last one. A run that is still going, was stopped, was killed, or whose files are
damaged or missing is a row with ``finished=False`` and the reason in ``problem``.

Columns: one per file-name flag (``dataset``, ``no_dropout`` or ``data_augmentation`` ...,
in file-name order; int, float, bool or str as the scripts parse them), ``extra_flags``
(only when some file name carries flags after the script's own, SPEC section 7), then
``RESULT_COLUMNS``.
"""
import os

import numpy as np
import pandas as pd

from forgetting.errors import UsageError
from forgetting.files import stats_log
from forgetting.files.naming import (FNAME_FLAG_TYPES, STATS_SUFFIX, RunPaths,
                                     check_run_selection, find_stats_files, parse_save_fname)
from forgetting.files.regular import open_regular
from forgetting.files.resume_scalars import read_scalars

RESULT_COLUMNS = ("n_train", "epochs_done", "final_test_acc", "best_test_acc", "best_train_acc",
                  "finished", "problem", "path")
_COLUMN_TYPES = {"n_train": "Int64", "epochs_done": "Int64", "final_test_acc": "float64",
                 "best_test_acc": "float64", "best_train_acc": "float64", "finished": "bool",
                 "problem": "object", "path": "object", "extra_flags": "object"}
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


def read_run(stats_path, epochs):
    """One run's row as a dict (flag columns first, then RESULT_COLUMNS); never raises for
    a damaged run: what could not be read is NaN/None and ``problem`` says why."""
    name = os.path.basename(stats_path)
    row = {"n_train": None, "epochs_done": None, "final_test_acc": np.nan,
           "best_test_acc": np.nan, "best_train_acc": np.nan}
    problems = []
    try:
        flags, extra = parse_save_fname(name)
    except ValueError as err:
        flags, extra = {}, ""
        problems.append(str(err))
    if extra:
        flags["extra_flags"] = extra
    if not name.endswith(STATS_SUFFIX):
        problems.append(f"its name does not end in {STATS_SUFFIX}, so its run files are unknown")
        return {**flags, **row, "finished": False, "problem": "; ".join(problems),
                "path": stats_path}
    paths = RunPaths.for_run(os.path.dirname(stats_path), name[:-len(STATS_SUFFIX)])

    state = {}
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

    if not problems and row["epochs_done"] != epochs:
        problems.append(f"{row['epochs_done']} of {epochs} epochs done")
    if not problems and state.get("legacy_epochs") != row["epochs_done"]:
        problems.append("its stats pickle holds fewer epochs than were trained (the run was "
                        "killed); rerun it with --resume to complete the file")
    return {**flags, **row, "finished": not problems, "problem": "; ".join(problems),
            "path": stats_path}


def _with_types(frame):
    """``frame`` with every known column of its real type (a flag column with a missing value,
    from a table mixing both scripts' runs, takes pandas' nullable type of its kind)."""
    for column in frame.columns:
        kind = FNAME_FLAG_TYPES.get(column)
        if kind is not None:
            frame[column] = frame[column].astype(
                _NULLABLE[kind] if frame[column].isna().any() else _PLAIN[kind])
    return frame.astype({c: t for c, t in _COLUMN_TYPES.items() if c in frame.columns})


def _typed_frame(rows):
    """The rows as a DataFrame, columns in table order."""
    flag_columns = list(dict.fromkeys(k for row in rows for k in row if k in FNAME_FLAG_TYPES))
    extra = ["extra_flags"] if any("extra_flags" in row for row in rows) else []
    return _with_types(pd.DataFrame(rows, columns=[*flag_columns, *extra, *RESULT_COLUMNS]))


def collect(input_dir, fname_args=(), epochs=200, say=None):
    """The DataFrame of every run below ``input_dir`` that ``fname_args`` (the flat
    ``[arg1, val1, ...]`` list of ``--input_fname_args``) selects, one row per run, in the
    ordering script's file order. ``epochs``: the ``--epochs`` the runs were started with,
    which decides ``finished``. ``say`` gets the ordering script's ``including file`` /
    ``skipping file`` lines (default: silent). No run found: an empty DataFrame."""
    paths = find_stats_files(input_dir, list(fname_args), say=say or (lambda line: None))
    return _typed_frame([read_run(path, epochs) for path in paths])


def flag_columns(frame):
    """The frame's flag columns (``extra_flags`` included), in table order."""
    return [c for c in frame.columns if c in FNAME_FLAG_TYPES or c == "extra_flags"]


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
    text = [c for c in header if FNAME_FLAG_TYPES.get(c) is str or c in ("problem", "path",
                                                                          "extra_flags")]
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
    parser.add_argument("--epochs", type=int, default=200,
                        help="the --epochs the runs were started with; a run is finished when it "
                             "has done exactly this many (default: 200, the scripts' default)")


def check_selection(args):
    """The flat ``--input_fname_args`` list, after refusing an odd one, ``--epochs`` below 1
    and an ``--input_dir`` (when given) that is no directory."""
    return check_run_selection(args.input_fname_args, args.epochs, args.input_dir)
