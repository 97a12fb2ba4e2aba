"""forgetting.data.images.example_images: the pixels and labels of given example ids are the
training loaders' (forgetting.data.datasets), for every dataset of the training scripts,
read from files in the real on-disk formats (bundled mnist_5k, MNIST's IDX files, CIFAR's
pickle batches)."""
import numpy as np
import pytest
import torch

from cifar_fixtures import patch_checksums
from forgetting.data.datasets import load_cifar, load_mnist_family
from forgetting.data.images import example_images
from forgetting.errors import UsageError
from helpers import write_small_mnist

IDS = [7, 0, 123, 7, 42]  # any order, repeats allowed


def loader_view(data, ids):
    """What the training loader holds for ``ids``, in the layout example_images shows."""
    x = data.train_x[ids].numpy()
    return (x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)), data.train_y[ids].numpy()


def assert_same(found, expected):
    (images, labels), (want_images, want_labels) = found, expected
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.array_equal(images, want_images) and np.array_equal(labels, want_labels)


@pytest.mark.parametrize("dataset, seed", [("mnist_5k", 1), ("permuted_mnist_5k", 3)])
def test_bundled_digits_as_the_training_loader_gives_them(dataset, seed):
    state = torch.get_rng_state()
    found = example_images(dataset, IDS, seed=seed)
    assert torch.equal(torch.get_rng_state(), state)   # the caller's random state untouched
    torch.manual_seed(seed)                            # as run_mnist.py seeds before loading
    assert_same(found, loader_view(load_mnist_family(dataset, None), IDS))
    assert found[0].shape == (len(IDS), 28, 28)


@pytest.mark.parametrize("dataset", ["mnist", "permuted_mnist"])
def test_torchvision_mnist_from_its_idx_files(dataset, tmp_path):
    arrays = write_small_mnist(tmp_path)
    found = example_images(dataset, IDS, data_dir=str(tmp_path), seed=2)
    torch.manual_seed(2)
    assert_same(found, loader_view(load_mnist_family(dataset, str(tmp_path)), IDS))
    if dataset == "mnist":  # and the file's own bytes, not only the loader's
        assert np.array_equal(found[0], arrays["train_x"][IDS])


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_from_its_pickle_batches(dataset, cifar10, cifar100, monkeypatch):
    root, arrays, checksums = cifar10 if dataset == "cifar10" else cifar100
    patch_checksums(monkeypatch, checksums)
    found = example_images(dataset, IDS, data_dir=str(root))
    assert found[0].shape == (len(IDS), 32, 32, 3)
    assert_same(found, loader_view(load_cifar(dataset, str(root)), IDS))
    assert np.array_equal(found[0], arrays["train_x"][IDS].transpose(0, 2, 3, 1))


def test_ids_outside_the_training_set_and_unknown_datasets_are_refused():
    with pytest.raises(UsageError, match="example id 4000 is not in mnist_5k's 4,000"):
        example_images("mnist_5k", [3, 4000])
    with pytest.raises(UsageError, match="--dataset svhn"):
        example_images("svhn", [0])
