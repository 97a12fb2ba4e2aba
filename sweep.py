#!/usr/bin/env python
"""Run a grid of training runs on Ray, skipping finished runs and continuing unfinished ones.

    python sweep.py --grid seed=1,2,3 remove_n=0:59000:1000 keep_lowest_n=0,-1 --workers 2 -- \\
        run_mnist.py --dataset mnist --no_dropout --sorting_file mnist_sorted \\
        --input_dir mnist_results --output_dir mnist_results

Each grid point runs the command a shell loop would (the flags after ``--`` then one
``--axis value`` per axis), plus ``--threads`` (from --cpus_per_run), ``--resume`` and
``--no_extend`` (unless --extend); so its files are those of the same command run by hand.
A run whose record has other --epochs than the sweep's is refused before anything starts,
unless --extend. Without --address the sweep starts a Ray of its own, whatever else
runs on the machine (forgetting/sweep/connect.py). See README, "Sweeps", and docs/flags.md#sweeppy.
"""
import os
import sys
import time

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.sweep.connect import CONNECT_TIMEOUT_S, start_ray as connect_ray
from forgetting.sweep.grid import expand, parse_grid
from forgetting.sweep.plan import check_grid, check_sorting_files, epoch_refusals, load_script, plan_runs


def build_parser():
    parser = ArgumentParser(
        usage="%(prog)s [--grid NAME=VALUES ...] [options] -- SCRIPT [FLAGS ...]",
        description="Run every combination of the --grid values of a training script "
                    "(run_mnist.py or run_cifar.py) as Ray tasks; finished runs are skipped, "
                    "unfinished ones continued with --resume, runs being trained by another "
                    "process waited for.",
        epilog="exit status: 0 every run finished; 1 a run failed; 2 bad input, or a run "
               "started with other --epochs (without --extend), nothing started; 130 stopped "
               "by Ctrl-C")
    parser.add_argument("--grid", nargs="*", default=[], metavar="NAME=VALUES",
                        help="one axis per word: NAME is a flag of the script without '--'; "
                             "VALUES a comma list whose items may be inclusive ranges "
                             "start:stop:step (as seq start step stop), e.g. seed=1,2,3 "
                             "remove_n=0:59000:1000 keep_lowest_n=0:49000:1000,-1")
    parser.add_argument("--dry_run", action="store_true",
                        help="print the commands, one per line, and start nothing (for xargs, "
                             "Slurm arrays or other schedulers): --resume on started runs, a "
                             "'# finished' comment line for finished ones")
    parser.add_argument("--extend", action="store_true",
                        help="continue runs started with other --epochs to the sweep's --epochs "
                             "(without it they are refused, so that a sweep without its usual "
                             "--epochs does not extend finished runs)")
    parser.add_argument("--workers", type=int, default=None,
                        help="CPUs of the local Ray started for this sweep (default: this "
                             "machine's cores); not with --address")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="join a running Ray cluster (ray start --head) instead, or 'auto' "
                             "(the one RAY_ADDRESS or this host's last ray start names); without "
                             "it the sweep starts its own Ray whatever else runs here")
    parser.add_argument("--connect_timeout", type=float, default=None, metavar="SECONDS",
                        help="with --address: how long to wait for the cluster to answer and "
                             f"accept the sweep before giving up (default: {CONNECT_TIMEOUT_S:g})")
    parser.add_argument("--cpus_per_run", type=int, default=1,
                        help="CPUs Ray reserves for each run, passed on as --threads (default: 1)")
    parser.add_argument("--gpus_per_run", type=float, default=0,
                        help="GPUs Ray reserves for each run; fractions pack several runs onto "
                             "one GPU (default: 0)")
    parser.add_argument("--retries", type=int, default=2,
                        help="attempts again, with --resume, after a run fails; bad-input exits "
                             "(2) are not retried (default: 2)")
    parser.add_argument("--progress_every", type=float, default=30.0, metavar="SECONDS",
                        help="progress on stderr: a bar when stderr is a terminal, else at most "
                             "one line every SECONDS (default: 30); 0 shows none")
    parser.add_argument("--no_progress", action="store_true",
                        help="no progress bar or lines (as --progress_every 0)")
    return parser


def split_command(argv):
    """(sweep flags, training command or None) around the first ``--``."""
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def check_command(command):
    if command is None:
        raise UsageError("no training command; end the sweep's flags with -- and give the script "
                         "and its fixed flags, e.g. -- run_mnist.py --output_dir out")
    if not command:
        raise UsageError("nothing after --; give the script and its fixed flags, e.g. -- "
                         "run_mnist.py --output_dir out")


def check_flags(args):
    for name, least in (("cpus_per_run", 1), ("retries", 0), ("gpus_per_run", 0)):
        if getattr(args, name) < least:
            raise UsageError(f"--{name} is {getattr(args, name)}; it must be at least {least}")
    if not args.progress_every >= 0:  # also refuses nan
        raise UsageError(f"--progress_every is {args.progress_every}; it must be 0 (none) or more "
                         "seconds")
    if args.connect_timeout is not None:
        if args.address is None:
            raise UsageError("--connect_timeout bounds joining a cluster with --address; the "
                             "sweep's own local Ray has no wait to bound, so drop it")
        if not args.connect_timeout > 0:  # also refuses nan
            raise UsageError(f"--connect_timeout is {args.connect_timeout}; give a number of "
                             "seconds above 0")
    if args.workers is not None:
        if args.address is not None:
            raise UsageError("--workers sizes the local Ray; with --address the cluster's own "
                             "resources decide, so drop --workers")
        if args.workers < args.cpus_per_run:
            raise UsageError(f"--workers {args.workers} is fewer than --cpus_per_run "
                             f"{args.cpus_per_run}, so no run could start; raise --workers")


def start_ray(args):
    """Join the cluster at --address, or start the sweep's own local Ray with --workers CPUs;
    refuse a cluster too small for one run."""
    ray = connect_ray(args.address, args.workers,
                      CONNECT_TIMEOUT_S if args.connect_timeout is None else args.connect_timeout)
    have = ray.cluster_resources()
    for resource, need in (("CPU", args.cpus_per_run), ("GPU", args.gpus_per_run)):
        if need > have.get(resource, 0):
            ray.shutdown()
            raise UsageError(f"each run needs {need} {resource} but the Ray cluster has "
                             f"{have.get(resource, 0):g}; lower --{resource.lower()}s_per_run "
                             "or add machines")
    return ray


def report(result, runs, elapsed):
    from forgetting.sweep.execute import log_dirs

    for failure in result.failed:
        status = "its worker was lost" if failure.returncode is None else f"exit {failure.returncode}"
        print(f"FAILED ({status}): {failure.command}", file=sys.stderr)
        for line in failure.stderr_tail:
            print(f"    {line}", file=sys.stderr)
        print(f"    log: {failure.log_path}", file=sys.stderr)
    waited = f", {result.elsewhere} waited for (running elsewhere)" if result.elsewhere else ""
    print(f"{len(runs)} runs: {result.done} done, {result.skipped} skipped (finished), "
          f"{len(result.failed)} failed, {len(runs) - result.done - result.skipped - len(result.failed)} "
          f"not run{waited}, in {elapsed:.1f} s; logs in {', '.join(log_dirs(runs))}", file=sys.stderr)


@exit_on_usage_error
def main(argv=None):
    started = time.perf_counter()
    own, command = split_command(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(own)  # first, so --help works without a command
    check_command(command)
    check_flags(args)
    script = load_script(command[0])
    axes = parse_grid(args.grid)
    check_grid(script, command[1:], axes)
    commands = expand(command[0], command[1:], axes)
    runs = plan_runs(script, commands, extend=args.extend)
    refused = epoch_refusals(runs)
    if refused:
        for line in refused:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    if args.dry_run:
        for run in runs:
            print(run.dry_run_line())
        return
    unfinished = [run for run in runs if not run.finished]
    if not unfinished:
        print(f"all {len(runs)} runs have finished their epochs; nothing to run", file=sys.stderr)
        return
    check_sorting_files(script, unfinished)

    ray = start_ray(args)
    from forgetting.sweep.execute import run_sweep

    try:
        result = run_sweep(runs, args.cpus_per_run, args.gpus_per_run, args.retries, os.getcwd(),
                           progress_every=0 if args.no_progress else args.progress_every)
    finally:
        ray.shutdown()
    report(result, runs, time.perf_counter() - started)
    if result.stopped:
        print("stopped; the runs saved their finished epochs. Run the same sweep command again "
              "to continue", file=sys.stderr)
        sys.exit(130)
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
