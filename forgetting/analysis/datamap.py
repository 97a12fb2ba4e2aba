"""The dataset-cartography data map (Swayamdipta et al., EMNLP 2020, Figure 1): one point per
training example at (variability, confidence), coloured by correctness.

Regions as the paper reads them: top left (high confidence, low variability) easy-to-learn,
bottom left (low confidence, low variability) hard-to-learn (often mislabelled), right (high
variability) ambiguous. The values come from forgetting/scores/cartography.py, averaged over
runs; this module only draws them (plot_figures.py saves the figure).
"""
import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def datamap_figure(variability, confidence, correctness, title):
    """The data map as a matplotlib Figure. Inputs: float arrays (n,), one entry per example."""
    variability, confidence, correctness = map(np.asarray, (variability, confidence, correctness))
    fig, ax = plt.subplots(figsize=(7, 6))
    order = np.argsort(-correctness, kind="stable")  # the rarer, less correct points on top
    # Points scale down with n so 50,000 examples stay a cloud rather than a blot.
    size = float(np.clip(20000 / max(len(order), 1), 2.0, 20.0))
    points = ax.scatter(variability[order], confidence[order], c=correctness[order], s=size,
                        cmap="RdYlBu", vmin=0.0, vmax=1.0, alpha=0.7, linewidths=0)
    fig.colorbar(points, ax=ax, label="correctness (fraction of presentations correct)")
    ax.set_xlabel("variability (std of the probability of the label over presentations)")
    ax.set_ylabel("confidence (mean probability of the label)")
    ax.set_xlim(0, max(0.5, float(np.nanmax(variability, initial=0)) * 1.05))
    ax.set_ylim(0, 1)
    # The region names sit in the corners the regions fill, so they go under the points (a
    # lower zorder than the scatter's): a name never hides an example, the points show through.
    box = dict(boxstyle="round", facecolor="white", alpha=0.5, edgecolor="0.6")
    under = points.get_zorder() - 0.5
    ax.text(0.02, 0.97, "easy-to-learn", transform=ax.transAxes, va="top", bbox=box, zorder=under)
    ax.text(0.02, 0.03, "hard-to-learn", transform=ax.transAxes, va="bottom", bbox=box, zorder=under)
    ax.text(0.97, 0.5, "ambiguous", transform=ax.transAxes, ha="right", va="center", bbox=box,
            zorder=under)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
