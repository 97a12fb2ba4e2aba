"""The figures of the statistical analyses (forgetting/analysis/first_learning.py, margin.py,
stability.py, budgets.py), as matplotlib Figures (Agg: no display needed). They only draw:
the numbers come in computed.

``first_learning_figure``, ``margin_figure``, ``stability_figure`` and ``budget_figure`` draw
the figure of plot_figures.py's subcommand of that analysis from the analysis' result (a
notebook shows the returned Figure); the others are their parts.
"""
import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from forgetting.analysis.stability import split_half_sums  # noqa: E402

MAX_BINS = 60


def bin_edges(values, step=None, max_bins=MAX_BINS):
    """Edges for a histogram axis of ``values``. Values on a grid of spacing ``step`` (whole
    numbers: step 1, found here; a mean over R runs of whole numbers: 1/R, the caller's) get
    bins of equal numbers of grid points, each point inside a bin rather than on an edge, at
    most ``max_bins`` of them; other values ``max_bins`` equal bins."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if step is None and np.array_equal(values, np.round(values)):
        step = 1.0
    if step is None:
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, max_bins + 1)
    points = int(round((hi - lo) / step)) + 1
    per_bin = -(-points // max_bins)
    bins = -(-points // per_bin)
    return lo - step / 2 + per_bin * step * np.arange(bins + 1)


def histogram2d_figure(x, y, xlabel, ylabel, title, x_step=None):
    """A 2-D histogram of the points (x, y): the number of examples per cell on a log colour
    scale (most examples crowd a few cells), empty cells blank; ``x_step``: the spacing of the
    x values' grid (``bin_edges``)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    _histogram2d(fig, ax, x, y, x_step)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def _histogram2d(fig, ax, x, y, x_step=None):
    cells, x_edges, y_edges = np.histogram2d(x, y, bins=(bin_edges(x, x_step), bin_edges(y)))
    cells = np.ma.masked_equal(cells, 0)
    if cells.count():
        mesh = ax.pcolormesh(x_edges, y_edges, cells.T, cmap="viridis",
                             norm=LogNorm(vmin=1, vmax=max(float(cells.max()), 1.0)))
        fig.colorbar(mesh, ax=ax, label="examples")
    ax.grid(True, alpha=0.3)


def seeds_figure(matrix, labels, halves=None, title=""):
    """Left: the pairwise Pearson matrix of the runs' counts (``labels`` name the runs).
    Right, with ``halves`` = ``(first half's summed counts, second's, first half's labels)``:
    a 2-D histogram of one split's two sums, the diagonal dashed."""
    panels = 2 if halves is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 5.0), layout="constrained",
                             squeeze=False)
    ax = axes[0, 0]
    off = matrix[~np.eye(len(matrix), dtype=bool)]
    low = float(np.nanmin(off)) if off.size and not np.isnan(off).all() else 0.0
    image = ax.imshow(matrix, cmap="viridis", vmin=min(low, 0.999), vmax=1.0)
    fig.colorbar(image, ax=ax, label="Pearson correlation of the runs' counts")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    if len(matrix) <= 12:
        for (a, b), value in np.ndenumerate(matrix):
            ax.text(b, a, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < (low + 1) / 2 else "black")
    ax.set_title("pairwise", fontsize=10)
    if halves is not None:
        first, second, first_labels = halves
        ax = axes[0, 1]
        _histogram2d(fig, ax, first, second)
        top = float(max(first.max(), second.max())) if first.size else 1.0
        ax.plot([0, top], [0, top], "--", color="0.4", linewidth=1)
        ax.set_xlabel(f"counts summed over {', '.join(first_labels)}")
        ax.set_ylabel("counts summed over the other runs")
        ax.set_title("one split into halves", fontsize=10)
    fig.suptitle(title, fontsize=10)
    return fig


def curves_figure(x, curves, xlabel, title):
    """One line with markers per ``curves`` entry (label -> values at ``x``), y from 0 to 1
    (lower when a correlation is negative)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for (label, values), marker in zip(curves.items(), "osD^v<>"):
        ax.plot(x, values, marker=marker, label=label)
    low = min([0.0] + [float(np.nanmin(v)) for v in curves.values() if not np.isnan(v).all()])
    ax.set_ylim(low - 0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def _over(n_runs):
    return f"summed over {n_runs} runs" if n_runs > 1 else "one run"


def first_learning_figure(result, n_runs, epochs):
    """plot_figures.py first_learning's figure: the 2-D histogram of a ``FirstLearning``
    (``first_learning_over_runs`` of ``n_runs`` runs read for ``epochs`` presentations) over
    the examples learned in every run, its Spearman correlation in the title."""
    learned = result.learned
    x_label = "presentation at which first learned (1 = the first)"
    if n_runs > 1:
        x_label += f", mean over {n_runs} runs"
    return histogram2d_figure(
        result.presentation[learned], result.counts[learned], x_label,
        f"forgetting events ({_over(n_runs)})",
        f"First learning vs forgetting: {int(learned.sum())} examples, first {epochs} "
        f"presentations\nSpearman rank correlation {result.spearman():.3f}", x_step=1 / n_runs)


def margin_figure(result, n_runs, epochs):
    """plot_figures.py margin's figure (Fig. 2 left): the 2-D histogram of a ``Margins``
    (``margins_over_runs`` of ``n_runs`` runs, ``epochs`` presentations) over the examples
    forgotten at least once, its Spearman correlation in the title."""
    forgotten = result.forgotten
    return histogram2d_figure(
        result.events[forgotten], result.margin[forgotten],
        f"forgetting events ({_over(n_runs)}; runs that never learned it: 0)",
        "misclassification margin (mean margin at the forgetting events)",
        f"Forgetting vs misclassification margin: {int(forgotten.sum())} examples, first "
        f"{epochs} presentations\nSpearman rank correlation {result.spearman():.3f}")


def stability_figure(result, counts, labels, epochs):
    """plot_figures.py seeds' figure: the pairwise matrix of a ``Stability`` (``stability`` of
    the per-run ``counts`` (R, n), runs read for ``epochs`` presentations, named by
    ``labels``) and, when it measured split-half, the first split's two sums."""
    runs = len(counts)
    halves = None
    if result.split_half:
        first_half = result.splits[0]
        halves = (*split_half_sums(counts, first_half), [labels[i] for i in first_half])
    title = (f"Forgetting counts across {runs} runs ({counts.shape[1]} examples, first {epochs} "
             f"presentations): mean pairwise Pearson {result.pairwise['pearson']:.3f}")
    if result.split_half:
        title += f", split-half {result.split_half['pearson']:.3f}"
    return seeds_figure(result.matrix, labels, halves, title)


def budget_figure(agreement, budgets, epochs, n_runs):
    """plot_figures.py epoch_budget's figure (Fig. 7 left): ``budget_agreement``'s Spearman,
    Pearson, precision and recall against the ``budgets`` N, for ``n_runs`` runs read for
    ``epochs`` presentations."""
    curves = {"Spearman (the paper's Fig. 7 left)": [agreement[n].spearman for n in budgets],
              "Pearson": [agreement[n].pearson for n in budgets],
              "precision, unforgettable": [agreement[n].precision for n in budgets],
              "recall, unforgettable": [agreement[n].recall for n in budgets]}
    return curves_figure(
        budgets, {k: np.array(v) for k, v in curves.items()},
        "epochs N (counts over each run's first N presentations)",
        f"Counts after N epochs vs after all {epochs} ({n_runs} run(s))")
