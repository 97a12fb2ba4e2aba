#!/usr/bin/env python
"""Run every benchmark, one after another, each in its own Python process.

    python benchmarks/run_all.py            # full sizes (see benchmarks/RESULTS.md; ~30 min)
    python benchmarks/run_all.py --quick    # small sizes, a smoke test (~2 min)

Figures are printed, never asserted: these are measurements, not tests.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("epoch_overhead.py", "stats_at_scale.py", "ordering_at_scale.py", "scaling.py",
           "collect_at_scale.py", "int64_keys.py", "original_api.py", "scores_at_scale.py",
           "model_scores.py", "sweep_overhead.py", "custom_loop_overhead.py",
           "analyses_at_scale.py")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("scripts", nargs="*", metavar="SCRIPT",
                        help=f"which to run (default: all of {', '.join(SCRIPTS)})")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scripts if s not in SCRIPTS]
    if unknown:
        parser.error(f"unknown script(s) {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    failed = []
    for script in args.scripts or SCRIPTS:
        started = time.perf_counter()
        command = [sys.executable, os.path.join(HERE, script)] + (["--quick"] if args.quick else [])
        print(f"\n### {' '.join(command[1:])}", flush=True)
        if subprocess.call(command) != 0:
            failed.append(script)
        print(f"### {script}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
