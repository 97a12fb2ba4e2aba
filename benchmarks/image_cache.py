#!/usr/bin/env python
"""run_images.py's image cache: decode a folder of small PNGs once, then read the cache.

    python benchmarks/image_cache.py                  # 50,000 32x32 RGB PNGs, 10 classes
    python benchmarks/image_cache.py --n 5000         # smaller

Writes ``--n`` random 32x32 RGB PNGs into a temporary ``<tmp>/pngs/train/<class>/`` and
``test/<class>/`` (5/6 train, 1/6 test, as CIFAR-10), then times ``load_user_data`` (what
run_images.py does before training: list, stat, decode or read the cache, build the tensors)
three times: the first run (decodes with Pillow and writes the cache), a second run (reads the
cache) and a run after one file was touched (decodes again). The folder is removed at the end.
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from _common import header, peak_rss_mib, REPO  # noqa: F401  (REPO: puts the repository on sys.path)


def write_pngs(root, n, classes=10, size=32, seed=0):
    from PIL import Image

    rng = np.random.RandomState(seed)
    n_test = n // 6
    for index in range(n):
        split = "test" if index < n_test else "train"
        folder = os.path.join(root, split, f"class{index % classes}")
        os.makedirs(folder, exist_ok=True)
        pixels = rng.randint(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{index:06d}.png"))


def timed_load(root, said):
    from forgetting.data.user_data import load_user_data

    started = time.perf_counter()
    data = load_user_data(root, None, say=said.append)
    return time.perf_counter() - started, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000, help="number of PNGs (default: 50000)")
    args = parser.parse_args()
    header(f"image cache: {args.n} PNGs of 32x32 RGB")
    work = tempfile.mkdtemp(prefix="image_cache_")
    try:
        root = os.path.join(work, "pngs")
        started = time.perf_counter()
        write_pngs(root, args.n)
        print(f"wrote {args.n} PNGs in {time.perf_counter() - started:.1f} s", flush=True)
        said = []
        first, data = timed_load(root, said)
        second, again = timed_load(root, said)
        assert np.array_equal(data.train_x.numpy(), again.train_x.numpy())
        touched = os.path.join(root, "train", "class9", f"{args.n - 1:06d}.png")
        os.utime(touched, ns=(os.stat(touched).st_atime_ns, os.stat(touched).st_mtime_ns + 10**9))
        third, _ = timed_load(root, said)
        cache = os.path.join(root, ".forgetting_cache")
        size = sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache))
        for line in said:
            print("  " + line.replace(work, "<tmp>"))
        print(f"shape {tuple(data.train_x.shape)} train + {tuple(data.test_x.shape)} test; cache "
              f"{size / 2**20:.1f} MiB")
        print(f"first run (decode + write cache): {first:.2f} s")
        print(f"second run (read cache):          {second:.2f} s  ({first / second:.0f}x faster)")
        print(f"after touching one file (decode): {third:.2f} s")
        print(f"peak RSS {peak_rss_mib():.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
