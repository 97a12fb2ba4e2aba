#!/usr/bin/env python
"""The paper's workflow in a couple of minutes on the bundled, offline MNIST digits.

1. train a few seeds on mnist_5k, recording every presentation;
2. count forgetting events across the seeds and sort the examples;
3. retrain without the unforgettable examples, and without as many random examples;
4. print the two against the full training set.
Everything goes through the real command-line scripts; files land in --output_dir.
"""
import argparse
import os
import pickle
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(script, *flags):
    """Run one of the project's scripts; return its stdout (stderr passes through)."""
    cmd = [sys.executable, os.path.join(HERE, script), *map(str, flags)]
    result = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE)
    if result.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed with exit code {result.returncode}")
    return result.stdout


def test_accuracies(out_dir, pattern):
    """Final test accuracy of every stats pickle in ``out_dir`` whose name matches ``pattern``."""
    accs = []
    for name in sorted(os.listdir(out_dir)):
        if name.endswith("__stats_dict.pkl") and re.search(pattern, name):
            with open(os.path.join(out_dir, name), "rb") as handle:
                accs.append(pickle.load(handle)["test"][1][-1])
    return accs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_results")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds for the ordering")
    args = parser.parse_args()
    out = args.output_dir
    common = ["--dataset", "mnist_5k", "--no_dropout", "--epochs", args.epochs, "--threads", 1]
    started = time.time()

    print(f"1. training {args.seeds} seeds on mnist_5k ({args.epochs} epochs each)", flush=True)
    for seed in range(1, args.seeds + 1):
        run("run_mnist.py", *common, "--seed", seed, "--output_dir", out)

    print("2. ordering the examples by forgetting events", flush=True)
    report = run("order_examples_by_forgetting.py", "--input_dir", out, "--output_dir", out,
                 "--output_name", "mnist_5k_sorted", "--epochs", args.epochs, "--input_fname_args",
                 "dataset", "mnist_5k", "no_dropout", "True", "sorting_file", "none",
                 "remove_n", "0", "keep_lowest_n", "0")
    unforgettable = int(re.search(r"Number of unforgettable examples: (\d+)", report).group(1))
    print(f"   {unforgettable} of 4000 training examples were never forgotten", flush=True)

    print("3. retraining without them, and without as many random examples", flush=True)
    removal = ["--sorting_file", "mnist_5k_sorted", "--input_dir", out, "--remove_n", unforgettable]
    for seed in range(1, args.seeds + 1):
        for keep_lowest_n in (0, -1):
            run("run_mnist.py", *common, *removal, "--keep_lowest_n", keep_lowest_n,
                "--seed", seed, "--output_dir", out)

    rows = [("full training set", 4000, test_accuracies(out, r"sorting_file_none__")),
            ("unforgettable removed", 4000 - unforgettable,
             test_accuracies(out, rf"remove_n_{unforgettable}__keep_lowest_n_0__")),
            ("as many random removed", 4000 - unforgettable,
             test_accuracies(out, rf"remove_n_{unforgettable}__keep_lowest_n_-1__"))]
    print(f"\nfinal test accuracy on the 1,000 held-out digits after {args.epochs} epochs "
          f"(mean of {args.seeds} seeds):\n")
    print(f"| {'training set':<24} | {'examples':>8} | {'test acc %':>10} | {'per seed':<24} |")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 12}|{'-' * 26}|")
    for label, n, accs in rows:
        per_seed = " ".join(f"{a:.1f}" for a in accs)
        print(f"| {label:<24} | {n:>8} | {sum(accs) / len(accs):>10.2f} | {per_seed:<24} |")
    print(f"\ndone in {time.time() - started:.0f} s; files in {out}/")


if __name__ == "__main__":
    main()
