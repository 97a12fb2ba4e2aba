#!/usr/bin/env python
"""The paper's Figure 6 experiment in a few minutes, on the bundled, offline MNIST digits.

1. train a few seeds on mnist_5k, recording every presentation (a sweep on a local Ray);
2. count forgetting events across the seeds and sort the examples;
3. retrain without 0, 25, 50 and 75% of the training set, removing the least forgotten
   examples ("selected") or as many random ones ("random"), for every seed (a second sweep);
4. collect every run into one table (printed summary, results.csv) and draw the figures.
Everything goes through the real command-line scripts; files land in --output_dir. Rerunning
the demo skips the runs that already finished.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N_TRAIN = 4000          # mnist_5k's training examples
SORTED = "mnist_5k_sorted"


def run(script, *flags, capture=False):
    """Run one of the project's scripts (stderr passes through); its stdout if ``capture``."""
    cmd = [sys.executable, os.path.join(HERE, script), *map(str, flags)]
    result = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, text=True, cwd=HERE)
    if result.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed with exit code {result.returncode}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_results")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds (default: 3)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="runs at once (default: this machine's cores)")
    args = parser.parse_args()
    out, figures = args.output_dir, os.path.join(args.output_dir, "figures")
    seeds = ",".join(str(s) for s in range(1, args.seeds + 1))
    training = ["run_mnist.py", "--dataset", "mnist_5k", "--no_dropout", "--epochs", args.epochs,
                "--output_dir", out]
    started = time.time()

    print(f"1. training {args.seeds} seeds on mnist_5k ({args.epochs} epochs each)", flush=True)
    run("sweep.py", "--grid", f"seed={seeds}", "--workers", args.workers, "--", *training)

    print("\n2. ordering the examples by forgetting events", flush=True)
    report = run("order_examples_by_forgetting.py", "--input_dir", out, "--output_dir", out,
                 "--output_name", SORTED, "--epochs", args.epochs, "--input_fname_args",
                 "dataset", "mnist_5k", "no_dropout", "True", "sorting_file", "none",
                 "remove_n", "0", "keep_lowest_n", "0", capture=True)
    unforgettable = int(re.search(r"Number of unforgettable examples: (\d+)", report).group(1))
    print(f"   {unforgettable} of {N_TRAIN} training examples were never forgotten", flush=True)

    print("\n3. retraining without 0, 25, 50 and 75% of them: least forgotten first (selected) "
          "or random", flush=True)
    run("sweep.py", "--grid", f"seed={seeds}", f"remove_n=0:{3 * N_TRAIN // 4}:{N_TRAIN // 4}",
        "keep_lowest_n=0,-1", "--workers", args.workers, "--", *training,
        "--sorting_file", SORTED, "--input_dir", out)

    print("\n4. every run as one row (results.csv), grouped over seeds:\n", flush=True)
    results = os.path.join(out, "results.csv")
    run("collect_results.py", "--input_dir", out, "--epochs", args.epochs, "--output", results)
    os.makedirs(figures, exist_ok=True)
    run("plot_figures.py", "histogram", "--sorting_file", os.path.join(out, SORTED + ".pkl"),
        "--output", os.path.join(figures, "fig1_forgetting_histogram.png"))
    run("plot_figures.py", "removal", "--results", results, "--input_fname_args",
        "sorting_file", SORTED, "--epochs", args.epochs,
        "--output", os.path.join(figures, "fig6_removal.png"))
    print(f"\nfigures: {figures}/fig1_forgetting_histogram.png, {figures}/fig6_removal.png")
    print(f"done in {time.time() - started:.0f} s; files in {out}/")


if __name__ == "__main__":
    main()
