"""The paper's Figure 4 (Sec. 4.2) from run_continual.py's runs, and the numbers behind it.

``load_continual_runs`` reads the finished runs' ``__tasks.csv`` tables (runs selected as
every reading tool selects them, files/run_selection.py); ``continual_figure`` draws one panel
per split and task order: each task's accuracy (on its whole partition, eval mode) against
the epoch, mean over seeds with a +-1 std band, the test accuracy dotted, and the task
boundaries as vertical lines. ``forgetting_table`` gives, per panel and task, how much
accuracy the task loses while the other one trains: its accuracy at the end of a block of
its own epochs minus its accuracy at the end of the other task's block that follows (and
minus its lowest accuracy during that block).
"""
import dataclasses
import os

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from forgetting.errors import UsageError  # noqa: E402
from forgetting.files.naming import TASK_NAMES, TASK_TABLE_SUFFIX  # noqa: E402
from forgetting.files.run_selection import check_one_experiment  # noqa: E402

SCRIPT = "run_continual.py"
# What the figure's panels and seeds vary; every other flag must be the same in all runs.
PANEL_FLAGS = ("split", "tasks")
_COLOURS = {"A": "tab:blue", "B": "tab:orange"}
_TASK_LABELS = {"random": {"A": "task A (random half)", "B": "task B (random half)"},
                "forgetting": {"A": "task A: f0 (never forgotten)",
                               "B": "task B: fN (forgotten at least once)"}}


@dataclasses.dataclass
class ContinualRun:
    """One finished run: its flags (from its record) and its per-epoch table (a DataFrame)."""

    name: str
    flags: dict
    table: object


def load_continual_runs(runs, read_table):
    """The finished run_continual.py runs among ``runs`` (``FoundRun``s) with their tables
    (``read_table(path)``: a DataFrame); refuses a selection with none, and runs that differ
    in a result-changing flag other than seed, split and tasks."""
    continual = [r for r in runs if r.record is not None and r.record.get("script") == SCRIPT]
    if not continual:
        raise UsageError(f"none of the {len(runs)} selected runs was made by {SCRIPT}; point "
                         "--input_dir at its --output_dir (or narrow --input_fname_args)")
    done = [r for r in continual if r.record.get("finished")]
    if not done:
        raise UsageError(f"none of the {len(continual)} {SCRIPT} runs is finished; continue them "
                         "with --resume")
    check_one_experiment([dataclasses.replace(r, flags={k: v for k, v in r.flags.items()
                                                         if k not in PANEL_FLAGS}) for r in done])
    loaded = []
    for run in done:
        path = run.path[:-len("__stats_dict.pkl")] + TASK_TABLE_SUFFIX
        try:
            table = read_table(path)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read {path} ({err}); rerun that run with --resume") from None
        if len(table) != run.record["epochs"]:
            raise UsageError(f"{path} has {len(table)} epochs, its run {run.record['epochs']}; "
                             "rerun that run with --resume")
        loaded.append(ContinualRun(os.path.basename(run.path), dict(run.flags), table))
    return loaded


def panels(runs):
    """``{(split, tasks): [ContinualRun, ...]}`` in a fixed order (random first, then by order)."""
    grouped = {}
    for run in runs:
        grouped.setdefault((run.flags["split"], run.flags["tasks"]), []).append(run)
    order = lambda key: (("random", "forgetting").index(key[0]), key[1])  # noqa: E731
    return {key: grouped[key] for key in sorted(grouped, key=order)}


def _accuracies(runs, task):
    """(epochs, mean, std) of ``acc_<task>`` over ``runs`` (std 0 for one run)."""
    values = np.stack([run.table[f"acc_{task}"].to_numpy(dtype=float) for run in runs])
    std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(values.shape[1])
    return np.arange(1, values.shape[1] + 1), values.mean(axis=0), std


def _title(split, tasks):
    what = "random split" if split == "random" else "split by forgetting (A = f0, B = fN)"
    return f"{what}, order {' → '.join(tasks)}"


def continual_figure(runs):
    """Figure 4: one panel per (split, tasks) of ``runs`` (``load_continual_runs``), a row
    per split and a column per task order."""
    groups = panels(runs)
    first = runs[0].flags
    per_task = first["epochs_per_task"]
    splits = list(dict.fromkeys(split for split, _ in groups))
    orders = sorted({tasks for _, tasks in groups})
    fig, axes = plt.subplots(len(splits), len(orders), figsize=(5.6 * len(orders),
                                                                4.2 * len(splits)),
                             sharey=True, layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for (split, tasks), rows in groups.items():
        ax = axes[splits.index(split)][orders.index(tasks)]
        ax.set_visible(True)
        n = len({run.flags["seed"] for run in rows})
        ax.set_title(f"{_title(split, tasks)}\n{n} seed{'s' if n != 1 else ''}, mean ± 1 std",
                     fontsize=10)
        for task in TASK_NAMES:
            x, mean, std = _accuracies(rows, task)
            ax.plot(x, mean, "-", color=_COLOURS[task], label=_TASK_LABELS[split][task])
            ax.fill_between(x, mean - std, mean + std, color=_COLOURS[task], alpha=0.25, linewidth=0)
        test = np.stack([run.table["test_acc"].to_numpy(dtype=float) for run in rows]).mean(axis=0)
        ax.plot(np.arange(1, len(test) + 1), test, ":", color="0.4", label="test set")
        for block, task in enumerate(tasks):
            if block:
                ax.axvline(block * per_task + 0.5, color="0.2", linestyle="--", linewidth=1)
            ax.text((block + 0.5) * per_task + 0.5, 1.0, f"training on {task}", ha="center",
                    va="top", fontsize=8, transform=ax.get_xaxis_transform())
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, len(tasks) * per_task + 0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.set_ylabel("accuracy on the task's examples (%)")
    fig.suptitle(f"{first['dataset']}: two tasks of {first['task_size']:,} examples, "
                 f"{per_task} epochs each (Toneva et al. 2019, Fig. 4)", fontsize=11)
    return fig


def _mean_std(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def forgetting_table(runs):
    """One dict per panel, task and block of the other task that follows a block of its own:
    ``split``, ``tasks``, ``task``, ``other``, ``trained_until``/``until`` (1-based epochs: the
    end of the task's block and of the other's that follows), and as ``(mean, std)`` over the
    seeds: ``before`` (the task's accuracy at the end of its block), ``after`` (at the end of
    the other's), ``lowest`` (its lowest during the other's block), ``lost`` (before - after)
    and ``lost_most`` (before - lowest); ``seeds``."""
    rows = []
    for (split, tasks), group in panels(runs).items():
        per_task = group[0].flags["epochs_per_task"]
        for block in range(1, len(tasks)):
            task, other = tasks[block - 1], tasks[block]
            if other == task:
                continue
            own_end, other_end = block * per_task, (block + 1) * per_task   # 1-based epochs
            accs = np.stack([run.table[f"acc_{task}"].to_numpy(dtype=float) for run in group])
            before, after = accs[:, own_end - 1], accs[:, other_end - 1]
            lowest = accs[:, own_end:other_end].min(axis=1)
            rows.append({"split": split, "tasks": tasks, "task": task, "other": other,
                         "trained_until": own_end, "until": other_end,
                         "before": _mean_std(before), "after": _mean_std(after),
                         "lowest": _mean_std(lowest), "lost": _mean_std(before - after),
                         "lost_most": _mean_std(before - lowest), "seeds": len(group)})
    return rows


def forgetting_lines(runs):
    """``forgetting_table`` as lines to print."""
    def pm(pair, unit=""):
        return f"{pair[0]:.1f} ± {pair[1]:.1f}{unit}"

    return [f"{r['split']} split, order {r['tasks']}: task {r['task']} {pm(r['before'], '%')} at "
            f"epoch {r['trained_until']} -> {pm(r['after'], '%')} at epoch {r['until']} (lowest "
            f"{pm(r['lowest'], '%')}) while task {r['other']} trained: lost {pm(r['lost'])} points "
            f"(at most {pm(r['lost_most'])}; {r['seeds']} seed{'s' if r['seeds'] != 1 else ''})"
            for r in forgetting_table(runs)]
