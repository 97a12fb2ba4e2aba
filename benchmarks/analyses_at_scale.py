#!/usr/bin/env python
"""The statistics subcommands of plot_figures.py (first_learning, margin, seeds, epoch_budget,
cross_arch: docs/analyses.md) over R runs of n examples x E epochs (default 5 x 50,000 x 200),
wall time and peak memory, against order_examples_by_forgetting.py on the same runs. Target:
each analysis at most 1.5x the ordering script (cross_arch reads two selections, so against
twice the ordering script: here the reference runs are the same files).

The synthetic stats files are ordering_at_scale.py's (``int_keys``: the training scripts'
layout), generated once and cached under ``--cache``. Each measurement runs in a fresh Python
(``subprocess``), the cases interleaved so that load from other processes hits them alike.
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, run_measured, spread  # noqa: E402
from ordering_at_scale import generate, parse_scale_args, scale_parser  # noqa: E402

ORDER = os.path.join(REPO, "order_examples_by_forgetting.py")
PLOT = os.path.join(REPO, "plot_figures.py")
TARGET = 1.5


def cases(directory, epochs, out):
    """{name: (argv, how many ordering runs it is compared with)}."""
    budgets = sorted({max(1, epochs * k // 8) for k in (1, 2, 3, 4, 6)})
    common = ["--input_dir", directory, "--epochs", str(epochs)]
    found = {"order_examples_by_forgetting.py": (
        [sys.executable, ORDER, *common, "--output_dir", out, "--output_name", "order"], None)}
    extra = {"first_learning": [], "margin": [], "seeds": [],
             "epoch_budget": ["--budgets", *map(str, budgets)],
             "cross_arch": ["--reference_dir", directory, "--reference_epochs", str(epochs)]}
    for name, flags in extra.items():
        argv = [sys.executable, PLOT, name, *common, *flags, "--output",
                os.path.join(out, f"{name}.png")]
        found[f"plot_figures.py {name}"] = (argv, 2 if name == "cross_arch" else 1)
    return found


def main(argv=None):
    args = parse_scale_args(scale_parser(__doc__.split("\n\n")[0], repeats=1), argv)
    header(f"analyses at scale: {args.runs} runs x {args.n} examples x {args.epochs} epochs")
    directory = generate(args.cache, args.runs, args.n, args.epochs,
                         layouts=("int_keys",))["int_keys"]
    out = tempfile.mkdtemp(prefix="bench_analyses_")
    rows = {}
    try:
        measured = cases(directory, args.epochs, out)
        for _ in range(args.repeats):
            for name, (command, _) in measured.items():
                seconds, peak, _ = run_measured(command, cwd=REPO)
                rows.setdefault(name, []).append((seconds, peak))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"\n{args.runs} files (wall seconds: median, min-max; peak RSS MiB: median)")
    med = {name: (median([s for s, _ in v]), median([p for _, p in v])) for name, v in rows.items()}
    for name, values in rows.items():
        print(f"  {name:36s} {med[name][0]:7.2f} s ({spread([s for s, _ in values])})  "
              f"peak {med[name][1]:6.0f} MiB", flush=True)
    order = med["order_examples_by_forgetting.py"][0]
    for name, (_, times) in measured.items():
        if times is None:
            continue
        ratio = med[name][0] / (order * times)
        against = "the ordering script" if times == 1 else f"{times}x the ordering script"
        print(f"  {name}: {ratio:.2f}x {against} (target <= {TARGET}x: "
              f"{'met' if ratio <= TARGET else 'MISSED'})", flush=True)


if __name__ == "__main__":
    main()
