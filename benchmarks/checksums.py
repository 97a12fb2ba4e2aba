#!/usr/bin/env python
"""What the checksums of issue 20 (item 8) cost, and the one-format question of issue 15, at
50,000 examples x 391 batches (CIFAR's shape):

- per epoch: appending one stats-log record with its crc32 (format 2) against without (format
  1), and the crc alone; reading and verifying E records;
- per epoch: saving a ResNet18-sized resume state (11.2 M weights + as much momentum, ~90 MB)
  with its sha256 taken as it is written, against without;
- per read of a stats pickle: ``load_run_arrays`` with the run record's sha256 checked (hashed
  in a thread beside the load) against without;
- issue 15: the uniform log (no positions) against the sampled log format storing positions
  for the same uniform epochs: append per epoch, file size, and the final pickle's writing.

Prints one line per figure: the median of --repeats, with the range.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import types
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from forgetting.files import atomic, run_record, stats_log  # noqa: E402
from forgetting.files.stats_log import SampledStatsLog, StatsLog  # noqa: E402
from forgetting.files.stats_pickle import write_stats_pickle  # noqa: E402
from forgetting.scores.stats_arrays import load_run_arrays  # noqa: E402
from forgetting.training.resume_state import save_state  # noqa: E402

RESNET18_WEIGHTS = 11_173_962


def timed(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), min(times), max(times)


def show(what, figures, unit="ms", scale=1e3):
    median, low, high = (f * scale for f in figures)
    print(f"{what:<62} {median:9.2f} {unit}  ({low:.2f}-{high:.2f})", flush=True)


def epoch(rng, n, n_batches):
    return types.SimpleNamespace(
        positions=np.arange(n), loss=rng.random(n, dtype=np.float32), margin=rng.normal(size=n),
        acc=rng.integers(0, 2, n, dtype=np.uint8), train_acc=rng.random(n_batches) * 100,
        test_acc=float(rng.random() * 100))


def unchecked(log):
    """The same log object writing format-1 records (no crc), for the comparison."""
    log.checked = False
    if not log.sampled:
        log.record = stats_log.record_dtype(len(log.ids), log.n_batches)
    else:
        log._crc_size = 0
    return log


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=391)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, nb, epochs, repeats = args.n, args.batches, args.epochs, args.repeats
    rng = np.random.default_rng(0)
    stats = [epoch(rng, n, nb) for _ in range(8)]
    ids = np.arange(n)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        path = os.path.join(tmp, "log.bin")
        # -- per-epoch append, crc, verify
        record_bytes = np.zeros((), stats_log.record_dtype(n, nb)).tobytes()
        show(f"crc32 of one record ({len(record_bytes) / 2**10:.0f} KiB)",
             timed(lambda: zlib.crc32(record_bytes), repeats * 20))
        for name, make in (("format 2 (crc32)", lambda: StatsLog.create(path, ids, nb)),
                           ("format 1 (none)", lambda: unchecked(StatsLog.create(path, ids, nb)))):
            log = make()
            count = iter(range(10**6))
            show(f"append one record + fsync, {name}",
                 timed(lambda: log.append(next(count) % 8, stats[0]), repeats * 4))
        log = StatsLog.create(path, ids, nb)
        for e in range(epochs):
            log.append(e, stats[e % 8])
        checked = StatsLog.open(path)
        show(f"read {epochs} records, verified (format 2)", timed(lambda: checked.read(epochs), repeats))
        show(f"read {epochs} records, unverified", timed(
            lambda: np.fromfile(path, dtype=checked.record, count=epochs, offset=checked.data_offset),
            repeats))
        pickle_path = os.path.join(tmp, "run__stats_dict.pkl")
        show(f"write the stats pickle of {epochs} epochs, no digest",
             timed(lambda: write_stats_pickle(path, epochs, pickle_path), repeats), "s", 1)
        show(f"write the stats pickle of {epochs} epochs, with its sha256",
             timed(lambda: write_stats_pickle(path, epochs, pickle_path, digest=True), repeats), "s", 1)

        # -- reading the pickle with and without its checksum
        record_path = os.path.join(tmp, "run__run.json")
        for label, digest in (("no checksum in the record", None),
                              ("sha256 checked beside the load", run_record.file_sha256(pickle_path))):
            with open(record_path, "w") as handle:
                json.dump({"format": run_record.FORMAT, "flags": {},
                           "sha256": {"stats_pickle": {"sha256": digest, "epochs": epochs}} if digest else {}},
                          handle)
            show(f"load_run_arrays (accs), {label}",
                 timed(lambda: load_run_arrays(pickle_path, epochs, with_losses=False), repeats), "s", 1)
        show("sha256 of the stats pickle alone (%.0f MiB)" % (os.path.getsize(pickle_path) / 2**20),
             timed(lambda: run_record.file_sha256(pickle_path), repeats), "s", 1)

        # -- the resume state
        state = {"epochs_done": 1, "legacy_epochs": 0, "model": {"w": torch.randn(RESNET18_WEIGHTS)},
                 "optimizer": {"state": {0: {"momentum_buffer": torch.randn(RESNET18_WEIGHTS)}}}}
        state_path = os.path.join(tmp, "state.pt")
        def save_plain():
            with atomic.atomic_open(state_path) as handle:
                torch.save(state, handle)

        raw = state["model"]["w"].numpy().tobytes() * 2
        show("sha256 of %.0f MiB alone" % (len(raw) / 2**20),
             timed(lambda: hashlib.sha256(raw).hexdigest(), repeats))
        show("save a ResNet18-sized resume state, no digest", timed(save_plain, repeats))
        show("save a ResNet18-sized resume state, sha256 as written",
             timed(lambda: save_state(state_path, state), repeats))

        # -- issue 15: one format that always stores positions
        os.remove(pickle_path)
        sampled_path = os.path.join(tmp, "sampled.bin")
        slog = SampledStatsLog.create(sampled_path, ids)
        count = iter(range(10**6))
        show("append one record + fsync, sampled format (positions stored)",
             timed(lambda: slog.append(next(count), stats[0]), repeats * 4))
        slog = SampledStatsLog.create(sampled_path, ids)
        for e in range(epochs):
            slog.append(e, stats[e % 8])
        print(f"log size after {epochs} epochs: uniform {os.path.getsize(path) / 2**20:.0f} MiB, "
              f"with positions {os.path.getsize(sampled_path) / 2**20:.0f} MiB", flush=True)
        show(f"write the stats pickle of {epochs} epochs from the sampled format",
             timed(lambda: write_stats_pickle(sampled_path, epochs, pickle_path), max(1, repeats // 2)),
             "s", 1)


if __name__ == "__main__":
    main()
