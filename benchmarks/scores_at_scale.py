#!/usr/bin/env python
"""Issue 10: the stats-based scores of ``score_examples.py`` against
``order_examples_by_forgetting.py`` on the same R runs of n examples x E epochs (default
5 x 50,000 x 200): wall time and peak memory, target within 1.25x of the ordering script,
one stats file in memory at a time.

The inputs are ordering_at_scale.py's synthetic stats files (its ``generate``, plain int keys
as the training scripts write them), cached under ``--cache``. Every case runs in a fresh
Python, cases interleaved per repeat so load from other processes hits all alike; the CPU
time of each child is reported beside its wall time, as the steadier figure on a loaded
machine. ``--score mli`` is compared with the ordering script's ``--output_dir_MLI`` run
(the same loss matrix to build), the other scores with its plain run.
"""
import os
import resource
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, run_measured, spread  # noqa: E402
from ordering_at_scale import generate, parse_scale_args, scale_parser  # noqa: E402

ORDER = os.path.join(REPO, "order_examples_by_forgetting.py")
SCORE = os.path.join(REPO, "score_examples.py")
MLI_BASE = "order_examples_by_forgetting.py --output_dir_MLI"
SCORES = ("forgetting", "mli", "aum", "confidence", "variability", "correctness")


def measure(directory, epochs, repeats, scores):
    out = tempfile.mkdtemp(prefix="bench_scores_")
    cases = {"order_examples_by_forgetting.py": [sys.executable, ORDER, "--input_dir", directory,
                                                 "--output_dir", out, "--output_name", "order",
                                                 "--epochs", str(epochs)]}
    for name in scores:
        cases[f"score_examples.py --score {name}"] = [
            sys.executable, SCORE, "--score", name, "--input_dir", directory, "--output_dir", out,
            "--output_name", name, "--epochs", str(epochs)]
    cases[MLI_BASE] = cases["order_examples_by_forgetting.py"] + ["--output_dir_MLI", out]
    rows = {}
    try:
        for _ in range(repeats):
            for name, argv in cases.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds, peak, _ = run_measured(argv, cwd=REPO)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                rows.setdefault(name, []).append((seconds, peak, cpu))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def report(rows):
    """Each case against the ordering script doing the same reading: mli against the ordering
    script with --output_dir_MLI (both build the loss matrix), the others against it without."""
    print("(wall and CPU seconds (user + sys of the child): median, min-max; peak RSS MiB: median)")
    med = {name: [median([row[k] for row in values]) for k in range(3)] for name, values in rows.items()}
    for name, values in rows.items():
        secs, cpus = [row[0] for row in values], [row[2] for row in values]
        line = (f"  {name:40s} wall {med[name][0]:6.2f} s ({spread(secs)})  cpu {med[name][2]:6.2f} s "
                f"({spread(cpus)})  peak {med[name][1]:6.0f} MiB")
        if name.startswith("score_examples"):
            base = med[MLI_BASE if name.endswith(" mli") else "order_examples_by_forgetting.py"]
            wall, cpu = med[name][0] / base[0], med[name][2] / base[2]
            line += (f"\n  {'':40s} {wall:.2f}x wall, {cpu:.2f}x cpu, {med[name][1] / base[1]:.2f}x peak "
                     f"(target <= 1.25x: {'met' if max(wall, cpu) <= 1.25 else 'MISSED'})")
        print(line, flush=True)


def main(argv=None):
    parser = scale_parser(__doc__.split("\n\n")[0], repeats=3)
    parser.add_argument("--scores", nargs="+", default=list(SCORES), choices=SCORES)
    args = parse_scale_args(parser, argv)
    header(f"stats-based scores at scale (issue 10): {args.runs} runs x {args.n} examples x "
           f"{args.epochs} epochs")
    directory = generate(args.cache, args.runs, args.n, args.epochs, layouts=("int_keys",))["int_keys"]
    report(measure(directory, args.epochs, args.repeats, args.scores))


if __name__ == "__main__":
    main()
