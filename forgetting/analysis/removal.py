"""The numbers of the removal experiments (Figures 5 and 6), from a results table of
``forgetting.analysis.results`` (one row per run): the curves the figures draw and the
``measured:`` values plot_figures.py prints (definitions: docs/figures.md#removal).

- ``finished_runs``: the finished runs of one experiment (a table mixing experiments beyond
  the removal axes is refused);
- ``removal_curves``: per sorting file, and for random removal, the mean and std over seeds
  of the final test accuracy per number removed, with the full training set's accuracy;
- ``removal_measures``: ``test_acc[selected@<p>]``, ``test_acc[random@<p>]`` and
  ``removable_percent``;
- ``removable_percent``: the largest percent removed whose mean selected accuracy is at most
  ``REMOVABLE_TOLERANCE`` points below the full set's;
- ``window_curves``: the windows of one size at several starts, and random removal of as many;
- ``window_count_points``: each window's mean forgetting count and mean accuracy (Fig 5
  right; ``spearman_window`` is their Spearman correlation).
"""
import dataclasses
from typing import Optional

import numpy as np

from forgetting.errors import UsageError
from forgetting.analysis.counts import window_mean_counts
from forgetting.analysis.results import flag_columns

# Flags that a removal figure plots against or averages over; every other flag must have
# one value, or the table mixes experiments.
REMOVAL_AXES = ("seed", "sorting_file", "remove_n", "keep_lowest_n")
# How many points of test accuracy a removal may cost and still count as "removable".
REMOVABLE_TOLERANCE = 0.5


@dataclasses.dataclass
class Curve:
    """Mean and std (ddof 1; 0 for one run) over seeds of the final test accuracy at each x
    (numbers removed, or window starts), and how many seeds the runs have."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    seeds: int


@dataclasses.dataclass
class RemovalCurves:
    dataset: str
    n: int                          # the full training set's size
    full: Optional[float]           # mean accuracy of the full-set runs (None: no such run)
    full_runs: int
    selected: dict                  # sorting file name -> Curve over remove_n
    random: Optional[Curve]         # over remove_n

    def percent(self, removed):
        return 100.0 * np.asarray(removed) / self.n


def finished_runs(frame, what):
    """The finished runs of ``frame``; a UsageError when none is, or when they differ in a
    flag other than the removal axes (REMOVAL_AXES)."""
    done = frame[frame["finished"]]
    if done.empty:
        raise UsageError(f"none of the {len(frame)} runs is finished, so there is no {what} to "
                         "draw; check the 'problem' column of collect_results.py (and its "
                         "--epochs)")
    mixed = [c for c in done.columns
             if c in flag_columns(done) and c not in REMOVAL_AXES
             and done[c].nunique(dropna=False) > 1]
    if mixed:
        column = mixed[0]
        values = ", ".join(str(v) for v in sorted(done[column].astype(str).unique()))
        raise UsageError(f"the runs mix experiments ({column} takes {values}); pick one with "
                         f"--input_fname_args {column} VALUE")
    return done


def dataset_size(frame):
    """The full training set's size: ``n_train + remove_n`` of a run whose removal window did
    not run past the end (true of every run with ``n_train > keep_lowest_n``)."""
    whole = frame[frame["n_train"] > frame["keep_lowest_n"]]
    return int((whole["n_train"] + whole["remove_n"]).max())


def mean_std(rows, by):
    """The Curve of final_test_acc over the values of the column ``by`` (sorted)."""
    stats = rows.groupby(by)["final_test_acc"].agg(["mean", "std"]).fillna({"std": 0.0})
    return Curve(stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].to_numpy(),
                 int(rows["seed"].nunique()))


def full_runs(done):
    """The runs that train on the whole training set (nothing removed)."""
    return done[(done["remove_n"] == 0) & (done["keep_lowest_n"] <= 0)]


def removal_curves(frame):
    """The RemovalCurves of one table (one dataset, one experiment)."""
    done = finished_runs(frame, "removal curve")
    selected = done[(done["keep_lowest_n"] == 0) & (done["sorting_file"] != "none")]
    random = done[done["keep_lowest_n"] < 0]
    if selected.empty and random.empty:
        raise UsageError(f"none of the {len(done)} finished runs removes examples by a sorting "
                         "file (--keep_lowest_n 0 --sorting_file NAME) or at random "
                         "(--keep_lowest_n -1)")
    full = full_runs(done)
    return RemovalCurves(
        dataset=str(done["dataset"].iloc[0]), n=dataset_size(done),
        full=float(full["final_test_acc"].mean()) if len(full) else None, full_runs=len(full),
        selected={name: mean_std(rows, "remove_n") for name, rows in selected.groupby("sorting_file")},
        random=mean_std(random, "remove_n") if len(random) else None)


def removable_percent(percents, means, full, tolerance=REMOVABLE_TOLERANCE):
    """The largest of ``percents`` whose mean accuracy is at least ``full - tolerance``
    (0 when none is; nan without a full-set accuracy). Each percent is judged on its own:
    a larger removal that happens to score well counts even if a smaller one did not."""
    if full is None:
        return float("nan")
    ok = np.asarray(percents)[np.asarray(means) >= full - tolerance]
    return float(ok.max()) if ok.size else 0.0


def removal_measures(curves, suffix=""):
    """{key: value} of the measured lines of one table: ``test_acc[selected@<p>]`` (or
    ``selected:<sorting file>`` when the table holds several), ``test_acc[random@<p>]``,
    ``removable_percent`` (``[<sorting file>]`` when several); every key + ``suffix``."""
    measures = {}
    several = len(curves.selected) > 1
    for name, curve in curves.selected.items():
        which = f"selected:{name}" if several else "selected"
        for p, mean in zip(curves.percent(curve.x), curve.mean):
            measures[f"test_acc[{which}@{int(round(p))}]{suffix}"] = mean
    if curves.random is not None:
        for p, mean in zip(curves.percent(curves.random.x), curves.random.mean):
            measures[f"test_acc[random@{int(round(p))}]{suffix}"] = mean
    for name, curve in curves.selected.items():
        key = f"removable_percent[{name}]" if several else "removable_percent"
        measures[key + suffix] = removable_percent(curves.percent(curve.x), curve.mean, curves.full)
    return measures


@dataclasses.dataclass
class WindowCurves:
    dataset: str
    n: int
    remove_n: int
    windows: dict                   # sorting file name -> Curve over keep_lowest_n (the start)
    random: Optional[np.ndarray]    # final accuracies of random removal of remove_n
    full: Optional[float]
    full_runs: int


def window_curves(frame, remove_n):
    """Windows of ``remove_n`` removed examples at two or more starts in the sorted order."""
    done = finished_runs(frame, "window figure")
    rows = done[done["remove_n"] == remove_n]
    windows = rows[(rows["keep_lowest_n"] >= 0) & (rows["sorting_file"] != "none")]
    if windows.empty:
        starts = sorted(done["remove_n"].unique().tolist())
        raise UsageError(f"no finished run removes a window of --remove_n {remove_n} from a "
                         f"sorting file; the runs remove {starts}")
    starts = sorted(windows["keep_lowest_n"].unique().tolist())
    if len(starts) < 2:  # one point on an axis of no width says nothing about where
        raise UsageError(f"the finished runs remove a window of --remove_n {remove_n} at one start "
                         f"only (--keep_lowest_n {starts[0]}); the window figure needs two or more "
                         "starts: train runs at other --keep_lowest_n values")
    random = rows[rows["keep_lowest_n"] < 0]["final_test_acc"].to_numpy()
    full = full_runs(done)
    return WindowCurves(
        dataset=str(done["dataset"].iloc[0]), n=dataset_size(done), remove_n=remove_n,
        windows={name: mean_std(group, "keep_lowest_n")
                 for name, group in windows.groupby("sorting_file")},
        random=random if random.size else None,
        full=float(full["final_test_acc"].mean()) if len(full) else None, full_runs=len(full))


def _stem(name):
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return base[:-4] if base.endswith(".pkl") else base


def window_count_points(windows, sorted_counts, counts_name):
    """``(mean count, mean accuracy)`` per window start of WindowCurves ``windows``: the mean
    forgetting count of the examples each window removes (``sorted_counts`` easiest first,
    from the sorting file named ``counts_name``) and the window's mean test accuracy over
    seeds. The windows must have been removed from that very sorting file (same name)."""
    names = list(windows.windows)
    if len(names) > 1:
        raise UsageError(f"the windows come from {len(names)} sorting files ({', '.join(names)}); "
                         "keep one with --input_fname_args sorting_file NAME")
    if _stem(names[0]) != _stem(counts_name):
        raise UsageError(f"the windows were removed by sorting file {names[0]}, but --sorting_file "
                         f"is {counts_name}; give that sorting file")
    curve = windows.windows[names[0]]
    return window_mean_counts(sorted_counts, curve.x, windows.remove_n), curve.mean
