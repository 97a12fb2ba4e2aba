"""The paper's figures from your own runs, as matplotlib Figures (Agg: no display needed).

- ``histogram_figure``: Figure 1, the fraction of examples per number of forgetting events,
  from the ``'forgetting counts'`` of one or more sorting files;
- ``removal_figure``: Figures 5 left / 6, test accuracy vs the percentage of the training
  set removed, "selected" (``--keep_lowest_n 0`` with a sorting file: the least forgotten
  removed first) against "random" (``--keep_lowest_n -1``), mean over seeds with a +-1 std
  band, the full training set's accuracy as a reference line; or, for several tables (one
  data set each) or on request, the test error increase over each full training set;
- ``window_figure``: Figure 5 right, test accuracy vs where a window of ``remove_n``
  removed examples starts in the sorted order, or the window's mean forgetting count (two
  windows at least), random removal of as many as a band.

The noise figure (Fig 3) is in ``noise_figure``, the image gallery in ``gallery``. The tables
are those of ``forgetting.analysis.results`` (one row per run); only finished runs are drawn
(``forgetting.analysis.removal`` computes the curves). Input that cannot make the figure is a
UsageError naming the fix.
"""
import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from forgetting.errors import UsageError  # noqa: E402
from forgetting.files import atomic  # noqa: E402
from forgetting.analysis import counts as count_stats  # noqa: E402
from forgetting.analysis import removal  # noqa: E402

FORMATS = ("png", "pdf", "svg")
# One colour per sorting file's (or data set's) curve, never random removal's orange.
_SELECTED = ("tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink")
_RANDOM, _FULL = "tab:orange", "0.35"
# Series in a histogram beyond which side-by-side bars get too thin to read: lines instead.
_MAX_BAR_SERIES = 2


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
    holds every example with that many or more. Up to two series are side-by-side bars; more
    (the pixel-noise figure: one per noise std) are lines with markers, which stay readable.
    """
    top = max(int(counts.max()) for _, counts in series)
    cap = min(max_events, top)
    bars = len(series) <= _MAX_BAR_SERIES
    xlabel = "forgetting events (summed over the runs in the sorting file)"
    if cap < top:
        xlabel += f"; last {'bar' if bars else 'point'}: {cap} or more"
    fig, ax = _axes("Forgetting events per training example", xlabel, "fraction of examples")
    width = 0.8 / len(series)
    for i, (label, counts) in enumerate(series):
        fractions = count_stats.capped_fractions(counts, cap)
        text = (f"{label}: {len(counts):,} examples, "
                f"{count_stats.unforgettable_percent(counts):.1f}% unforgettable "
                f"({int((counts == 0).sum()):,}), mean {count_stats.mean_count(counts):.2f}")
        if bars:
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar(np.arange(cap + 1) + offset, fractions, width=width, label=text)
        else:
            ax.plot(np.arange(cap + 1), fractions, "o-", markersize=3, linewidth=1.2,
                    color=plt.get_cmap("viridis")(i / (len(series) - 1) * 0.9), label=text)
    ax.set_xlim(-0.6, cap + 0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_below(fig, ax)
    return fig


def load_counts(path, load):
    """The forgetting counts of the sorting file ``path`` through the restricted ``load``."""
    return count_stats.load_sorting_counts(path, load)[1]


# Figures 5 and 6 -------------------------------------------------------------------------

def _band(ax, x, mean, std, colour, label, style="o-"):
    """The mean as a line with markers, and a +-1 std band in the same colour."""
    ax.plot(x, mean, style, color=colour, label=label, markersize=4)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def _runs(n):
    return f"{n} run{'s' if n != 1 else ''}"


def _seeds(curve):
    return f"{curve.seeds} seed{'s' if curve.seeds != 1 else ''}"


def _full_data_line(ax, curves):
    if curves.full is not None:
        ax.axhline(curves.full, color=_FULL, linestyle="--", linewidth=1,
                   label=f"all {curves.n:,} examples ({_runs(curves.full_runs)})")


def removal_figure(tables, error_increase=False):
    """Figures 5 left / 6 from results tables (``forgetting.analysis.results``).

    ``tables``: one table, or a list of ``(label, table)``, one data set each. One table
    without ``error_increase`` draws test accuracy (Fig 5 left); otherwise y is each
    table's test error increase over its own full training set (its mean accuracy on all
    examples minus the curve's: Fig 6), one colour per table, random removal dashed.
    """
    if not isinstance(tables, list):
        tables = [(None, tables)]
    curves = [(label, removal.removal_curves(table)) for label, table in tables]
    if len(curves) == 1 and not error_increase:
        return _accuracy_removal_figure(curves[0][1])
    lacking = [label or c.dataset for label, c in curves if c.full is None]
    if lacking:
        raise UsageError(f"{lacking[0]}: no finished run trains on the full training set, so the "
                         "error increase has no reference; add runs with --remove_n 0")
    title = ("test error increase after removing training examples"
             if len(curves) > 1 else f"{curves[0][1].dataset}: test error increase after "
                                     "removing training examples")
    fig, ax = _axes(title, "training examples removed (% of each training set)",
                    "test error increase over the full set (points)")
    colour = 0
    for label, c in curves:
        name = f"{label}: " if label is not None else ""
        for sorting_file, curve in c.selected.items():
            mine = _SELECTED[colour % len(_SELECTED)]
            colour += 1
            what = "selected" if len(c.selected) == 1 else f"selected by {sorting_file}"
            _band(ax, c.percent(curve.x), c.full - curve.mean, curve.std, mine,
                  f"{name}{what}, easiest first ({_seeds(curve)}, ±1 std)")
        if c.random is not None:
            if not c.selected:
                mine = _SELECTED[colour % len(_SELECTED)]
                colour += 1
            _band(ax, c.percent(c.random.x), c.full - c.random.mean, c.random.std,
                  mine, f"{name}random ({_seeds(c.random)}, ±1 std)", style="s--")
    ax.axhline(0, color=_FULL, linewidth=1)
    _legend_below(fig, ax)
    return fig


def _accuracy_removal_figure(c):
    fig, ax = _axes(f"{c.dataset}: test accuracy after removing training examples",
                    f"training examples removed (% of {c.n:,})", "test accuracy (%)")
    for i, (name, curve) in enumerate(c.selected.items()):
        _band(ax, c.percent(curve.x), curve.mean, curve.std, _SELECTED[i % len(_SELECTED)],
              f"selected: easiest first in {name} ({_seeds(curve)}, ±1 std)")
    if c.random is not None:
        _band(ax, c.percent(c.random.x), c.random.mean, c.random.std, _RANDOM,
              f"random ({_seeds(c.random)}, ±1 std)")
    _full_data_line(ax, c)
    _legend_below(fig, ax)
    return fig


def window_figure(frame, remove_n, sorted_counts=None, counts_name=None):
    """Figure 5 right: windows of ``remove_n`` removed examples at several starts in the
    sorted order, against random removal of ``remove_n`` (a band).

    x is where the window starts (percent of the training set), or, given the sorting file's
    ``sorted_counts`` (easiest first; ``counts_name`` its name for the axis), the mean
    forgetting count of the examples each window removes, as in the paper.
    """
    w = removal.window_curves(frame, remove_n)
    if sorted_counts is None:
        xlabel = ("start of the removed window in the sorted order (% of the training set,\n"
                  "easiest first)")
    else:
        xlabel = f"mean forgetting count of the removed examples ({counts_name})"
    fig, ax = _axes(f"{w.dataset}: removing a window of {remove_n:,} examples "
                    f"({100 * remove_n / w.n:.0f}% of {w.n:,})", xlabel, "test accuracy (%)")
    if sorted_counts is not None:  # one sorting file's windows, at their mean counts
        x, mean = removal.window_count_points(w, sorted_counts, counts_name)
        (name, curve), = w.windows.items()
        _band(ax, x, mean, curve.std, _SELECTED[0], f"window in {name} ({_seeds(curve)}, ±1 std)")
    for i, (name, curve) in enumerate(w.windows.items() if sorted_counts is None else ()):
        _band(ax, 100 * curve.x / w.n, curve.mean, curve.std, _SELECTED[i % len(_SELECTED)],
              f"window in {name} ({_seeds(curve)}, ±1 std)")
    if w.random is not None:
        mean = w.random.mean()
        std = w.random.std(ddof=1) if len(w.random) > 1 else 0.0
        ax.axhline(mean, color=_RANDOM, linewidth=1.5)
        ax.axhspan(mean - std, mean + std, color=_RANDOM, alpha=0.2, linewidth=0,
                   label=f"random removal of {remove_n:,} ({_runs(len(w.random))}, ±1 std)")
    _full_data_line(ax, w)
    _legend_below(fig, ax)
    return fig


# Figure 3 ------------------------------------------------------------------------------

def _fraction_bars(ax, groups, cap):
    """Side-by-side bars of each ``(label, counts, colour)`` group's capped fractions."""
    width = 0.8 / len(groups)
    for i, (label, counts, colour) in enumerate(groups):
        offset = (i - (len(groups) - 1) / 2) * width
        ax.bar(np.arange(cap + 1) + offset, count_stats.capped_fractions(counts, cap),
               width=width, color=colour,
               label=f"{label}: {len(counts):,} examples, {count_stats.unforgettable_percent(counts):.1f}% "
                     f"unforgettable, mean {count_stats.mean_count(counts):.2f}")
    ax.set_xlim(-0.6, cap + 0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.set_ylabel("fraction of the group's examples")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)


def noise_figure(noisy, clean, noisy_before=None, max_events=30):
    """Figure 3 from one noisy run's counts: left, the fraction of the flipped (``noisy``)
    and the unchanged (``clean``) examples per number of forgetting events; right (given
    ``noisy_before``, the flipped examples' counts in the same seed's run without noise), the
    flipped examples before and after their labels changed. The last bar holds ``max_events``
    or more."""
    groups = [noisy, clean] + ([noisy_before] if noisy_before is not None else [])
    top = max(int(g.max()) for g in groups)
    cap = min(max_events, top)
    xlabel = "forgetting events" + (f" (last bar: {cap} or more)" if cap < top else "")
    panels = 2 if noisy_before is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 4.6), layout="constrained",
                             squeeze=False)
    left = axes[0, 0]
    left.set_title("flipped vs unchanged labels", fontsize=11)
    _fraction_bars(left, [("flipped labels", noisy, "tab:red"),
                          ("unchanged labels", clean, "tab:blue")], cap)
    left.set_xlabel(xlabel)
    if noisy_before is not None:
        right = axes[0, 1]
        right.set_title("the flipped examples, before and after", fontsize=11)
        _fraction_bars(right, [("before (true labels)", noisy_before, "tab:gray"),
                               ("after (flipped labels)", noisy, "tab:red")], cap)
        right.set_xlabel(xlabel)
    fig.suptitle(f"Forgetting under label noise: {len(noisy):,} of {len(noisy) + len(clean):,} "
                 "labels flipped", fontsize=12)
    return fig
