#!/usr/bin/env python
"""Items 1 and 2 of the benchmark issue: what one epoch costs over the bare training loop,
and against the original scripts' way of doing the same epoch.

Three ways of doing one epoch, measured side by side in this one process, in rounds
(bare, real, original, bare, real, original, ...) so that load from other processes hits
all three alike; the figures are medians over rounds, with min-max next to them:

* bare: the limit. Same model, batch size, optimiser; the data already in memory as
  normalised float tensors (CIFAR: uint8 + the same batched crop/flip/cutout the real path
  uses, since augmentation is training work, not overhead); a shuffled pass with mean loss,
  backward, step; then the test set in eval mode (the script must report test accuracy
  every epoch, so the test pass is part of the limit). No statistics, no saving.
* real: ``run_mnist.main(argv)`` / ``run_cifar.main(argv)`` themselves, with only the
  dataset loader replaced by synthetic data of the real shapes (no download here). An
  epoch is the wall time between two consecutive "epoch k/E" log lines, so it holds
  everything the user waits for: training with statistics, test, host copy, the commit
  thread's work, the legacy-pickle refresher child competing for the cores.
* original: a re-enactment of the original scripts' epoch (mtoneva/example_forgetting):
  a ``__getitem__`` + torchvision transform per example (PIL image, ToTensor, Normalize;
  CIFAR: RandomCrop(32, 4), RandomHorizontalFlip, Cutout), a ``torch.sort`` and ``.item()``
  calls per example, the running train accuracy per batch, the test pass (MNIST: batches
  of 1000 from a DataLoader; CIFAR: per-example ``__getitem__``, batches of 32), then the
  whole stats dict pickled again and best_acc.txt rewritten. The pickle grows every epoch,
  so the script also times that rewrite at 100 epochs (the average over a 200-epoch run).

The first epoch of every run is warm-up and not counted (bare and real alike).
"""
import argparse
import contextlib
import io
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import warnings
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, median, spread  # noqa: E402

import run_cifar  # noqa: E402
import run_mnist  # noqa: E402
from cutout import Cutout  # noqa: E402
from forgetting.files import stats_pickle  # noqa: E402
from forgetting.data.transforms import train_transform  # noqa: E402
from forgetting.training.optim import make_optimizer  # noqa: E402
from forgetting.data.datasets import CIFAR_MEAN, CIFAR_STD, MNIST_MEAN, MNIST_STD, ImageData  # noqa: E402
from models import MnistNet, ResNet18  # noqa: E402

EVAL_BATCH = 1000


# ---------------------------------------------------------------- synthetic data

def synthetic_images(n_train, n_test, shape, seed=0):
    """Random uint8 images and balanced random labels of the real shapes."""
    rng = np.random.default_rng(seed)

    def split(n):
        x = torch.from_numpy(rng.integers(0, 256, (n, *shape), dtype=np.uint8))
        y = torch.from_numpy(rng.permutation(np.arange(n) % 10).astype(np.int64))
        return x, y

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    return train_x, train_y, test_x, test_y


def mnist_data(n_train, n_test):
    return ImageData(*synthetic_images(n_train, n_test, (1, 28, 28)), MNIST_MEAN, MNIST_STD, 10)


def cifar_data(n_train, n_test):
    return ImageData(*synthetic_images(n_train, n_test, (3, 32, 32), seed=1), CIFAR_MEAN, CIFAR_STD, 10)


def normalised(images, mean, std):
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


# ---------------------------------------------------------------- bare loop

def bare_epochs(model, optimizer, train_x, train_y, test_x, test_y, batch_size, epochs,
                loss_fn, prepare=lambda x: x):
    """Per-epoch seconds of the bare loop (see module docstring)."""
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_y))
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(prepare(train_x[positions])), train_y[positions])
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(test_y), EVAL_BATCH):
                outputs = model(test_x[start:start + EVAL_BATCH])
                correct += int((outputs.argmax(1) == test_y[start:start + EVAL_BATCH]).sum())
        times.append(time.perf_counter() - started)
    return times


def bare_mnist(data, epochs, batch_size=64):
    model = MnistNet(dropout=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    return bare_epochs(model, optimizer, normalised(data.train_x, data.mean, data.std), data.train_y,
                       normalised(data.test_x, data.mean, data.std), data.test_y, batch_size, epochs,
                       lambda out, y: F.nll_loss(out, y))


def bare_cifar(data, epochs, batch_size=128):
    model = ResNet18()
    optimizer, _ = make_optimizer("sgd", model.parameters(), 0.1)
    generator = torch.Generator()
    generator.manual_seed(1)
    prepare = train_transform(data.mean, data.std, torch.device("cpu"), True, True, 1, 16, generator)
    return bare_epochs(model, optimizer, data.train_x, data.train_y,
                       normalised(data.test_x, data.mean, data.std), data.test_y, batch_size, epochs,
                       lambda out, y: F.cross_entropy(out, y), prepare)


# ---------------------------------------------------------------- the real scripts

class _TimedLines(io.TextIOBase):
    """A stdout that remembers when each line arrived."""

    def __init__(self):
        self.lines, self._partial = [], ""

    def write(self, text):
        now = time.perf_counter()
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        self.lines.extend((now, line) for line in done)
        return len(text)


EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) \|.*\| ([0-9.]+) s$")


def real_epochs(script, loader_name, data, argv):
    """Per-epoch wall seconds of ``script.main(argv)`` with its dataset loader replaced.

    Returns (times of epochs 2.., seconds from the last epoch line to main() returning,
    the first epoch's self-reported seconds).
    """
    out_dir = tempfile.mkdtemp(prefix="bench_epoch_")
    stdout = _TimedLines()
    try:
        with mock.patch.object(script, loader_name, lambda *a, **k: data), \
                contextlib.redirect_stdout(stdout):
            script.main(argv + ["--output_dir", out_dir])
        finished = time.perf_counter()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    stamps = [(t, EPOCH_LINE.match(line)) for t, line in stdout.lines]
    stamps = [(t, m) for t, m in stamps if m]
    if not stamps:
        raise RuntimeError("no epoch lines in the output:\n" + "\n".join(l for _, l in stdout.lines))
    times = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    return times, finished - stamps[-1][0], float(stamps[0][1].group(3))


# ---------------------------------------------------------------- the original's way

class OriginalMNIST(torch.utils.data.Dataset):
    """torchvision's MNIST ``__getitem__``: a PIL image per example, then the transform."""

    def __init__(self, images, labels, transform):
        self.data, self.targets, self.transform = images, labels, transform
        self.train_labels = labels  # the original read the old attribute name

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        from PIL import Image
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        return self.transform(img), target


class OriginalCIFAR(OriginalMNIST):
    """torchvision's CIFAR10 ``__getitem__`` (HWC uint8 -> PIL RGB image -> transform)."""

    def __getitem__(self, index):
        from PIL import Image
        img, target = self.data[index], int(self.targets[index])
        return self.transform(Image.fromarray(img)), target


def original_train_epoch(model, optimizer, trainset, train_indx, batch_size, example_stats):
    """The original's ``train()``: per-example transform, sort and .item() calls."""
    criterion = torch.nn.CrossEntropyLoss(reduction="none")
    correct, total = 0, 0
    model.train()
    permutation = np.random.permutation(np.arange(len(trainset.train_labels)))
    for batch_start in range(0, len(trainset.train_labels), batch_size):
        batch_inds = permutation[batch_start:batch_start + batch_size]
        inputs = torch.stack([trainset.__getitem__(ind)[0] for ind in batch_inds])
        targets = torch.LongTensor(np.array(trainset.train_labels)[batch_inds].tolist())
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        _, predicted = torch.max(outputs.data, 1)
        acc = predicted == targets
        for j, index in enumerate(batch_inds):
            index_in_original_dataset = train_indx[index]
            output_correct_class = outputs.data[j, targets[j].item()]
            sorted_output, _ = torch.sort(outputs.data[j, :])
            if acc[j]:
                output_highest_incorrect_class = sorted_output[-2]
            else:
                output_highest_incorrect_class = sorted_output[-1]
            margin = output_correct_class.item() - output_highest_incorrect_class.item()
            index_stats = example_stats.get(index_in_original_dataset, [[], [], []])
            index_stats[0].append(loss[j].item())
            index_stats[1].append(acc[j].sum().item())
            index_stats[2].append(margin)
            example_stats[index_in_original_dataset] = index_stats
        loss = loss.mean()
        total += targets.size(0)
        correct += predicted.eq(targets.data).cpu().sum()
        loss.backward()
        optimizer.step()
        index_stats = example_stats.get("train", [[], []])
        index_stats[1].append(100. * correct.item() / float(total))
        example_stats["train"] = index_stats


def original_test_mnist(model, testset, example_stats):
    model.eval()
    loader = torch.utils.data.DataLoader(testset, batch_size=EVAL_BATCH, shuffle=False)
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            pred = model(data).max(1, keepdim=True)[1]
            correct += pred.eq(target.view_as(pred)).sum().item()
    example_stats.setdefault("test", [[], []])[1].append(100. * correct / len(testset))


def original_test_cifar(model, testset, example_stats, out_dir, best):
    """The original's CIFAR test(): per-example __getitem__, batches of 32, best checkpoint."""
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():  # generous: the original tracked gradients here
        for start in range(0, len(testset), 32):
            inds = range(start, min(len(testset), start + 32))
            inputs = torch.stack([testset.__getitem__(i)[0] for i in inds])
            targets = torch.LongTensor(np.array(testset.train_labels)[list(inds)].tolist())
            _, predicted = torch.max(model(inputs).data, 1)
            total += targets.size(0)
            correct += predicted.eq(targets.data).cpu().sum()
    acc = 100. * correct.item() / total
    example_stats.setdefault("test", [[], []])[1].append(acc)
    if acc > best[0]:
        torch.save({"acc": acc, "epoch": 0, "net": model.state_dict()}, os.path.join(out_dir, "ckpt.t7"))
        best[0] = acc


def original_save(example_stats, out_dir):
    """The whole dict pickled again and best_acc.txt rewritten, every epoch."""
    with open(os.path.join(out_dir, "x__stats_dict.pkl"), "wb") as f:
        pickle.dump(example_stats, f)
    with open(os.path.join(out_dir, "x__best_acc.txt"), "w") as f:
        f.write("train test \n")
        f.write(str(max(example_stats["train"][1])))
        f.write(" ")
        f.write(str(max(example_stats["test"][1])))


def original_mnist_epoch(data):
    from torchvision import transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    trainset = OriginalMNIST(data.train_x[:, 0], data.train_y, tf)
    testset = OriginalMNIST(data.test_x[:, 0], data.test_y, tf)
    model = MnistNet(dropout=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    train_indx = np.arange(len(trainset))  # numpy ids: numpy.int64 keys, as the original
    stats = {}
    out_dir = tempfile.mkdtemp(prefix="bench_orig_")
    try:
        started = time.perf_counter()
        original_train_epoch(model, optimizer, trainset, train_indx, 64, stats)
        original_test_mnist(model, testset, stats)
        original_save(stats, out_dir)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def original_cifar_epoch(data):
    from torchvision import transforms
    mean, std = [x / 255.0 for x in (125.3, 123.0, 113.9)], [x / 255.0 for x in (63.0, 62.1, 66.7)]
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean, std), Cutout(1, 16)])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    hwc = lambda x: x.permute(0, 2, 3, 1).contiguous().numpy()  # noqa: E731 - CIFAR's .data layout
    # CIFAR10's targets are a Python list
    trainset = OriginalCIFAR(hwc(data.train_x), data.train_y.tolist(), train_tf)
    testset = OriginalCIFAR(hwc(data.test_x), data.test_y.tolist(), test_tf)
    model = ResNet18()
    optimizer, _ = make_optimizer("sgd", model.parameters(), 0.1)
    train_indx = np.arange(len(trainset))
    stats = {}
    out_dir = tempfile.mkdtemp(prefix="bench_orig_")
    try:
        started = time.perf_counter()
        original_train_epoch(model, optimizer, trainset, train_indx, 128, stats)
        original_test_cifar(model, testset, stats, out_dir, [0.0])
        original_save(stats, out_dir)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def original_pickle_rewrite(n, epochs, batches_per_epoch):
    """Seconds to pickle.dump the original's dict of ``n`` examples x ``epochs`` (what its
    save costs at that epoch), built with numpy.int64 keys as the original had them."""
    rng = np.random.default_rng(0)
    ids = np.arange(n)
    records = np.zeros(epochs, dtype=[("loss", "<f4", (n,)), ("margin", "<f8", (n,)), ("acc", "u1", (n,)),
                                      ("train_acc", "<f8", (batches_per_epoch,)), ("test_acc", "<f8")])
    records["loss"] = rng.random((epochs, n), dtype=np.float32)
    records["margin"] = rng.standard_normal((epochs, n))
    records["acc"] = rng.integers(0, 2, (epochs, n))
    stats = stats_pickle.build_stats_dict(ids, records)
    stats = {(np.int64(k) if not isinstance(k, str) else k): v for k, v in stats.items()}
    out_dir = tempfile.mkdtemp(prefix="bench_orig_")
    try:
        started = time.perf_counter()
        with open(os.path.join(out_dir, "x.pkl"), "wb") as f:
            pickle.dump(stats, f)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# ---------------------------------------------------------------- thread settings

def thread_settings(batches_mnist, batches_resnet, repeats):
    """Seconds per MNIST batch of 64 and per ResNet18 batch of 128, under 1 and 2 threads."""
    print("\n-- torch.set_num_threads: 1 vs 2 (bare training step, median and min-max of "
          f"{repeats} repeats) --")
    before = torch.get_num_threads()
    results = {}
    for name, batches, build, batch, shape in (
            ("MnistNet, batch 64", batches_mnist, lambda: MnistNet(dropout=False), 64, (1, 28, 28)),
            ("ResNet18, batch 128", batches_resnet, ResNet18, 128, (3, 32, 32))):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = build()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
            x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                for _ in range(batches):
                    optimizer.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    optimizer.step()
                times.append((time.perf_counter() - started) / batches)
            results[(name, threads)] = times
            print(f"{name:22s} threads {threads}: {1000 * median(times):8.2f} ms/batch "
                  f"(min-max {1000 * min(times):.2f}-{1000 * max(times):.2f})", flush=True)
    torch.set_num_threads(before)
    return results


# ---------------------------------------------------------------- main

def measure(name, rounds, bare, real, original):
    bare_t, real_t, orig_t, tails = [], [], [], []
    for r in range(rounds):
        b = bare()
        bare_t += b[1:]
        times, tail, _ = real()
        real_t += times
        tails.append(tail)
        if original is not None:
            orig_t.append(original())
        print(f"  round {r + 1}: bare {median(b[1:]):.3f} s, real {median(times):.3f} s"
              + (f", original {orig_t[-1]:.3f} s" if original is not None else ""), flush=True)
    return bare_t, real_t, orig_t, tails


def report(name, bare_t, real_t, orig_t, tails, target):
    ratio = median(real_t) / median(bare_t)
    print(f"{name}: bare {median(bare_t):.3f} s/epoch ({spread(bare_t)}), real {median(real_t):.3f} "
          f"s/epoch ({spread(real_t)}); overhead ratio {ratio:.3f} (target <= {target}: "
          f"{'met' if ratio <= target else 'MISSED'}); end of run (final pickle etc.) "
          f"{median(tails):.3f} s once", flush=True)
    if orig_t:
        print(f"{name}: original re-enactment {median(orig_t):.3f} s/epoch ({spread(orig_t)}); "
              f"speed-up {median(orig_t) / median(real_t):.2f}x at epoch 1", flush=True)
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (< 1 min)")
    parser.add_argument("--only", choices=("threads", "mnist", "cifar"), action="append",
                        help="run only these parts (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of bare/real/original")
    parser.add_argument("--mnist_threads", type=int, default=1)
    parser.add_argument("--cifar_threads", type=int, default=1)
    args = parser.parse_args(argv)
    parts = args.only or ["threads", "mnist", "cifar"]
    quick = args.quick
    # np.array(tensor) on MNIST's label tensor, as the original did, warns under numpy 2
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    rounds = args.rounds or (1 if quick else 3)
    cifar_rounds = args.rounds or (1 if quick else 2)
    header("epoch overhead (items 1 and 2)" + (" --quick" if quick else ""))

    if "threads" in parts:
        thread_settings(20 if quick else 200, 1 if quick else 2, 2 if quick else 5)

    if "mnist" in parts:
        n, n_test, epochs = (6000, 1000, 3) if quick else (60000, 10000, 4)
        data = mnist_data(n, n_test)
        threads = args.mnist_threads
        print(f"\n-- MNIST, {n} training / {n_test} test examples, no dropout, batch 64, "
              f"{threads} thread(s), {rounds} round(s) of {epochs} epochs (first not counted) --")
        torch.set_num_threads(threads)
        argv_m = ["--dataset", "mnist", "--no_dropout", "--epochs", str(epochs), "--device", "cpu",
                  "--threads", str(threads)]
        res = measure("MNIST", rounds, lambda: bare_mnist(data, epochs),
                      lambda: real_epochs(run_mnist, "load_mnist_family", data, argv_m),
                      lambda: original_mnist_epoch(data))
        report("MNIST", *res, 1.05)
        if not quick:
            rewrite = original_pickle_rewrite(n, 100, -(-n // 64))
            avg_orig = median(res[2]) + rewrite - original_pickle_rewrite(n, 1, -(-n // 64))
            print(f"MNIST: original's pickle rewrite at epoch 100 (60,000 x 100, numpy.int64 keys): "
                  f"{rewrite:.2f} s; its average epoch over 200 epochs ~ {avg_orig:.2f} s; speed-up "
                  f"averaged over the run {avg_orig / median(res[1]):.2f}x", flush=True)

    if "cifar" in parts:
        n, n_test, epochs = (128, 100, 3) if quick else (384, 256, 3)
        data = cifar_data(n, n_test)
        threads = args.cifar_threads
        print(f"\n-- CIFAR-10 subset, ResNet18, augmentation + cutout, {n} training / {n_test} test "
              f"examples, batch 128, {threads} thread(s), {cifar_rounds} round(s) of {epochs} epochs "
              "(first not counted) --")
        torch.set_num_threads(threads)
        argv_c = ["--dataset", "cifar10", "--data_augmentation", "--cutout", "--epochs", str(epochs),
                  "--device", "cpu", "--threads", str(threads)]
        res = measure("CIFAR", cifar_rounds, lambda: bare_cifar(data, epochs),
                      lambda: real_epochs(run_cifar, "load_cifar", data, argv_c),
                      lambda: original_cifar_epoch(data))
        report("CIFAR", *res, 1.03)


if __name__ == "__main__":
    main()
