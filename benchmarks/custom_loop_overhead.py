"""What ``forgetting.Recorder`` costs a user's loop: the same plain loop with and without it.

The loop: the paper's MNIST model (models.MnistNet, dropout) on the bundled 4,000 MNIST
training digits, batches of 128 in a fresh ``torch.randperm`` order, SGD with momentum; a
test pass over the 1,000 test digits per epoch. "recorded" adds ``rec.record`` per batch,
``rec.end_epoch`` per epoch and the Recorder's start and close (lock, run record, final
stats pickle) to the timed span. Runs alternate (bare, recorded, bare, ...) so load on the
machine hits both alike; the figure is the ratio of the medians (target: at most 1.05).

    python benchmarks/custom_loop_overhead.py [--epochs 3] [--repeats 5] [--quick]
"""
import argparse
import tempfile
import time

from _common import machine_line, median, spread

import torch
import torch.nn.functional as F

import forgetting
from forgetting.data.datasets import load_mnist_family
from forgetting.data.transforms import normaliser
from models import MnistNet


def run(data, epochs, out_dir=None):
    """Seconds for ``epochs`` epochs of the loop, recorded into ``out_dir`` unless None."""
    torch.manual_seed(0)
    model = MnistNet(dropout=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    normalise = normaliser(data.mean, data.std, torch.device("cpu"))
    x, test_x = normalise(data.train_x), normalise(data.test_x)
    ids = torch.arange(len(x))
    started = time.perf_counter()
    rec = None
    if out_dir is not None:
        rec = forgetting.Recorder(out_dir, "bench", ids, epochs, 128, model, optimizer,
                                  say=lambda msg: None)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            outputs = model(x[batch])
            if rec is not None:
                rec.record(ids[batch], outputs, data.train_y[batch])
            F.nll_loss(outputs, data.train_y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            test_acc = 100.0 * (model(test_x).argmax(1) == data.test_y).float().mean().item()
        if rec is not None:
            rec.end_epoch(test_acc)
    if rec is not None:
        rec.close()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 repeats: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 1, 2
    torch.set_num_threads(1)
    print(machine_line())
    data = load_mnist_family("mnist_5k", ".")
    run(data, 1)   # warm-up: first-call costs belong to neither side
    bare, recorded = [], []
    for _ in range(args.repeats):
        bare.append(run(data, args.epochs))
        with tempfile.TemporaryDirectory() as out_dir:
            recorded.append(run(data, args.epochs, out_dir))
    print(f"{len(data.train_y)} examples x {args.epochs} epochs, batch 128, 1 thread, "
          f"{args.repeats} repeats (median, min-max):")
    print(f"  bare loop      {median(bare):.3f} s  ({spread(bare)})")
    print(f"  with Recorder  {median(recorded):.3f} s  ({spread(recorded)})")
    print(f"  ratio          {median(recorded) / median(bare):.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
