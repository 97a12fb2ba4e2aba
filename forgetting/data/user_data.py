"""The user's own data for run_images.py: an image folder or a ``.npz`` file, as tensors.

``load_user_data`` gives a ``UserData``: training and test inputs with int64 labels, the
class names (sorted; a class's label is its index), the listing that maps each example id
back to its file (``examples_tsv``) and a description of the source for the run record.

- Image folder (forgetting/data/image_folder.py): ids are positions among the training
  files sorted by relative path; inputs are uint8 (N, C, H, W).
- ``.npz`` (``NPZ_KEYS``): ``x_train``/``x_test`` uint8 images (N, H, W) or (N, H, W, C),
  given as (N, C, H, W) tensors; or float feature vectors (N, D), given as float32. Ids are
  the rows of ``x_train``. Labels (integers or strings) are mapped to the sorted class names.

Normalisation (``normalisation``): per channel (images, in units of pixel/255, computed
exactly from pixel-value histograms) or per feature (vectors), over the whole training split,
before any removal, so runs that remove examples normalise as the full run did. A constant
feature (std 0) is divided by 1.
"""
import dataclasses
import hashlib
import os
import re
from typing import Optional

import numpy as np
import torch

from forgetting.data.image_folder import CACHE_DIR_NAME, list_folder, load_images
from forgetting.errors import UsageError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclasses.dataclass
class UserData:
    """Training and test inputs (uint8 images N x C x H x W, or float32 vectors N x D) with
    int64 labels; ``paths`` the listing entry of every training id; ``source`` what the run
    record keeps of where the data came from."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list
    paths: list
    name: str
    source: dict
    mean: Optional[tuple] = None
    std: Optional[tuple] = None

    @property
    def is_images(self):
        return self.train_x.dtype == torch.uint8

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def shape(self):
        """One example's shape: (C, H, W) or (D,)."""
        return tuple(self.train_x.shape[1:])

    def examples_tsv(self):
        """The ``<save_fname>__examples.tsv`` text: a header, then per training id its label
        index, class name and path (relative to the folder, or ``x_train[<row>]``)."""
        labels = self.train_y.tolist()
        rows = (f"{i}\t{label}\t{self.class_names[label]}\t{path}\n"
                for i, (label, path) in enumerate(zip(labels, self.paths)))
        return "id\tlabel\tclass\tpath\n" + "".join(rows)


def source_name(path):
    """The file-name segment of a data source: the folder's name or the file's stem, with
    characters other than letters, digits, '.', '-' and single '_' replaced by '-'."""
    base = os.path.basename(os.path.normpath(os.path.abspath(path)))
    if base.endswith(".npz"):
        base = base[:-len(".npz")]
    name = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "-", base)).strip("_")
    return name or "data"


def _labels(y_train, y_test, where):
    """int64 label indices of both splits and the sorted class names (as text)."""
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind == "U"):
            raise UsageError(f"{where}: {key} must be a 1-D array of integer or text labels "
                             f"(it is {y.dtype} {y.shape})")
    classes = np.unique(np.concatenate([y_train, y_test]))
    index = lambda y: torch.from_numpy(np.searchsorted(classes, y).astype(np.int64))  # noqa: E731
    return index(y_train), index(y_test), [str(c) for c in classes.tolist()]


def _inputs(x, key, where):
    """A tensor of ``x``: uint8 images as (N, C, H, W), float vectors as float32 (N, D)."""
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        images = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(images))
    if np.issubdtype(x.dtype, np.floating) and x.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    raise UsageError(f"{where}: {key} is {x.dtype} {x.shape}; give uint8 images (N x H x W or "
                     "N x H x W x C) or float feature vectors (N x D)")


def load_npz(path):
    """The arrays of a ``.npz`` file (``NPZ_KEYS``) as a ``UserData``."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [key for key in NPZ_KEYS if key not in arrays.files]
            if missing:
                raise UsageError(f"{path} has no {', '.join(missing)}; a .npz for run_images.py "
                                 f"holds the arrays {', '.join(NPZ_KEYS)}")
            x_train, y_train, x_test, y_test = (arrays[key] for key in NPZ_KEYS)
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"--npz {path} is not a readable .npz file ({type(err).__name__}: "
                         f"{str(err)[:100]}); give a file written by numpy.savez") from None
    train_x, test_x = _inputs(x_train, "x_train", path), _inputs(x_test, "x_test", path)
    if train_x.shape[1:] != test_x.shape[1:] or train_x.dtype != test_x.dtype:
        raise UsageError(f"{path}: x_train is {x_train.dtype} {x_train.shape[1:]} per example but "
                         f"x_test {x_test.dtype} {x_test.shape[1:]}; give both the same kind")
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y) or len(x) == 0:
            raise UsageError(f"{path}: x_{split} has {len(x)} rows and y_{split} {len(y)}; give "
                             "one label per row, and at least one row")
    train_y, test_y, classes = _labels(y_train, y_test, path)
    source = {"kind": "npz", "path": os.path.abspath(path)}
    return UserData(train_x, train_y, test_x, test_y, classes,
                    [f"x_train[{row}]" for row in range(len(train_y))], source_name(path), source)


def load_folder(root, image_size, test_fraction, split_seed, cache_dir, say):
    """An image folder (forgetting/data/image_folder.py) as a ``UserData``."""
    listing, classes = list_folder(root, test_fraction, split_seed)
    if not listing.is_test.any():
        raise UsageError(f"{root}: no test images; add {root}/test/<class>/ or give a "
                         "--test_fraction that leaves some")
    cache_dir = cache_dir or os.path.join(root, CACHE_DIR_NAME)
    images = torch.from_numpy(load_images(listing, image_size, cache_dir, say))
    index = {name: label for label, name in enumerate(classes)}
    labels = torch.as_tensor([index[c] for c in listing.classes], dtype=torch.int64)
    train, test = torch.from_numpy(~listing.is_test), torch.from_numpy(listing.is_test)
    train_paths = [p for p, t in zip(listing.paths, listing.is_test.tolist()) if not t]
    source = {"kind": "folder", "path": os.path.abspath(root), "image_size": image_size,
              "split": ("train/test folders" if train_paths[0].startswith("train/")
                        else {"test_fraction": test_fraction, "split_seed": split_seed}),
              "cache_dir": os.path.abspath(cache_dir)}
    return UserData(images[train], labels[train], images[test], labels[test], classes,
                    train_paths, source_name(root), source)


def load_user_data(data_dir, npz, image_size=None, test_fraction=0.2, split_seed=0,
                   cache_dir=None, say=print):
    """The data of ``--data_dir`` (a folder) or ``--npz`` (exactly one given), with the
    description the run record keeps (``source``: kind, path, class names, shape, counts and
    the sha256 of the listing)."""
    if npz is not None:
        data = load_npz(npz)
        if image_size is not None and data.is_images:
            raise UsageError("--image_size resizes the files of --data_dir; resize the arrays of "
                             "--npz before saving them, or drop --image_size")
    else:
        data = load_folder(data_dir, image_size, test_fraction, split_seed, cache_dir, say)
    listing = hashlib.sha256(data.examples_tsv().encode()).hexdigest()
    data.source.update(name=data.name, classes=data.class_names,
                       input="images" if data.is_images else "vectors", shape=list(data.shape),
                       n_train=len(data.train_y), n_test=len(data.test_y), listing_sha256=listing)
    return data



def reload_user_data(source, say=lambda msg: None):
    """run_images.py's data again, as its run record's ``data`` (or its weights file's
    ``data_source``) describes them: the same folder or .npz, image size and split (the image
    cache makes a folder cheap to reload). Whether they still list the run's examples is
    ``require_same_listing``'s question."""
    split = source.get("split")
    fraction, seed = ((split["test_fraction"], split["split_seed"]) if isinstance(split, dict)
                      else (0.2, 0))
    folder = source["kind"] == "folder"
    return load_user_data(source["path"] if folder else None, None if folder else source["path"],
                          source.get("image_size"), fraction, seed, source.get("cache_dir"), say)


def require_same_listing(data, source, where, fix):
    """Refuse (``where``: what names the run) data whose examples listing differs from the
    run's (``listing_sha256``): files or labels changed since, so the run's ids name other
    examples. ``fix``: what to do, for the message."""
    if data.source["listing_sha256"] != source["listing_sha256"]:
        raise UsageError(f"{where}: the data at {source['path']} changed since the run (other "
                         f"files or labels); {fix}")


def _per_channel_uint8(images):
    """Exact per-channel mean and std of uint8 images (N, C, H, W) in units of pixel/255,
    from each channel's histogram of the 256 values (no float copy of the images)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for channel in range(images.shape[1]):
        counts = np.bincount(images[:, channel].reshape(-1).numpy(), minlength=256)
        total = counts.sum()
        m = float((counts * values).sum() / total)
        var = float((counts * (values - m) ** 2).sum() / total)
        mean.append(m)
        std.append(var ** 0.5)
    return mean, std


def normalisation(data, mean=None, std=None):
    """``(mean, std)`` tuples for the inputs: the given ``--mean``/``--std`` (one value for
    all channels/features, or one each), else the training split's own; a std of 0 is 1."""
    width = data.shape[0]   # channels of images, features of vectors
    what = "channel" if data.is_images else "feature"
    for flag, given in (("mean", mean), ("std", std)):
        if given is not None and len(given) not in (1, width):
            raise UsageError(f"--{flag} has {len(given)} values; give one, or one per {what} "
                             f"({width})")
    if mean is None or std is None:
        if data.is_images:
            own_mean, own_std = _per_channel_uint8(data.train_x)
        else:
            x = data.train_x.double()
            own_mean, own_std = x.mean(0).tolist(), x.std(0, unbiased=False).tolist()
        mean = own_mean if mean is None else mean
        std = own_std if std is None else std
    if std is not None and any(s < 0 for s in std):
        raise UsageError("--std must be positive")
    mean = tuple(float(m) for m in (mean * width if len(mean) == 1 else mean))
    std = tuple(float(s) if s > 0 else 1.0 for s in (std * width if len(std) == 1 else std))
    return mean, std


def vector_normaliser(mean, std, device):
    """float32 (B, D) -> ``(x - mean) / std`` per feature, on ``device``."""
    mean = torch.tensor(mean, dtype=torch.float32, device=device)
    std = torch.tensor(std, dtype=torch.float32, device=device)
    return lambda x: (x - mean) / std
