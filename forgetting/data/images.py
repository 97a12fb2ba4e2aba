"""Training images by example id, for looking at them (plot_figures.py gallery, notebooks).

``example_images(dataset, ids, data_dir=None, seed=1)`` returns the uint8 pixels and the
labels of the training examples ``ids`` exactly as the training scripts load them
(forgetting.data.datasets: the same loaders, the same ids), in the layout images are shown in:
``N x 28 x 28`` for the MNIST family, ``N x 32 x 32 x 3`` (height, width, RGB) for CIFAR.
The ``permuted_*`` datasets are shown permuted, with the pixel permutation a run of that
``seed`` draws (``torch.randperm(784)`` right after ``torch.manual_seed(seed)``; each seed has
its own), drawn here from a private generator so the caller's random state is untouched.
"""
import numpy as np
import torch

from forgetting.errors import UsageError
from forgetting.data.datasets import (CIFAR_DATASETS, MNIST_DATASETS, load_cifar, load_mnist_5k,
                                      load_torchvision_mnist, permute_pixels)

DATASETS = MNIST_DATASETS + CIFAR_DATASETS
DEFAULT_DATA_DIR = "/tmp/data"  # the training scripts' --data_dir default
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def run_permutation(seed):
    """The pixel permutation of a ``permuted_*`` run with ``--seed seed``."""
    generator = torch.Generator().manual_seed(seed)  # the CPU default generator's stream
    return torch.randperm(784, generator=generator)


def _training_set(dataset, data_dir, seed):
    if dataset in CIFAR_DATASETS:
        return load_cifar(dataset, data_dir)
    data = load_mnist_5k() if dataset.endswith("_5k") else load_torchvision_mnist(data_dir)
    return permute_pixels(data, run_permutation(seed)) if dataset.startswith("permuted_") else data


def example_images(dataset, ids, data_dir=None, seed=1):
    """``(images, labels)`` of the training examples ``ids`` (in that order): uint8 numpy
    images (N x H x W for the MNIST family, N x H x W x 3 for CIFAR) and int64 labels. A
    UsageError for an unknown dataset or an id outside the training set."""
    if dataset not in DATASETS:
        raise UsageError(f"--dataset {dataset} has no images here; use one of {', '.join(DATASETS)}")
    data = _training_set(dataset, data_dir or DEFAULT_DATA_DIR, seed)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = len(data.train_y)
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise UsageError(f"example id {bad[0]} is not in {dataset}'s {n:,} training examples; "
                         "the sorting file was made for another dataset")
    chosen = torch.from_numpy(ids)
    images = data.train_x[chosen].numpy()               # N x C x H x W
    images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), data.train_y[chosen].numpy().astype(np.int64)
