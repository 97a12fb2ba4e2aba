"""The paper's figures from your own runs, as matplotlib Figures (Agg: no display needed).

- ``histogram_figure``: Figure 1, the fraction of examples per number of forgetting events,
  from the ``'forgetting counts'`` of one or more sorting files;
- ``removal_figure``: Figures 5 left / 6, test accuracy vs the percentage of the training
  set removed, "selected" (``--keep_lowest_n 0`` with a sorting file: the least forgotten
  removed first) against "random" (``--keep_lowest_n -1``), mean over seeds with a +-1 std
  band, the full training set's accuracy as a reference line;
- ``window_figure``: Figure 5 right, test accuracy vs where a window of ``remove_n``
  removed examples starts in the sorted order (two starts at least), random removal of as
  many as a band.

The tables are those of ``forgetting.sweep.results`` (one row per run); only finished runs
are drawn. Input that cannot make the figure is a UsageError naming the fix.
"""
import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from forgetting.errors import UsageError  # noqa: E402
from forgetting.files import atomic, safe_pickle  # noqa: E402
from forgetting.sweep.results import flag_columns  # noqa: E402

FORMATS = ("png", "pdf", "svg")
# Flags that a removal figure plots against or averages over; every other flag must have
# one value, or the table mixes experiments.
_REMOVAL_AXES = ("seed", "sorting_file", "remove_n", "keep_lowest_n")
# One colour per sorting file's curve, never random removal's orange.
_SELECTED = ("tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink")
_RANDOM, _FULL = "tab:orange", "0.35"


def _axes(title, xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _legend_below(fig, ax):
    """The legend under the axes, where it can hide no data."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=9,
               frameon=False)


def save_figure(fig, path):
    """Write ``fig`` atomically; the extension of ``path`` picks the format (FORMATS)."""
    kind = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if kind not in FORMATS:
        raise UsageError(f"--output {path}: the extension picks the format; use one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    try:
        with atomic.atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=kind, dpi=150)
    except OSError as err:
        raise UsageError(f"cannot write --output {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)


# Figure 1 ------------------------------------------------------------------------------

def histogram_figure(series, max_events=30):
    """Figure 1 from ``series``: a list of ``(label, counts)``, counts being one sorting
    file's forgetting events per example (non-negative ints).

    Examples never learned count ``--epochs`` events per run, far right of everything else
    (1,000 for 5 runs of 200 epochs), so the bars stop at ``max_events`` and the last bar
    holds every example with that many or more.
    """
    top = max(int(counts.max()) for _, counts in series)
    cap = min(max_events, top)
    xlabel = "forgetting events (summed over the runs in the sorting file)"
    if cap < top:
        xlabel += f"; last bar: {cap} or more"
    fig, ax = _axes("Forgetting events per training example", xlabel, "fraction of examples")
    width = 0.8 / len(series)
    for i, (label, counts) in enumerate(series):
        fractions = np.bincount(np.minimum(counts, cap), minlength=cap + 1) / len(counts)
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(np.arange(cap + 1) + offset, fractions, width=width,
               label=f"{label}: {len(counts):,} examples, {100 * fractions[0]:.1f}% "
                     f"unforgettable ({int((counts == 0).sum()):,})")
    ax.set_xlim(-0.6, cap + 0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_below(fig, ax)
    return fig


def load_counts(path, load):
    """The forgetting counts of the sorting file ``path`` through the restricted ``load``."""
    content = load(path)
    if not isinstance(content, dict) or "forgetting counts" not in content:
        keys = ", ".join(repr(k) for k in content) if isinstance(content, dict) else "no dict"
        raise UsageError(f"{path} holds no 'forgetting counts' ({keys}); give a sorting file "
                         "written by order_examples_by_forgetting.py")
    try:
        counts = safe_pickle.as_numbers(content["forgetting counts"])
    except (TypeError, ValueError, OverflowError):
        counts = None
    if counts is None or counts.size == 0 or counts.dtype.kind not in "iu" or counts.min() < 0:
        raise UsageError(f"{path}: its 'forgetting counts' are not non-negative whole numbers; "
                         "give a sorting file written by order_examples_by_forgetting.py")
    n_ids = len(content["indices"]) if hasattr(content.get("indices"), "__len__") else None
    if n_ids is not None and n_ids != counts.size:  # one count per id, or the file is broken
        raise UsageError(f"{path}: its 'forgetting counts' hold {counts.size} values for {n_ids} "
                         "ids; re-create it with order_examples_by_forgetting.py")
    return counts


# Figures 5 and 6 -------------------------------------------------------------------------

def _finished(frame, what):
    done = frame[frame["finished"]]
    if done.empty:
        raise UsageError(f"none of the {len(frame)} runs is finished, so there is no {what} to "
                         "draw; check the 'problem' column of collect_results.py (and its "
                         "--epochs)")
    mixed = [c for c in done.columns
             if c in flag_columns(done) and c not in _REMOVAL_AXES
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


def _mean_std(rows, by):
    """(values of ``by``, mean, std) of final_test_acc per value (std 0 for a single run)."""
    stats = rows.groupby(by)["final_test_acc"].agg(["mean", "std"]).fillna({"std": 0.0})
    return stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].to_numpy()


def _band(ax, x, mean, std, colour, label):
    """The mean as a line with markers, and a +-1 std band in the same colour."""
    ax.plot(x, mean, "o-", color=colour, label=label, markersize=4)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def _seeds(rows):
    n = rows["seed"].nunique()
    return f"{n} seed{'s' if n != 1 else ''}"


def _full_data_line(ax, done, n):
    full = done[(done["remove_n"] == 0) & (done["keep_lowest_n"] <= 0)]
    if full.empty:
        return
    ax.axhline(full["final_test_acc"].mean(), color=_FULL, linestyle="--", linewidth=1,
               label=f"all {n:,} examples ({len(full)} runs)")


def removal_figure(frame):
    """Figures 5 left / 6 from a results table (``forgetting.sweep.results``)."""
    done = _finished(frame, "removal curve")
    selected = done[(done["keep_lowest_n"] == 0) & (done["sorting_file"] != "none")]
    random = done[done["keep_lowest_n"] < 0]
    if selected.empty and random.empty:
        raise UsageError(f"none of the {len(done)} finished runs removes examples by a sorting "
                         "file (--keep_lowest_n 0 --sorting_file NAME) or at random "
                         "(--keep_lowest_n -1)")
    n = dataset_size(done)
    dataset = done["dataset"].iloc[0]
    fig, ax = _axes(f"{dataset}: test accuracy after removing training examples",
                    f"training examples removed (% of {n:,})", "test accuracy (%)")
    for i, (name, rows) in enumerate(selected.groupby("sorting_file")):
        x, mean, std = _mean_std(rows, "remove_n")
        _band(ax, 100 * x / n, mean, std, _SELECTED[i % len(_SELECTED)],
              f"selected: easiest first in {name} ({_seeds(rows)}, ±1 std)")
    if not random.empty:
        x, mean, std = _mean_std(random, "remove_n")
        _band(ax, 100 * x / n, mean, std, _RANDOM, f"random ({_seeds(random)}, ±1 std)")
    _full_data_line(ax, done, n)
    _legend_below(fig, ax)
    return fig


def window_figure(frame, remove_n):
    """Figure 5 right: windows of ``remove_n`` removed examples at several starts in the
    sorted order, against random removal of ``remove_n`` (a band)."""
    done = _finished(frame, "window figure")
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
    n = dataset_size(done)
    dataset = done["dataset"].iloc[0]
    fig, ax = _axes(f"{dataset}: removing a window of {remove_n:,} examples "
                    f"({100 * remove_n / n:.0f}% of {n:,})",
                    "start of the removed window in the sorted order (% of the training set,\n"
                    "easiest first)", "test accuracy (%)")
    for i, (name, group) in enumerate(windows.groupby("sorting_file")):
        x, mean, std = _mean_std(group, "keep_lowest_n")
        _band(ax, 100 * x / n, mean, std, _SELECTED[i % len(_SELECTED)],
              f"window in {name} ({_seeds(group)}, ±1 std)")
    random = rows[rows["keep_lowest_n"] < 0]["final_test_acc"]
    if not random.empty:
        mean, std = random.mean(), (random.std() if len(random) > 1 else 0.0)
        ax.axhline(mean, color=_RANDOM, linewidth=1.5)
        ax.axhspan(mean - std, mean + std, color=_RANDOM, alpha=0.2, linewidth=0,
                   label=f"random removal of {remove_n:,} ({len(random)} runs, ±1 std)")
    _full_data_line(ax, done, n)
    _legend_below(fig, ax)
    return fig
