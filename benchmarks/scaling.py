#!/usr/bin/env python
"""Item 5 of the benchmark issue: how the figures of items 1, 3 and 4 grow with the number
of examples and of epochs, three sizes each, printed as small tables.

* epoch overhead (item 1): MNIST real / bare per-epoch time at 3 training-set sizes;
* statistics at scale (item 3): blocked ms per epoch, final pickle, its size and load time,
  how far the legacy pickle trails, at 3 sizes of n (25 epochs) and of E (50,000 examples;
  stats_at_scale.py gives the 200-epoch point), simulated 1 s GPU epochs;
* ordering (item 4): one run's file, the ordering script against the plain-unpickle floor,
  at the same sizes.
"""
import argparse
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epoch_overhead  # noqa: E402
import ordering_at_scale  # noqa: E402
import stats_at_scale  # noqa: E402
from _common import header, median, run_measured  # noqa: E402


def overhead_table(sizes, epochs, rounds):
    print("\nepoch overhead, MNIST no dropout, 1 thread (median s/epoch; first epoch of each run not counted)")
    print(f"{'n':>7} | {'bare s':>7} | {'real s':>7} | {'ratio':>6}")
    torch.set_num_threads(1)
    argv = ["--dataset", "mnist", "--no_dropout", "--epochs", str(epochs), "--device", "cpu", "--threads", "1"]
    for n in sizes:
        data = epoch_overhead.mnist_data(n, 10000 * n // 60000)
        bare, real = [], []
        for _ in range(rounds):
            bare += epoch_overhead.bare_mnist(data, epochs)[1:]
            real += epoch_overhead.real_epochs(epoch_overhead.run_mnist, "load_mnist_family", data, argv)[0]
        print(f"{n:>7} | {median(bare):7.3f} | {median(real):7.3f} | {median(real) / median(bare):6.3f}", flush=True)


def stats_table(shapes, epoch_seconds):
    print(f"\nstatistics at scale, ResNet18 state, simulated {epoch_seconds} s GPU epochs")
    print(f"{'n':>7} x {'E':>4} | {'blocked ms/epoch (median)':>25} | {'+ final, avg ms':>15} | "
          f"{'final s':>7} | {'pickle MiB':>10} | {'load s':>6} | {'trail mean/max':>14} | {'child MiB':>9}")
    for n, epochs in shapes:
        f = stats_at_scale.run(n, epochs, epoch_seconds, quiet=True)
        print(f"{n:>7} x {epochs:>4} | {f['blocked_median_ms']:25.1f} | {f['blocked_avg_with_final_ms']:15.1f} | "
              f"{f['final_write_s']:7.2f} | {f['pickle_mib']:10.1f} | {f['load_s']:6.2f} | "
              f"{f['trail_mean']:6.1f} / {f['trail_max']:<5} | {f['peak_children_mib']:9.0f}", flush=True)


def ordering_table(shapes, cache):
    print("\nordering one run's file (int keys): wall s and peak MiB of each fresh process")
    print(f"{'n':>7} x {'E':>4} | {'floor s (gc off)':>16} | {'ordering s':>10} | {'ratio':>5} | "
          f"{'floor MiB':>9} | {'ordering MiB':>12}")
    out = tempfile.mkdtemp(prefix="bench_scaling_")
    try:
        for n, epochs in shapes:
            directory = ordering_at_scale.generate(cache, 1, n, epochs, ("int_keys",))["int_keys"]
            files = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith("stats_dict.pkl")]
            floor_s, floor_mib, _ = run_measured([sys.executable, "-c", ordering_at_scale.LOADER, "off", *files])
            order_s, order_mib, _ = run_measured([
                sys.executable, ordering_at_scale.SCRIPT, "--input_dir", directory, "--output_dir", out,
                "--output_name", "order", "--epochs", str(epochs)])
            print(f"{n:>7} x {epochs:>4} | {floor_s:16.2f} | {order_s:10.2f} | {order_s / floor_s:5.2f} | "
                  f"{floor_mib:9.0f} | {order_mib:12.0f}", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--cache", default="/tmp/forgetting_bench_stats")
    parser.add_argument("--only", choices=("overhead", "stats", "ordering"), action="append")
    args = parser.parse_args(argv)
    parts = args.only or ["overhead", "stats", "ordering"]
    header("scaling (item 5)" + (" --quick" if args.quick else ""))
    if args.quick:
        n_sizes, e_sizes, big_n, small_e = (1000, 2000, 4000), (5, 10, 20), 4000, 5
    else:
        n_sizes, e_sizes, big_n, small_e = (12500, 25000, 50000), (25, 50, 100), 50000, 25
    if "overhead" in parts:
        overhead_table((3000, 6000, 12000) if args.quick else (15000, 30000, 60000), 3, 1)
    shapes = [(n, small_e) for n in n_sizes] + [(big_n, e) for e in e_sizes if e != small_e]
    if "stats" in parts:
        stats_table(shapes, 0.05 if args.quick else 1.0)
    if "ordering" in parts:
        # ordering: 200 epochs as well (the stats runs above stop at 100 to save time)
        ordering_table(shapes + ([] if args.quick else [(big_n, 200)]), args.cache)


if __name__ == "__main__":
    main()
