#!/usr/bin/env python
"""``collect_results.py`` over R runs of n examples x E epochs (default 500 x 50,000 x 200),
cold and warm page cache, against the floor of unpickling the runs' stats pickles (what a
notebook does to learn a run's accuracy). Target: under a minute on 2 cores.

The runs' files are written once by the project's own writers (tests/run_files.py): one
template run of CIFAR-10's shape (50,000 examples, 391 batches, a ResNet18-sized resume
state: 11.2 M weights + as much momentum, ~90 MB). Per-example numbers are zeros, so each
run gets its own sparse copy of the stats log and resume state (``cp --sparse=always``:
its own inode and blocks for everything collect reads, a few hundred KB of disk); the
192 MB stats pickle, which collect never opens, is one file hard-linked under every
run's name. Runs differ in their file names (seed x remove_n).

Cold: every file of the runs is dropped from the page cache first
(``posix_fadvise(DONTNEED)``, no root needed), then collect_results.py runs in a fresh
process. Warm: the same again right after. Floor: ``pickle.load`` of one stats pickle in
a fresh process, times R.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, run_measured, spread  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests"))
from run_files import write_run  # noqa: E402

from forgetting.files.naming import CIFAR_FNAME_FLAGS, RunPaths  # noqa: E402

RESNET18_WEIGHTS = 11_173_962


def cifar_fname(seed, remove_n):
    values = {"dataset": "cifar10", "data_augmentation": False, "cutout": False, "seed": seed,
              "sorting_file": "none", "remove_n": remove_n, "keep_lowest_n": 0,
              "remove_subsample": 0, "noise_percent_labels": 0, "noise_percent_pixels": 0,
              "noise_std_pixels": 0}
    return "__".join(f"{name}_{values[name]}" for name in CIFAR_FNAME_FLAGS)


def make_runs(root, runs, n, epochs):
    """R runs below ``root/runs`` sharing one template's content; returns the seconds taken."""
    started = time.perf_counter()
    template = write_run(os.path.join(root, "template"), cifar_fname(0, 0),
                         [50.0 + 40.0 * e / epochs for e in range(epochs)], n_train=n,
                         n_batches=-(-n // 128), weights=RESNET18_WEIGHTS, zeros=True)
    sparse = {}
    for what in ("stats_log", "resume_state"):  # sparse once, so each copy skips the holes
        sparse[what] = getattr(template, what) + ".sparse"
        subprocess.run(["cp", "--sparse=always", getattr(template, what), sparse[what]], check=True)
    out = os.path.join(root, "runs")
    os.makedirs(out)
    for i in range(runs):
        paths = RunPaths.for_run(out, cifar_fname(1 + i % 5, 100 * (i // 5)))
        for what, source in sparse.items():
            subprocess.run(["cp", "--sparse=always", source, getattr(paths, what)], check=True)
        os.link(template.stats, paths.stats)
        shutil.copyfile(template.best_acc, paths.best_acc)
    return out, template.stats, time.perf_counter() - started


def drop_cache(directory):
    for entry in os.scandir(directory):
        fd = os.open(entry.path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def du_mib(directory):
    """Disk used by the files below ``directory``, a hard-linked file counted once."""
    inodes = {}
    for entry in os.scandir(directory):
        info = os.stat(entry.path)
        inodes[info.st_ino] = info.st_blocks
    return sum(inodes.values()) * 512 / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor_loads", type=int, default=2,
                        help="stats pickles unpickled for the floor (times R for the estimate)")
    parser.add_argument("--workdir", default=None, help="default: a temporary directory in /tmp")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 50 runs of 5,000 x 20, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.n, args.epochs, args.repeats, args.floor_loads = 50, 5_000, 20, 1, 1

    header(f"collect_results.py over {args.runs} runs of {args.n:,} x {args.epochs}")
    root = tempfile.mkdtemp(prefix="collect_bench_", dir=args.workdir)
    try:
        runs_dir, a_pickle, seconds = make_runs(root, args.runs, args.n, args.epochs)
        print(f"wrote the runs in {seconds:.1f} s; {du_mib(runs_dir):.0f} MiB on disk for "
              f"{len(os.listdir(runs_dir))} file names", flush=True)
        command = [sys.executable, os.path.join(REPO, "collect_results.py"), "--input_dir",
                   runs_dir, "--epochs", str(args.epochs), "--output",
                   os.path.join(root, "results.csv")]
        cold, warm, peaks = [], [], []
        for _ in range(args.repeats):  # cold and warm side by side, alternating
            drop_cache(runs_dir)
            took, peak, out = run_measured(command)
            cold.append(took)
            peaks.append(peak)
            took, peak, out = run_measured(command)
            warm.append(took)
        assert f"{args.runs} runs ({args.runs} finished)" in out, out[:500]
        floor = []
        load = ("import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))")
        for _ in range(args.floor_loads):
            drop_cache(os.path.dirname(a_pickle))
            floor.append(run_measured([sys.executable, "-c", load, a_pickle])[0])
        print("| what | median s | min-max s |")
        print("|---|---|---|")
        print(f"| collect_results.py, cold cache | {median(cold):.2f} | {spread(cold)} |")
        print(f"| collect_results.py, warm cache | {median(warm):.2f} | {spread(warm)} |")
        print(f"| floor: pickle.load of one stats pickle | {median(floor):.2f} | {spread(floor)} |")
        print(f"| floor x {args.runs} (estimate) | {args.runs * median(floor):.0f} | |")
        print(f"collect_results.py peak RSS {max(peaks):.0f} MiB; "
              f"{1000 * median(cold) / args.runs:.1f} ms per run cold")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
