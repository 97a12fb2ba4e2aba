#!/usr/bin/env python
"""How long the whole paper takes in miniature: ``reproduce_paper.py EXPERIMENT --scale mini``
for every experiment, one after another, into one output directory.

    python benchmarks/reproduce_mini.py [--workers 2] [--output_dir DIR] [EXPERIMENT ...]
    python benchmarks/reproduce_mini.py --quick      # fig1 alone: a smoke test (~2 min)

Each experiment is its own ``reproduce_paper.py`` process in the order of ``--list``, so its
time is what it adds to the ones before it (the runs it shares with them are finished and
skipped, as in one ``all`` command). Then ``all`` once more, which should find everything
finished and run nothing. Printed: seconds per experiment, the total against the target
(20 minutes on 2 cores), the rerun, and the machine's load (a busy machine is several
times slower). Figures, not assertions; exits 1 if a command fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import REPO, header

TARGET_S = 20 * 60


def ids():
    listed = subprocess.run([sys.executable, os.path.join(REPO, "reproduce_paper.py"), "--list"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listed.splitlines()]


def timed(experiments, out, workers):
    command = [sys.executable, os.path.join(REPO, "reproduce_paper.py"), *experiments, "--scale",
               "mini", "--output_dir", out, "--workers", str(workers), "--no_progress"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}")
    return seconds, done.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help="which (default: all of reproduce_paper.py --list)")
    parser.add_argument("--workers", type=int, default=2, help="sweep.py --workers (default: 2)")
    parser.add_argument("--output_dir", default=None,
                        help="keep the results here (default: a temporary directory, removed)")
    parser.add_argument("--quick", action="store_true", help="fig1 alone, a smoke test")
    args = parser.parse_args(argv)
    chosen = ["fig1"] if args.quick else (args.experiments or ids())
    out = args.output_dir or tempfile.mkdtemp(prefix="reproduce_mini_")
    header(f"reproduce_paper.py --scale mini, {len(chosen)} experiment(s), --workers "
           f"{args.workers}, into {out}")
    total = 0.0
    try:
        for experiment in chosen:
            seconds, stdout = timed([experiment], out, args.workers)
            total += seconds
            print(f"{experiment:<15} {seconds:7.1f} s  ({stdout.count('running: ')} steps run, "
                  f"{stdout.count('finished, skipped: ')} skipped)", flush=True)
        verdict = "within" if total <= TARGET_S else "over"
        print(f"{'total':<15} {total:7.1f} s = {total / 60:.1f} min ({verdict} the "
              f"{TARGET_S // 60}-minute target)")
        seconds, stdout = timed(chosen, out, args.workers)
        print(f"{'rerun':<15} {seconds:7.1f} s  ({stdout.count('running: ')} steps run, "
              f"{stdout.count('finished, skipped: ')} skipped)")
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        if args.output_dir is None:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
