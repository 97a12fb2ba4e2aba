"""Small helpers the benchmark scripts share: timing, medians, peak memory, the machine.

Benchmarks print figures; they assert nothing. Every script puts the repository root on
``sys.path`` so it runs as ``python benchmarks/<name>.py`` from anywhere.
"""
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def median(values):
    return statistics.median(values) if values else float("nan")


def spread(values):
    """'min-max' of a list of seconds, for showing the noise next to a median."""
    return f"{min(values):.3f}-{max(values):.3f}" if values else "-"


def peak_rss_mib(who=resource.RUSAGE_SELF):
    """Peak resident memory in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def vm_hwm_mib(pid):
    """A live process's peak resident memory (VmHWM) in MiB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def watch_peak(pid, result, interval=0.02):
    """Poll ``pid``'s VmHWM until it exits; ``result[0]`` ends as the last value read.

    Why not getrusage/wait4: a child's ru_maxrss includes the parent's memory at the time
    of fork/vfork (Linux carries the old mm's high-water mark over exec), so a child of a
    1 GB process reports at least 1 GB. VmHWM belongs to the child's own address space.
    """
    while True:
        value = vm_hwm_mib(pid)
        if value is None:
            return
        result[0] = value
        time.sleep(interval)


def run_measured(argv, **kwargs):
    """Run a command; return (seconds, its peak RSS in MiB from VmHWM polling, output)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    peak = [0.0]
    watcher = threading.Thread(target=watch_peak, args=(child.pid, peak), daemon=True)
    watcher.start()
    out = child.stdout.read()
    child.wait()
    seconds = time.perf_counter() - started
    watcher.join()
    if child.returncode != 0:
        raise RuntimeError(f"{argv} exited {child.returncode}:\n{out[-2000:]}")
    return seconds, peak[0], out


def machine_line():
    load = os.getloadavg()
    return (f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at {time.strftime('%Y-%m-%d %H:%M')}")


def header(title):
    print(f"\n== {title} ==", flush=True)
    print(machine_line(), flush=True)


def parse_size_args(doc, argv, repeats):
    """``--n`` x ``--epochs`` (default 50,000 x 200), ``--repeats`` and ``--quick`` (5,000 x 20,
    at most 2 repeats: a smoke test), for benchmarks sized like one CIFAR-10 run."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--quick", action="store_true", help="5,000 x 20, at most 2 repeats (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.epochs, args.repeats = 5000, 20, min(args.repeats, 2)
    return args
