"""Training images by example id, for looking at them (plot_figures.py gallery, notebooks).

``example_images(dataset, ids, data_dir=None, seed=1)`` returns the uint8 pixels and the
labels of the training examples ``ids`` exactly as the training scripts load them
(forgetting.data.datasets: the same loaders, the same ids), in the layout images are shown in:
``N x 28 x 28`` for the MNIST family, ``N x 32 x 32 x 3`` (height, width, RGB) for CIFAR.
The ``permuted_*`` datasets are shown permuted, with the pixel permutation a run of that
``seed`` draws (``torch.randperm(784)`` right after ``torch.manual_seed(seed)``; each seed has
its own), drawn here from a private generator so the caller's random state is untouched.

``listed_example_images(examples, ids)`` does the same for a run of run_images.py (your own
folder or .npz), found through the run's examples listing ``<save_fname>__examples.tsv``:
the data its run record names are read again (forgetting.data.user_data, through the image
cache) and refused when they changed since the run; it also gives each image's file.
"""
import dataclasses
import hashlib
import os

import numpy as np
import torch

from forgetting.errors import UsageError
from forgetting.files.naming import EXAMPLES_SUFFIX, RECORD_SUFFIX
from forgetting.files.run_record import read_record
from forgetting.data.datasets import CIFAR_DATASETS, MNIST_DATASETS, load_cifar, load_mnist_family

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
    permutation = run_permutation(seed) if dataset.startswith("permuted_") else None
    return load_mnist_family(dataset, data_dir, permutation)


def _shown(images):
    """uint8 N x C x H x W as images are shown: N x H x W (one channel), N x H x W x C."""
    images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images)


def _check_ids(ids, n, what):
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise UsageError(f"example id {bad[0]} is not in {what}'s {n:,} training examples; "
                         "the sorting file was made for another dataset")
    return ids


def example_images(dataset, ids, data_dir=None, seed=1):
    """``(images, labels)`` of the training examples ``ids`` (in that order): uint8 numpy
    images (N x H x W for the MNIST family, N x H x W x 3 for CIFAR) and int64 labels. A
    UsageError for an unknown dataset or an id outside the training set."""
    if dataset not in DATASETS:
        raise UsageError(f"--dataset {dataset} has no images here; use one of "
                         f"{', '.join(DATASETS)}, or for a run of run_images.py --examples "
                         "<save_fname>__examples.tsv")
    data = _training_set(dataset, data_dir or DEFAULT_DATA_DIR, seed)
    chosen = torch.from_numpy(_check_ids(ids, len(data.train_y), dataset))
    return _shown(data.train_x[chosen].numpy()), data.train_y[chosen].numpy().astype(np.int64)


@dataclasses.dataclass
class ListedImages:
    """Training examples of a run_images.py run, in the order asked for."""

    images: np.ndarray    # uint8: N x H x W (one channel) or N x H x W x C (3 or 4 channels)
    labels: np.ndarray    # int64 label indices (the true labels: no label noise)
    paths: list           # each one's listing path: relative to the folder, or x_train[<row>]
    class_names: list     # every class name; a label is its index
    dataset: str          # the data's name (the file name's dataset)


def run_data_source(examples):
    """The run record's ``data`` of the run whose examples listing is ``examples``
    (``<save_fname>__examples.tsv``; the record ``<save_fname>__run.json`` lies beside it),
    refused in one line when it cannot be found or the listing is not that run's."""
    if not str(examples).endswith(EXAMPLES_SUFFIX) or not os.path.isfile(examples):
        raise UsageError(f"--examples {examples}: give the {EXAMPLES_SUFFIX} file that "
                         "run_images.py wrote beside the run's stats")
    record_path = str(examples)[:-len(EXAMPLES_SUFFIX)] + RECORD_SUFFIX
    try:
        source = (read_record(record_path) or {}).get("data")
    except ValueError as err:
        raise UsageError(f"--examples {examples}: {err}") from None
    if not source:
        raise UsageError(f"--examples {examples}: {os.path.basename(record_path)} is missing "
                         "or holds no 'data' entry; it must lie beside the listing, as "
                         "run_images.py wrote them")
    with open(examples, "rb") as handle:
        listing = hashlib.sha256(handle.read()).hexdigest()
    if listing != source["listing_sha256"]:
        raise UsageError(f"--examples {examples} is not the listing its run record "
                         f"{os.path.basename(record_path)} describes; give an unchanged listing")
    return source


def listed_example_images(examples, ids, say=lambda msg: None):
    """``ListedImages`` of the training examples ``ids`` (in that order) of the run_images.py
    run whose examples listing is ``examples``. One-line UsageErrors: no such listing or run
    record, a run on feature vectors (no images), images whose channels cannot be shown (not
    1, 3 or 4), an id outside the training set, data that cannot be read or changed since the
    run. ``say`` gets the loader's line (decoded, or read from the cache)."""
    from forgetting.data.user_data import reload_user_data, require_same_listing

    source = run_data_source(examples)
    if source.get("input") != "images":
        raise UsageError(f"--examples {examples}: the run trained on feature vectors "
                         f"({source['path']}), which have no images to show")
    if source["shape"][0] not in (1, 3, 4):
        raise UsageError(f"--examples {examples}: the images have {source['shape'][0]} "
                         "channels; only 1 (gray), 3 (RGB) or 4 (RGBA) can be shown")
    ids = _check_ids(ids, source["n_train"], source["name"])
    try:
        data = reload_user_data(source, say)
    except UsageError as err:
        raise UsageError(f"--examples {examples}: its data at {source['path']} cannot be read "
                         f"({str(err)[:200]}); put them back where the run found them") from None
    require_same_listing(data, source, f"--examples {examples}",
                         "show the data the run trained on")
    chosen = torch.from_numpy(ids)
    return ListedImages(_shown(data.train_x[chosen].numpy()),
                        data.train_y[chosen].numpy().astype(np.int64),
                        [data.paths[i] for i in ids.tolist()], list(data.class_names), data.name)
