#!/usr/bin/env python
"""Item 4 of the benchmark issue: ``order_examples_by_forgetting.py`` over R runs of
n examples x E epochs (default 5 x 50,000 x 200), wall time and peak memory, against the
floor of just unpickling the same files one after another.

Synthetic stats files in the legacy layout are generated once and cached under
``--cache`` (default /tmp/forgetting_bench_stats; ~200 MB per file at 50,000 x 200):

* ``int64_keys``: example ids as ``numpy.int64`` keys, written by ``pickle.dump`` of the
  dict, as the original scripts wrote them;
* ``int_keys``: plain int keys, as this project's training scripts write them.

Accuracies follow a per-example learning curve with random flips, so forgetting counts
spread over 0..~60 and some examples are never learned.

Each measurement runs in a fresh Python (``subprocess``), its peak memory read from the
child's own VmHWM (see benchmarks/_common.py for why not ru_maxrss):
* floor, gc on: plain ``pickle.load`` of each file in turn (what a notebook does);
* floor, gc off: the same with the cyclic GC disabled (the fastest single-core unpickle);
* one file: loading only the first file, for the memory target;
* ordering: the script itself, forgetting counts only, then with --output_dir_MLI.
"""
import argparse
import os
import pickle
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, run_measured, spread  # noqa: E402

from forgetting.files import stats_pickle  # noqa: E402
from forgetting.files.stats_log import record_dtype  # noqa: E402

SCRIPT = os.path.join(REPO, "order_examples_by_forgetting.py")
NAME = ("dataset_cifar10__data_augmentation_False__cutout_False__seed_{seed}__sorting_file_none__"
        "remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_0__"
        "noise_percent_pixels_0__noise_std_pixels_0__stats_dict.pkl")


def synthetic_records(n, epochs, seed, batch_size=128):
    """One run's log records: learning curves with random forgetting."""
    rng = np.random.default_rng(seed)
    n_batches = -(-n // batch_size)
    records = np.zeros(epochs, dtype=record_dtype(n, n_batches))
    speed = rng.exponential(20.0, n)                      # epochs to learn, per example
    t = np.arange(epochs)[:, None]
    p_correct = 1 - np.exp(-(t + 1) / speed[None, :])
    p_correct[:, rng.random(n) < 0.01] = 0.0              # never learned
    acc = rng.random((epochs, n)) < p_correct
    records["acc"] = acc
    records["loss"] = (rng.exponential(1.0, (epochs, n)) * (2 - acc)).astype(np.float32)
    records["margin"] = rng.standard_normal((epochs, n)) + acc
    records["train_acc"] = rng.random((epochs, n_batches)) * 100
    records["test_acc"] = rng.random(epochs) * 100
    return records


def generate(cache, runs, n, epochs, layouts=("int64_keys", "int_keys")):
    """Paths of the input directories, generating whatever is missing."""
    dirs = {}
    for layout in layouts:
        directory = os.path.join(cache, f"{layout}_{runs}x{n}x{epochs}")
        dirs[layout] = directory
        os.makedirs(directory, exist_ok=True)
        for seed in range(1, runs + 1):
            path = os.path.join(directory, NAME.format(seed=seed))
            if os.path.exists(path):
                continue
            records = synthetic_records(n, epochs, seed)
            ids = np.arange(n, dtype=np.int64)
            tmp = path + ".part"
            with open(tmp, "wb") as handle:
                if layout == "int_keys":
                    stats_pickle.encode_stats_pickle(ids, records, handle.write)
                else:
                    stats = stats_pickle.build_stats_dict(ids, records)
                    stats = {(k if isinstance(k, str) else np.int64(k)): v for k, v in stats.items()}
                    pickle.dump(stats, handle)
                    del stats
            os.replace(tmp, path)
            print(f"  generated {directory}/...seed_{seed}...stats_dict.pkl "
                  f"({os.path.getsize(path) / 2**20:.0f} MiB)", flush=True)
    return dirs


LOADER = """
import gc, pickle, sys, time
import numpy  # the ordering needs it too (and unpickling numpy.int64 keys imports it)
if sys.argv[1] == 'off':
    gc.disable()
started = time.perf_counter()
for path in sys.argv[2:]:
    with open(path, 'rb') as handle:
        stats = pickle.load(handle)
    del stats
print(time.perf_counter() - started)
"""


def measure(directory, epochs, repeats):
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith("stats_dict.pkl"))
    out = tempfile.mkdtemp(prefix="bench_order_")
    rows = {}
    try:
        cases = {
            "floor, plain pickle.load, gc on": [sys.executable, "-c", LOADER, "on", *files],
            "floor, plain pickle.load, gc off": [sys.executable, "-c", LOADER, "off", *files],
            "one file, plain pickle.load, gc off": [sys.executable, "-c", LOADER, "off", files[0]],
            "order_examples_by_forgetting.py": [
                sys.executable, SCRIPT, "--input_dir", directory, "--output_dir", out,
                "--output_name", "order", "--epochs", str(epochs)],
            "order_examples_by_forgetting.py + MLI": [
                sys.executable, SCRIPT, "--input_dir", directory, "--output_dir", out,
                "--output_name", "order", "--epochs", str(epochs), "--output_dir_MLI", out],
        }
        for _ in range(repeats):   # interleaved, so load from other processes hits all alike
            for name, argv in cases.items():
                seconds, peak, _ = run_measured(argv, cwd=REPO)
                rows.setdefault(name, []).append((seconds, peak))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return len(files), rows


BASELINE = [sys.executable, "-c", "import numpy, pickle, gc"]


def report(layout, n_files, rows, baseline_mib):
    print(f"\n{layout}: {n_files} files (wall seconds: median, min-max; peak RSS MiB: median)")
    med = {name: (median([s for s, _ in v]), median([p for _, p in v])) for name, v in rows.items()}
    for name, values in rows.items():
        secs = [s for s, _ in values]
        print(f"  {name:42s} {med[name][0]:7.2f} s ({spread(secs)})  peak {med[name][1]:7.0f} MiB", flush=True)
    floor = med["floor, plain pickle.load, gc off"][0]
    floor_on = med["floor, plain pickle.load, gc on"][0]
    one_file = med["one file, plain pickle.load, gc off"][1]
    for name in ("order_examples_by_forgetting.py", "order_examples_by_forgetting.py + MLI"):
        seconds, peak = med[name]
        ratio = seconds / floor
        print(f"  {name}: {ratio:.2f}x the gc-off floor, {seconds / floor_on:.2f}x the gc-on floor "
              f"(target <= 1.25x: {'met' if ratio <= 1.25 else 'MISSED'}); peak {peak:.0f} MiB vs one "
              f"loaded file {one_file:.0f} MiB (the bare interpreter with numpy: {baseline_mib:.0f} MiB)",
              flush=True)
    return med


def scale_parser(description, repeats):
    """The flags of the benchmarks over synthetic stats files (this one, scores_at_scale.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="2 runs x 5,000 x 50 (smoke test)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--cache", default="/tmp/forgetting_bench_stats",
                        help="where the synthetic stats files are kept between runs")
    return parser


def parse_scale_args(parser, argv):
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.n, args.epochs, args.repeats = 2, 5000, 50, 1
    return args


def main(argv=None):
    args = parse_scale_args(scale_parser(__doc__.split("\n\n")[0], repeats=2), argv)
    header(f"ordering at scale (item 4): {args.runs} runs x {args.n} examples x {args.epochs} epochs")
    dirs = generate(args.cache, args.runs, args.n, args.epochs)
    _, baseline, _ = run_measured(BASELINE)
    for layout, directory in dirs.items():
        n_files, rows = measure(directory, args.epochs, args.repeats)
        report(layout, n_files, rows, baseline)


if __name__ == "__main__":
    main()
