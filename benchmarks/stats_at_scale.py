#!/usr/bin/env python
"""Item 3 of the benchmark issue: how long recording and saving block the training loop, per
epoch, over a whole run of n examples x E epochs (default 50,000 x 200, CIFAR-10's size).

It runs the real ``forgetting.training.loop.run_training`` (commit thread, resume state, legacy pickle
refresher child, final pickle) on a real ResNet18 + SGD state (so the resume state and best
checkpoint have their real size, ~90 MB and ~45 MB), and replaces only the two functions that
do the GPU's work:

* ``train_epoch``: calls the real ``Recorder.record`` (training/custom.py) once per batch of
  128 with synthetic outputs, then sleeps until 90% of ``--epoch_seconds`` have passed since it began (the
  main thread waiting for a GPU epoch, which leaves the CPU cores to the commit thread and
  the refresher child, as on a GPU machine);
* ``evaluate``: sleeps the other 10% of the epoch (the GPU's test pass; the training pass
  above gets 90%) and returns a test accuracy that rises and plateaus, so best checkpoints
  are written often early and rarely late, as in a real run.

Blocked time of an epoch = its wall time (between consecutive "epoch" log lines) minus
``--epoch_seconds``, plus the time spent in ``record`` (which runs inside the simulated
epoch): recording, the host copy, the resume-state snapshot, waiting for the previous commit,
starting the refresher. The final complete pickle written at the end is blocked time too and
is reported separately and averaged into the run.

Also: size of the final stats pickle, a fresh Python's plain ``pickle.load`` of it (what a
notebook does), how many epochs the legacy pickle trails the run (sampled at every epoch
end), and peak memory of the training process and of the refresher children.
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, median, peak_rss_mib, run_measured, watch_peak  # noqa: E402

from forgetting.files.naming import RunPaths  # noqa: E402
from forgetting.training import loop as train, refresher, saver  # noqa: E402
from forgetting.training.job import TrainingJob  # noqa: E402
from forgetting.training.optim import make_optimizer  # noqa: E402
from models import ResNet18  # noqa: E402

BATCH = 128
# Share of a GPU epoch spent in the training pass; the rest is the test pass (CIFAR-10: 10,000
# forward passes against 50,000 forward + backward, i.e. about 10%).
TRAIN_SHARE = 0.9


class TrackedRefresher(refresher.BackgroundRefresher):
    """The real refresher, also noting when each child finished and which epochs it held."""

    finished = []   # (time the child exited, epochs it wrote), filled by watcher threads
    started = []    # (time, epochs)
    peaks = []      # each child's VmHWM in MiB

    def maybe_start(self, epochs):
        before = self.child
        super().maybe_start(epochs)
        if self.child is not None and self.child is not before:
            child, now = self.child, time.perf_counter()
            TrackedRefresher.started.append((now, epochs))

            def watch():
                peak = [0.0]
                watch_peak(child.pid, peak)
                child.wait()
                TrackedRefresher.finished.append((time.perf_counter(), epochs))
                TrackedRefresher.peaks.append(peak[0])

            threading.Thread(target=watch, daemon=True).start()


def make_fake_epoch(n, epoch_seconds, record_times):
    rng = torch.Generator().manual_seed(0)
    pool = [torch.randn(BATCH, 10, generator=rng) * 3 for _ in range(8)]   # synthetic logits
    pool_targets = [torch.randint(0, 10, (BATCH,), generator=rng) for _ in range(8)]

    pool_losses = [F.cross_entropy(o, t, reduction="none") for o, t in zip(pool, pool_targets)]

    def fake_train_epoch(job, recorder, epoch, order, progress=None, weights=None):
        started = time.perf_counter()
        recorder.begin_epoch(len(order))
        recording = 0.0
        for batch_index, start in enumerate(range(0, n, BATCH)):
            positions = order[start:start + BATCH]
            k = batch_index % len(pool)
            b = len(positions)
            outputs, targets, losses = pool[k][:b], pool_targets[k][:b], pool_losses[k][:b]
            t = time.perf_counter()
            recorder.record(positions, outputs, targets, losses)
            recording += time.perf_counter() - t
        record_times.append(recording)
        # the rest of the training pass is the GPU's: sleep until it has lasted its share
        time.sleep(max(0.0, TRAIN_SHARE * epoch_seconds - (time.perf_counter() - started)))

    def fake_evaluate(job):
        time.sleep((1 - TRAIN_SHARE) * epoch_seconds)   # the GPU's test pass
        epoch = len(record_times)
        acc = round(95.0 * (1 - np.exp(-epoch / 30.0)) + np.random.RandomState(epoch).uniform(-1, 1), 2)
        return acc, 1.0   # (test accuracy, mean test loss), as loop.evaluate returns

    return fake_train_epoch, fake_evaluate


def run(n, epochs, epoch_seconds, keep=False, quiet=False):
    """Run the training loop with fake compute; return a dict of figures."""
    out_dir = tempfile.mkdtemp(prefix="bench_stats_")
    torch.manual_seed(0)
    np.random.seed(0)
    model = ResNet18()
    optimizer, lr_for_epoch = make_optimizer("sgd", model.parameters(), 0.1)
    F.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    optimizer.step()  # momentum buffers exist, so the resume state has its real size
    optimizer.zero_grad(set_to_none=True)
    device = torch.device("cpu")
    stamps, record_times = [], []
    job = TrainingJob(
        model=model, optimizer=optimizer, loss_fn=None, prepare_train=None, prepare_test=None,
        train_x=torch.zeros(n, 1, dtype=torch.uint8), train_y=torch.zeros(n, dtype=torch.int64),
        test_x=None, test_y=None, train_ids=np.arange(n, dtype=np.int64), batch_size=BATCH,
        epochs=epochs, device=device,
        paths=RunPaths.for_run(out_dir, "bench", checkpoint_subdir="cifar10"),
        config={"learning_rate": 0.1}, lr_for_epoch=lr_for_epoch,
        # one stamp per epoch, at its summary line (the loop also says other lines)
        say=lambda msg: stamps.append(time.perf_counter()) if msg.startswith("epoch ") else None)
    TrackedRefresher.finished, TrackedRefresher.started, TrackedRefresher.peaks = [], [], []
    fake_train_epoch, fake_evaluate = make_fake_epoch(n, epoch_seconds, record_times)
    started = time.perf_counter()
    with mock.patch.object(train, "train_epoch", fake_train_epoch), \
            mock.patch.object(train, "evaluate", fake_evaluate), \
            mock.patch.object(saver, "BackgroundRefresher", TrackedRefresher):
        train.run_training(job)
    ended = time.perf_counter()
    walls = [stamps[0] - started] + [b - a for a, b in zip(stamps, stamps[1:])]
    blocked = [w - epoch_seconds + r for w, r in zip(walls, record_times)]
    final_write = ended - stamps[-1]
    # how far the legacy pickle trailed: at each epoch end, epochs done minus the epochs held
    # by the newest refresh that had finished by then
    finished = sorted(TrackedRefresher.finished)
    trail = []
    for k, t in enumerate(stamps, start=1):
        held = max([e for f, e in finished if f <= t], default=0)
        trail.append(k - held)
    stats_path = job.paths.stats
    size = os.path.getsize(stats_path)
    load_s, load_rss, _ = run_measured([sys.executable, "-c", (
        "import pickle, sys, time\n"
        "t = time.perf_counter()\n"
        "with open(sys.argv[1], 'rb') as f: d = pickle.load(f)\n"
        "print(time.perf_counter() - t)\n"), stats_path])
    load_seconds = float(_.strip().splitlines()[-1])
    figures = {
        "n": n, "epochs": epochs, "epoch_seconds": epoch_seconds,
        "blocked_median_ms": 1000 * median(blocked[1:]),
        "blocked_mean_ms": 1000 * float(np.mean(blocked)),
        "blocked_max_ms": 1000 * max(blocked),
        "record_ms": 1000 * median(record_times),
        "final_write_s": final_write,
        "blocked_avg_with_final_ms": 1000 * (sum(blocked) + final_write) / epochs,
        "refreshes": len(TrackedRefresher.started),
        "trail_mean": float(np.mean(trail)), "trail_max": max(trail),
        "pickle_mib": size / 2**20, "log_mib": os.path.getsize(job.paths.stats_log) / 2**20,
        "state_mib": os.path.getsize(job.paths.resume_state) / 2**20,
        "load_s": load_seconds, "load_peak_mib": load_rss,
        "peak_self_mib": peak_rss_mib(), "peak_children_mib": max(TrackedRefresher.peaks, default=0.0),
    }
    if keep:
        print(f"kept {out_dir}")
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    if not quiet:
        print_figures(figures)
    return figures


def print_figures(f):
    ok = f["blocked_avg_with_final_ms"] < 40
    print(f"{f['n']} examples x {f['epochs']} epochs, simulated GPU epoch {f['epoch_seconds']} s:\n"
          f"  training loop blocked per epoch: median {f['blocked_median_ms']:.1f} ms, mean "
          f"{f['blocked_mean_ms']:.1f} ms, max {f['blocked_max_ms']:.1f} ms "
          f"(of which recording {f['record_ms']:.1f} ms)\n"
          f"  final complete pickle at the end: {f['final_write_s']:.2f} s once; averaged over the run "
          f"with it: {f['blocked_avg_with_final_ms']:.1f} ms/epoch (target < 40 ms: "
          f"{'met' if ok else 'MISSED'})\n"
          f"  legacy pickle: {f['refreshes']} background refreshes, trails the run by "
          f"{f['trail_mean']:.1f} epochs on average, {f['trail_max']} at most\n"
          f"  final stats pickle {f['pickle_mib']:.1f} MiB (log {f['log_mib']:.1f} MiB, resume state "
          f"{f['state_mib']:.1f} MiB); plain pickle.load in a fresh Python {f['load_s']:.2f} s, "
          f"peak {f['load_peak_mib']:.0f} MiB\n"
          f"  peak RSS: training process {f['peak_self_mib']:.0f} MiB, largest refresher child "
          f"{f['peak_children_mib']:.0f} MiB", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 x 20, 0.05 s epochs (smoke test)")
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--epoch_seconds", type=float, default=1.0,
                        help="simulated GPU time per epoch (default 1.0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the training process (default 1: leaves a core "
                             "to the commit thread and the refresher, as a GPU run does)")
    parser.add_argument("--keep", action="store_true", help="keep the output directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.epochs, args.epoch_seconds = 5000, 20, 0.05
    torch.set_num_threads(args.threads)
    header("statistics at scale (item 3)" + (" --quick" if args.quick else ""))
    run(args.n, args.epochs, args.epoch_seconds, keep=args.keep)


if __name__ == "__main__":
    main()
