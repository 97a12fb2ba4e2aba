"""Tiny CIFAR-10/100 data sets in CIFAR's own pickle-batch format, for torchvision's loaders.

CIFAR cannot be downloaded here (no network) and the real files are 160 MB, so the tests
write small files with the layout of the real ones (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``, ``batches.meta``; ``cifar-100-python/train``, ``test``, ``meta``: dicts with
``data`` = uint8 rows of 3072 (1024 red, 1024 green, 1024 blue, row-major) and ``labels`` or
``fine_labels``) and let torchvision's real CIFAR10 / CIFAR100 classes read them.

torchvision checks every file's md5 against constants of those classes. The only thing the
tests change is those constants: the md5s of the synthetic files replace the class
attributes ``train_list``, ``test_list`` and ``meta`` (the loader itself, its integrity check
and its unpickling all run as usual). In-process this is ``monkeypatch.setattr``; a
subprocess gets the same patch from a small wrapper script in the test's tmp dir, which then
calls ``run_cifar.main(argv)``. The alternatives were worse: a ``sitecustomize`` would patch
every Python started with that path, and replacing ``check_integrity`` or the loader would
no longer test that the real loader accepts CIFAR's format.
"""
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, call_main

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"


def _md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _dump(path, obj):
    # Protocol 2, str keys: what the Python 2 pickles of the real files load as under
    # torchvision's ``pickle.load(f, encoding="latin1")``.
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def _rows(images):
    """uint8 (N, 3, 32, 32) -> CIFAR's (N, 3072) rows."""
    return np.ascontiguousarray(images.reshape(len(images), 3 * 32 * 32))


def synthetic_split(n, num_classes, seed):
    """Random uint8 images (N, 3, 32, 32) and labels with every class equally often (as far
    as n allows), in shuffled order."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 3, 32, 32)).astype(np.uint8)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    return images, labels


def _new_dataset(root, folder_name, n_train, n_test, num_classes, seed):
    """The data set's folder under ``root`` (created) and its arrays: train_x, train_y,
    test_x, test_y (uint8 (N, 3, 32, 32) and int64)."""
    folder = Path(root) / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_split(n_train, num_classes, seed)
    test_x, test_y = synthetic_split(n_test, num_classes, seed + 1)
    return folder, dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def write_cifar10(root, n_train=200, n_test=100, seed=0):
    """Write a CIFAR-10 of ``n_train``/``n_test`` images under ``root``.

    Returns ``(arrays, checksums)``: arrays = dict of train_x, train_y, test_x, test_y
    (uint8 (N, 3, 32, 32) and int64), checksums = the class attributes to patch (JSON-able).
    """
    folder, arrays = _new_dataset(root, CIFAR10_FOLDER, n_train, n_test, 10, seed)
    train_x, train_y, test_x, test_y = (arrays[k] for k in ("train_x", "train_y", "test_x", "test_y"))
    train_list = []
    for k, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        name = f"data_batch_{k}"
        _dump(folder / name, {"batch_label": f"training batch {k} of 5", "labels": train_y[part].tolist(),
                              "data": _rows(train_x[part]),
                              "filenames": [f"img_{i}.png" for i in part]})
        train_list.append([name, _md5(folder / name)])
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": test_y.tolist(),
                                  "data": _rows(test_x),
                                  "filenames": [f"test_{i}.png" for i in range(n_test)]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"num_cases_per_batch": -(-n_train // 5), "label_names": names,
                                    "num_vis": 3072})
    checksums = {"CIFAR10": {
        "train_list": train_list,
        "test_list": [["test_batch", _md5(folder / "test_batch")]],
        "meta": {"filename": "batches.meta", "key": "label_names",
                 "md5": _md5(folder / "batches.meta")},
    }}
    return arrays, checksums


def write_cifar100(root, n_train=200, n_test=100, seed=10):
    """Write a CIFAR-100 of ``n_train``/``n_test`` images under ``root``; as write_cifar10."""
    folder, arrays = _new_dataset(root, CIFAR100_FOLDER, n_train, n_test, 100, seed)
    for name in ("train", "test"):
        x, y = arrays[f"{name}_x"], arrays[f"{name}_y"]
        _dump(folder / name, {"filenames": [f"{name}_{i}.png" for i in range(len(y))],
                              "batch_label": f"{name} batch 1 of 1", "fine_labels": y.tolist(),
                              "coarse_labels": (y // 5).tolist(), "data": _rows(x)})
    _dump(folder / "meta", {"fine_label_names": [f"fine_{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse_{i}" for i in range(20)]})
    checksums = {"CIFAR100": {
        "train_list": [["train", _md5(folder / "train")]],
        "test_list": [["test", _md5(folder / "test")]],
        "meta": {"filename": "meta", "key": "fine_label_names", "md5": _md5(folder / "meta")},
    }}
    return arrays, checksums


def patch_checksums(monkeypatch, checksums):
    """Point torchvision's CIFAR classes at the synthetic files' md5s (this process only)."""
    from torchvision import datasets

    for class_name, attributes in checksums.items():
        for attribute, value in attributes.items():
            monkeypatch.setattr(getattr(datasets, class_name), attribute, value)


_WRAPPER = '''\
"""run_cifar.py with torchvision's CIFAR md5 constants set to this test's synthetic files."""
import json
import sys

sys.path.insert(0, {repo!r})
from torchvision import datasets

for class_name, attributes in json.loads({checksums!r}).items():
    for attribute, value in attributes.items():
        setattr(getattr(datasets, class_name), attribute, value)

import run_cifar

run_cifar.main(sys.argv[1:])
'''


def write_wrapper(directory, checksums):
    """A script that runs ``run_cifar.main`` on its arguments with the md5s patched."""
    path = Path(directory) / "run_cifar_synthetic.py"
    path.write_text(_WRAPPER.format(repo=REPO, checksums=json.dumps(checksums)))
    return path


def call_run_cifar(tiny_cifar, argv):
    """``run_cifar.main(argv)`` in this process on ``tiny_cifar`` (conftest): (exit code,
    stdout, stderr)."""
    import run_cifar

    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_checksums(monkeypatch, tiny_cifar.checksums)
        return call_main(run_cifar.main, ["--data_dir", tiny_cifar.data_dir, *argv])
