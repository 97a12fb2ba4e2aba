#!/usr/bin/env python
"""Issue 10: the stats-based scores of ``score_examples.py`` against
``order_examples_by_forgetting.py`` on the same R runs of n examples x E epochs (default
5 x 50,000 x 200): wall time and peak memory, target within 1.25x of the ordering script,
one stats file in memory at a time.

The inputs are ordering_at_scale.py's synthetic stats files (its ``generate``, plain int keys
as the training scripts write them), cached under ``--cache``. Every case runs in a fresh
Python, cases interleaved per repeat so load from other processes hits all alike.
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO, header, median, run_measured, spread  # noqa: E402
from ordering_at_scale import generate, parse_scale_args, scale_parser  # noqa: E402

ORDER = os.path.join(REPO, "order_examples_by_forgetting.py")
SCORE = os.path.join(REPO, "score_examples.py")
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
    rows = {}
    try:
        for _ in range(repeats):
            for name, argv in cases.items():
                seconds, peak, _ = run_measured(argv, cwd=REPO)
                rows.setdefault(name, []).append((seconds, peak))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def report(rows):
    print("(wall seconds: median, min-max; peak RSS MiB: median)")
    base = median([s for s, _ in rows["order_examples_by_forgetting.py"]])
    base_peak = median([p for _, p in rows["order_examples_by_forgetting.py"]])
    for name, values in rows.items():
        secs, peaks = [s for s, _ in values], [p for _, p in values]
        ratio = median(secs) / base
        verdict = "" if name.startswith("order") else (
            f"  {ratio:.2f}x the ordering script (target <= 1.25x: {'met' if ratio <= 1.25 else 'MISSED'}),"
            f" peak {median(peaks) / base_peak:.2f}x its")
        print(f"  {name:38s} {median(secs):7.2f} s ({spread(secs)})  peak {median(peaks):6.0f} MiB{verdict}",
              flush=True)


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
