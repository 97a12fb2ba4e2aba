#!/usr/bin/env python
"""Issue 10: the model-based scores' cost.

* grand (``torch.func``: ``vmap(grad(functional_call))``, chunked) against the obvious
  per-example autograd loop (one forward and backward per example), on MnistNet and ResNet18
  at initialisation, same examples: speed-up (target >= 10x) and the largest relative
  difference of the values (target <= 1e-5);
* el2n over 60,000 MNIST-sized examples against the training loop's own test pass
  (``forgetting.training.loop.evaluate``) over the same 60,000 (target: about the same cost).

Random uint8 images and labels (the values do not change the cost). Times are medians of
``--repeats`` runs in this process after one warm-up call each on a few examples (the first
vmap call builds its batching rules: seconds, once per process); the device is ``--device`` (CPU here; record a GPU where
one exists).
"""
import argparse
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, median, spread  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from forgetting.data.transforms import normaliser  # noqa: E402
from forgetting.scores.el2n import el2n_scores  # noqa: E402
from forgetting.scores.grand import default_chunk, grand_scores  # noqa: E402
from forgetting.training.loop import evaluate  # noqa: E402
from models import MnistNet, ResNet18  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(function, device, repeats):
    """(median seconds, all seconds, last result)."""
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        result = function()
        sync(device)
        times.append(time.perf_counter() - started)
    return median(times), times, result


def autograd_loop(model, images, labels, prepare):
    """GraNd the obvious way: one forward and backward per example, norms kept on the device."""
    model.eval()
    norms = []
    for x, y in zip(images, labels):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(prepare(x[None])), y[None]).backward()
        norms.append(torch.sqrt(sum(p.grad.square().sum() for p in model.parameters())))
    return torch.stack(norms).double().cpu().numpy()


def data(n, shape, classes, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return images.to(device), labels.to(device)


def bench_grand(name, model, n, shape, mean, std, device, repeats):
    images, labels = data(n, shape, 10, device)
    prepare = normaliser(mean, std, device)
    model = model.to(device)
    # one warm-up call each on a few examples: the first vmap call builds its batching rules
    autograd_loop(model, images[:2], labels[:2], prepare)
    grand_scores(model, images[:4], labels[:4], prepare)
    loop_s, loop_all, expected = timed(lambda: autograd_loop(model, images, labels, prepare), device, repeats)
    vmap_s, vmap_all, got = timed(lambda: grand_scores(model, images, labels, prepare), device, repeats)
    worst = float(abs(got - expected).max() / abs(expected).max())
    worst_each = float((abs(got - expected) / abs(expected)).max())
    print(f"  grand {name:9s} {n:5d} examples (chunk {default_chunk(model)}): loop {loop_s:7.3f} s "
          f"({spread(loop_all)}), vmap {vmap_s:7.3f} s ({spread(vmap_all)}): {loop_s / vmap_s:5.1f}x "
          f"(target >= 10x: {'met' if loop_s / vmap_s >= 10 else 'MISSED'}); largest relative "
          f"difference {worst_each:.1e} (target <= 1e-5: {'met' if worst_each <= 1e-5 else 'MISSED'}; "
          f"{worst:.1e} of the largest value)", flush=True)


def bench_el2n(n, device, repeats):
    images, labels = data(n, (1, 28, 28), 10, device)
    prepare = normaliser((0.1307,), (0.3081,), device)
    torch.manual_seed(0)
    model = MnistNet().to(device)
    job = types.SimpleNamespace(model=model, device=device, test_x=images, test_y=labels,
                                prepare_test=prepare, amp=False)
    evaluate(job), el2n_scores(model, images[:1000], labels[:1000], prepare)  # warm-up
    test_s, test_all, _ = timed(lambda: evaluate(job), device, repeats)
    el2n_s, el2n_all, _ = timed(lambda: el2n_scores(model, images, labels, prepare), device, repeats)
    print(f"  el2n  MnistNet  {n:5d} examples: el2n {el2n_s:6.3f} s ({spread(el2n_all)}), the test pass "
          f"(loop.evaluate) over the same examples {test_s:6.3f} s ({spread(test_all)}): "
          f"{el2n_s / test_s:.2f}x", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist_n", type=int, default=512, help="examples for grand on MnistNet")
    parser.add_argument("--resnet_n", type=int, default=32, help="examples for grand on ResNet18")
    parser.add_argument("--el2n_n", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 / 8 / 6,000 examples, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.mnist_n, args.resnet_n, args.el2n_n, args.repeats = 64, 8, 6000, 1
    device = torch.device(args.device)
    header(f"model-based scores (issue 10) on {device}, {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    bench_grand("MnistNet", MnistNet(), args.mnist_n, (1, 28, 28), (0.1307,), (0.3081,), device, args.repeats)
    torch.manual_seed(0)
    cifar = ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255))
    bench_grand("ResNet18", ResNet18(), args.resnet_n, (3, 32, 32), *cifar, device, args.repeats)
    bench_el2n(args.el2n_n, device, args.repeats)


if __name__ == "__main__":
    main()
