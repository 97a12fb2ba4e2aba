"""A plain PyTorch loop recorded with ``forgetting.Recorder`` (README, "Your own loop").

    python examples/custom_loop.py --output_dir runs/custom
    python order_examples_by_forgetting.py --input_dir runs/custom --output_dir runs/custom \
        --output_name custom_sorted --epochs 3

Trains a small MLP on the bundled 5,000 MNIST digits (bundled with the package) for --epochs epochs.
"""
import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import forgetting
from forgetting.data.datasets import load_mnist_family

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output_dir", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--resume", action="store_true")
args = parser.parse_args()
torch.manual_seed(0)
data = load_mnist_family("mnist_5k", ".")   # bundled: no download
x, test_x = data.train_x.flatten(1).float() / 255, data.test_x.flatten(1).float() / 255
ids = torch.arange(len(x))   # example ids: here the dataset index
loader = DataLoader(TensorDataset(ids, x, data.train_y), batch_size=128, shuffle=True)
model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

with forgetting.Recorder(args.output_dir, "custom_mlp", ids, args.epochs, 128, model, optimizer,
                         resume=args.resume, config={"lr": 0.1}, n_test=len(test_x)) as rec:
    for epoch in range(rec.epochs_done, args.epochs):
        for batch_ids, inputs, targets in loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            rec.record(batch_ids, outputs, targets)   # before the optimiser step
            F.cross_entropy(outputs, targets).backward()
            optimizer.step()
        with torch.no_grad():
            test_acc = 100.0 * (model(test_x).argmax(1) == data.test_y).float().mean().item()
        rec.end_epoch(test_acc)
        print(f"epoch {epoch + 1}: test acc {test_acc:.2f}%")
print(f"order it: python order_examples_by_forgetting.py --input_dir {args.output_dir} "
      f"--output_dir {args.output_dir} --output_name custom_sorted --epochs {args.epochs}")
