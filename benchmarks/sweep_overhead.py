#!/usr/bin/env python
"""What sweep.py costs and saves: 8 runs of run_mnist.py three ways, side by side.

    python benchmarks/sweep_overhead.py [--repeats 3] [--runs 8] [--epochs 3] [--workers 2]

Each repeat runs the same commands (``run_mnist.py --dataset mnist_5k --epochs 3 --seed S``,
S = 1..runs) into a fresh directory per way, the three ways back to back (order rotated
every repeat, so a change in the machine's load does not favour one):

* loop:  a sequential bash ``for`` loop, what users run today;
* sweep: ``sweep.py --workers 2 --grid seed=1:8:1 -- run_mnist.py ...`` (embedded local Ray);
* xargs: ``sweep.py --dry_run ... | xargs -d '\\n' -P 2 -n 1 sh -c``: the same commands with
  the same parallelism and no Ray.

Printed: the medians, sweep / loop (target <= 0.6 on 2 cores), and Ray's own cost per run =
(sweep - xargs) / runs (target < 0.5 s): everything the sweep adds to a plain parallel
launcher (planning, Ray start-up and shut-down, scheduling), spread over the runs. The three
output directories are also compared: the same files, byte for byte.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import REPO, header, median, spread  # noqa: F401 (puts the repo on sys.path)


def timed(command, **kwargs):
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def files_of(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                out[name] = handle.read()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    header(f"sweep overhead: {args.runs} runs of run_mnist.py --dataset mnist_5k --epochs "
           f"{args.epochs}, --workers {args.workers}")
    python = sys.executable
    fixed = ["--dataset", "mnist_5k", "--epochs", str(args.epochs)]
    grid = ["--grid", f"seed=1:{args.runs}:1", "--", "run_mnist.py", *fixed]

    def loop(out):
        return timed(["bash", "-c", f'for s in $(seq 1 {args.runs}); do "{python}" run_mnist.py '
                      f'{" ".join(fixed)} --seed $s --output_dir "{out}" || exit 1; done'])

    def sweep(out):
        return timed([python, "sweep.py", "--no_progress", "--workers", str(args.workers), *grid,
                      "--output_dir", out])

    def xargs(out):
        # the dry run prints `python ...`: make that name this interpreter for the shell
        return timed(["bash", "-c", f'PATH="{os.path.dirname(python)}:$PATH"; "{python}" sweep.py '
                      f'--dry_run {" ".join(grid)} --output_dir "{out}" | xargs -d "\\n" '
                      f'-P {args.workers} -n 1 sh -c'])

    ways = {"loop": loop, "sweep": sweep, "xargs": xargs}
    seconds = {name: [] for name in ways}
    root = tempfile.mkdtemp(prefix="sweep_overhead_")
    try:
        for repeat in range(args.repeats):
            names = list(ways)[repeat % 3:] + list(ways)[:repeat % 3]
            dirs = {}
            for name in names:
                dirs[name] = os.path.join(root, f"{name}{repeat}")
                seconds[name].append(ways[name](dirs[name]))
                print(f"repeat {repeat + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
            loop_files = files_of(dirs["loop"])
            same = all(files_of(dirs[name]) == loop_files for name in ("sweep", "xargs"))
            print(f"repeat {repeat + 1}: same files in all three directories: "
                  f"{'yes' if same else 'NO'} ({len(loop_files)} files)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("\n| way | median wall s | range s | / loop |")
    print("|---|---|---|---|")
    loop_median = median(seconds["loop"])
    for name in ways:
        print(f"| {name} | {median(seconds[name]):.1f} | {spread(seconds[name])} | "
              f"{median(seconds[name]) / loop_median:.2f} |")
    ray_cost = [(s - x) / args.runs for s, x in zip(seconds["sweep"], seconds["xargs"])]
    print(f"\nRay's own cost per run, (sweep - xargs) / {args.runs}: median "
          f"{median(ray_cost):.2f} s (range {spread(ray_cost)})")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
