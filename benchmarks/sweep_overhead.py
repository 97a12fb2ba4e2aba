#!/usr/bin/env python
"""What sweep.py costs and saves: 8 runs of run_mnist.py three ways, side by side.

    python benchmarks/sweep_overhead.py [--repeats 3] [--runs 8] [--epochs 3] [--workers 2]
    python benchmarks/sweep_overhead.py --quick     # 2 runs of 1 epoch, once: a smoke test

Each repeat runs the same commands (``run_mnist.py --dataset mnist_5k --epochs 3 --seed S``,
S = 1..runs) into a fresh directory per way, the three ways back to back (order rotated
every repeat, so a change in the machine's load does not favour one):

* loop:  a sequential bash ``for`` loop, what users run today;
* sweep: ``sweep.py --workers 2 --grid seed=1:8:1 -- run_mnist.py ...`` (embedded local Ray);
* xargs: ``sweep.py --dry_run ... | xargs -d '\\n' -P 2 -n 1 sh -c``: the same commands with
  the same parallelism and no Ray.

Printed: the medians, sweep / loop (target <= 0.6 on 2 cores), and Ray's own cost per run =
(sweep - xargs) / runs (target < 0.5 s): everything the sweep adds to a plain parallel
launcher (planning, Ray start-up and shut-down, scheduling), spread over the runs. On a
loaded machine that difference drowns in the noise of two long walls, so each repeat also
times Ray alone in a fresh process: import, ``ray.init`` with --workers CPUs, --runs empty
tasks, ``ray.shutdown``; divided by --runs it is the same cost measured directly. The three
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


RAY_ALONE = """
import logging, sys, time
started = time.perf_counter()
import ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, logging_level=logging.WARNING,
         log_to_driver=False)
task = ray.remote(lambda: None).options(num_cpus=1)
ray.get([task.remote() for _ in range(int(sys.argv[2]))])
ray.shutdown()
print(time.perf_counter() - started)
"""


def ray_alone(workers, runs):
    """Seconds for Ray's whole life in a sweep of ``runs`` empty tasks (a fresh process)."""
    done = subprocess.run([sys.executable, "-c", RAY_ALONE, str(workers), str(runs)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


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
    parser.add_argument("--quick", action="store_true", help="2 runs of 1 epoch, once")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.runs, args.epochs = 1, 2, 1
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
    alone = []
    root = tempfile.mkdtemp(prefix="sweep_overhead_")
    try:
        for repeat in range(args.repeats):
            names = list(ways)[repeat % 3:] + list(ways)[:repeat % 3]
            dirs = {}
            for name in names:
                dirs[name] = os.path.join(root, f"{name}{repeat}")
                seconds[name].append(ways[name](dirs[name]))
                print(f"repeat {repeat + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
            alone.append(ray_alone(args.workers, args.runs))
            print(f"repeat {repeat + 1}: Ray alone {alone[-1]:.1f} s", flush=True)
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
    print(f"Ray alone (import, init, {args.runs} empty tasks, shutdown): median {median(alone):.2f} s "
          f"(range {spread(alone)}), {median(alone) / args.runs:.2f} s per run")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
