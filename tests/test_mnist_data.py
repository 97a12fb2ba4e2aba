"""The MNIST data sources of run_mnist.py (docs/training.md#mnist): torchvision's raw IDX files, the
bundled mnist_5k split, the per-seed pixel permutation, and the offline download error."""
import gzip

import numpy as np
import pytest
import torch

from forgetting.data import datasets as fdata
from forgetting.data.datasets import (load_mnist_5k, load_mnist_family, load_torchvision_mnist,
                                     mnist_5k_path, permute_pixels)
from forgetting.errors import UsageError
from helpers import write_small_mnist


# ----------------------------------------------------------------------------- a small MNIST

@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist_idx")
    return root, write_small_mnist(root)


def test_torchvision_mnist_reads_the_raw_files(small_mnist):
    root, arrays = small_mnist
    data = load_torchvision_mnist(str(root))
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    assert data.train_x.shape == (300, 1, 28, 28) and data.test_x.shape == (100, 1, 28, 28)
    assert np.array_equal(data.train_x[:, 0].numpy(), arrays["train_x"])
    assert np.array_equal(data.train_y.numpy(), arrays["train_y"].astype(np.int64))
    assert np.array_equal(data.test_x[:, 0].numpy(), arrays["test_x"])
    assert np.array_equal(data.test_y.numpy(), arrays["test_y"].astype(np.int64))
    assert data.mean == (0.1307,) and data.std == (0.3081,) and data.num_classes == 10


def test_permuted_torchvision_mnist(small_mnist):
    root, arrays = small_mnist
    torch.manual_seed(4)
    data = load_mnist_family("permuted_mnist", str(root))
    torch.manual_seed(4)
    perm = torch.randperm(784).numpy()
    assert np.array_equal(data.train_x[:, 0].numpy().reshape(-1, 784), arrays["train_x"].reshape(-1, 784)[:, perm])
    assert np.array_equal(data.test_x[:, 0].numpy().reshape(-1, 784), arrays["test_x"].reshape(-1, 784)[:, perm])
    assert np.array_equal(data.train_y.numpy(), arrays["train_y"])
    plain = load_mnist_family("mnist", str(root))
    assert torch.equal(plain.train_x, load_torchvision_mnist(str(root)).train_x)


# ----------------------------------------------------------------------------- mnist_5k

@pytest.fixture(scope="module")
def csv_rows():
    """The bundled csv read with a plain loop: (pixels list, label) per row in file order."""
    rows = []
    with gzip.open(mnist_5k_path(), "rt") as handle:
        for line in handle:
            values = [int(v) for v in line.strip().split(",")]
            assert len(values) == 785
            rows.append((values[:784], values[784]))
    return rows


@pytest.fixture(scope="module")
def mnist_5k():
    return load_mnist_5k()


def test_csv_is_what_the_spec_says(csv_rows):
    labels = [label for _, label in csv_rows]
    assert len(csv_rows) == 5000
    assert sorted(set(labels)) == list(range(10))
    assert all(labels.count(c) == 500 for c in range(10))


def shuffled_ids(n):
    """The documented id rule: training row perm[i] (file order) gets id i, with numpy's frozen
    legacy generator, so every machine and numpy version numbers the digits alike."""
    return np.random.RandomState(0).permutation(n).tolist()


def test_the_id_shuffle_is_pinned():
    """The permutation the ids come from, written out: a numpy that drew it differently would
    renumber every mnist_5k digit (and break every sorting file made with it)."""
    perm = shuffled_ids(4000)
    assert perm[:10] == [2230, 668, 3616, 2363, 142, 538, 1791, 410, 1150, 1032]
    assert sorted(perm) == list(range(4000))
    assert sum(i * p for i, p in enumerate(perm)) == 16032472134


def test_mnist_5k_split(csv_rows, mnist_5k):
    seen = {c: 0 for c in range(10)}
    train, test = [], []
    for pixels, label in csv_rows:
        (train if seen[label] < 400 else test).append((pixels, label))
        seen[label] += 1
    assert len(train) == 4000 and len(test) == 1000
    train = [train[row] for row in shuffled_ids(4000)]

    d = mnist_5k
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert np.bincount(d.train_y.numpy()).tolist() == [400] * 10
    assert np.bincount(d.test_y.numpy()).tolist() == [100] * 10
    # training id i is training row perm[i] (rows in file order); test rows in file order
    assert d.train_y.tolist() == [label for _, label in train]
    assert d.test_y.tolist() == [label for _, label in test]
    assert np.array_equal(d.train_x.reshape(4000, 784).numpy(), np.array([p for p, _ in train], dtype=np.uint8))
    assert np.array_equal(d.test_x.reshape(1000, 784).numpy(), np.array([p for p, _ in test], dtype=np.uint8))
    assert d.mean == (0.1307,) and d.std == (0.3081,) and d.num_classes == 10


def test_mnist_5k_ids_do_not_follow_the_class(mnist_5k):
    """The file is grouped by class; the ids must not be (ties in a sorting file follow the id)."""
    labels = mnist_5k.train_y.tolist()
    assert labels[:20] == [5, 1, 9, 5, 0, 1, 4, 1, 2, 2, 5, 0, 7, 5, 8, 4, 7, 6, 9, 7]
    for start in range(0, 4000, 1000):  # every quarter of the ids holds about 100 of each class
        counts = [labels[start:start + 1000].count(c) for c in range(10)]
        assert min(counts) >= 70 and max(counts) <= 130, counts
    # the 1,000 lowest ids, per class, pinned: what "--remove_n 1000" takes from a file of ties
    assert [labels[:1000].count(c) for c in range(10)] == [100, 117, 98, 102, 91, 99, 85, 106, 94, 108]


def test_mnist_5k_split_of_shuffled_rows(tmp_path, csv_rows):
    """The split is per class in file order even when classes are interleaved in the file."""
    order = np.random.RandomState(0).permutation(len(csv_rows))[:1200]
    rows = [csv_rows[i] for i in order]
    path = tmp_path / "shuffled.csv.gz"
    with gzip.open(path, "wt") as handle:
        for pixels, label in rows:
            handle.write(",".join(map(str, pixels + [label])) + "\n")
    counts = {c: 0 for c in range(10)}
    train_rows = []
    for i, (_, label) in enumerate(rows):
        if counts[label] < 400:
            train_rows.append(i)
        counts[label] += 1
    expected_train = [train_rows[k] for k in shuffled_ids(len(train_rows))]
    d = load_mnist_5k(str(path))
    assert d.train_y.tolist() == [rows[i][1] for i in expected_train]
    assert np.array_equal(d.train_x.reshape(-1, 784).numpy(),
                          np.array([rows[i][0] for i in expected_train], dtype=np.uint8))
    assert len(d.train_y) + len(d.test_y) == 1200


@pytest.mark.parametrize("seed", [1, 2])
def test_permuted_mnist_5k(mnist_5k, seed):
    torch.manual_seed(seed)
    permuted = load_mnist_family("permuted_mnist_5k", "/nonexistent")
    torch.manual_seed(seed)
    perm = torch.randperm(784).tolist()
    # manual permutation: pixel k of the new image is pixel perm[k] of the old one
    for split in ("train_x", "test_x"):
        original = getattr(mnist_5k, split).reshape(-1, 784)
        got = getattr(permuted, split).reshape(-1, 784)
        for row in (0, 1, len(original) - 1):
            assert got[row].tolist() == [original[row, perm[k]].item() for k in range(784)]
        assert torch.equal(got, original[:, perm])       # the same permutation for every image
    assert torch.equal(permuted.train_y, mnist_5k.train_y)
    assert torch.equal(permuted.test_y, mnist_5k.test_y)


def test_each_seed_has_its_own_permutation(mnist_5k):
    torch.manual_seed(1)
    a = load_mnist_family("permuted_mnist_5k", "/nonexistent")
    torch.manual_seed(2)
    b = load_mnist_family("permuted_mnist_5k", "/nonexistent")
    assert not torch.equal(a.train_x, b.train_x)


def test_unpermuted_family_draws_nothing(mnist_5k):
    torch.manual_seed(9)
    d = load_mnist_family("mnist_5k", "/nonexistent")
    after = torch.get_rng_state()
    torch.manual_seed(9)
    assert torch.equal(after, torch.get_rng_state())
    assert torch.equal(d.train_x, mnist_5k.train_x)


def test_permute_pixels_multichannel():
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2)
    d = fdata.ImageData(images, torch.zeros(2), images.clone(), torch.zeros(2), (0,), (1,), 10)
    perm = torch.tensor([3, 0, 2, 1])
    out = permute_pixels(d, perm)
    for n in range(2):
        for c in range(3):
            flat = images[n, c].reshape(-1)
            assert out.train_x[n, c].reshape(-1).tolist() == [flat[p].item() for p in perm]
            assert out.test_x[n, c].reshape(-1).tolist() == [flat[p].item() for p in perm]


# ----------------------------------------------------------------------------- offline failure

def test_download_failure_is_one_line(tmp_path, monkeypatch):
    from torchvision import datasets

    # never reach the internet, even on a machine that has it: a refused local port
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    data_dir = tmp_path / "empty"
    with pytest.raises(UsageError) as info:
        load_torchvision_mnist(str(data_dir))
    message = str(info.value)
    assert "\n" not in message
    assert str(data_dir) in message
    assert "--dataset mnist_5k" in message
    assert "--data_dir" in message
