"""A run's model and training set rebuilt from its ``--save_weights_at`` file, for the scores
that need a model (el2n, grand). Imports torch, the datasets and the networks: only the
model-based path of score_examples.py reaches it.

The training set is the weights file's ``train_ids`` (training order) with the labels the run
trained on (``train_labels``: label noise included), the images as the dataset loader gives
them (the saved pixel permutation applied for permuted_mnist*) with the run's pixel noise drawn
again from the saved generator state (``pixel_noise_state``), normalised, no augmentation.
A run_images.py run (its ``data_source``) reloads its folder or .npz from the recorded path
(the image cache makes that cheap), refused when the data's listing changed since the run.
"""
import dataclasses

import numpy as np
import torch

from forgetting.data.datasets import CIFAR_DATASETS, MNIST_DATASETS, load_cifar, load_mnist_family
from forgetting.data.noise import add_pixel_noise, generator_at
from forgetting.data.transforms import normaliser
from forgetting.data.user_data import (reload_user_data, require_same_listing,
                                       vector_normaliser)
from forgetting.errors import UsageError
from forgetting.files.weights import load_weights
from models import build_model


@dataclasses.dataclass
class ScoringRun:
    """A saved run ready to score: tensors on ``device``, examples in training order."""

    ids: np.ndarray           # int64 (n,), training order
    model: torch.nn.Module    # eval mode is the scores' job
    images: torch.Tensor      # uint8 (n, C, H, W)
    labels: torch.Tensor      # int64 (n,), the labels the run trained on
    prepare: object           # uint8 batch -> normalised float input
    dataset: str


class DatasetCache:
    """Datasets loaded once for all the runs that share them (same name and permutation)."""

    def __init__(self, data_dir):
        self.data_dir, self.loaded = data_dir, {}

    def get(self, dataset, permutation):
        key = (dataset, None if permutation is None else permutation.numpy().tobytes())
        if key not in self.loaded:
            if dataset in MNIST_DATASETS:
                self.loaded[key] = load_mnist_family(dataset, self.data_dir, permutation)
            elif dataset in CIFAR_DATASETS:
                self.loaded[key] = load_cifar(dataset, self.data_dir)
            else:
                raise UsageError(f"unknown dataset {dataset!r} in a weights file")
        return self.loaded[key]

    def get_user(self, source):
        """run_images.py's data as its weights file's ``data_source`` describes it."""
        split = source.get("split")
        key = (source["kind"], source["path"], source.get("image_size"),
               str(split) if isinstance(split, dict) else None)
        if key not in self.loaded:
            self.loaded[key] = reload_user_data(source)
        return self.loaded[key]


def load_scoring_run(weights_path, device, datasets):
    """The run of ``weights_path`` rebuilt on ``device``; ``datasets``: a ``DatasetCache``."""
    record = load_weights(weights_path)
    percent, std = record["pixel_noise"]
    state = record.get("pixel_noise_state")
    if percent and state is None:
        # Written before the files held the generator state: the noisy images cannot be
        # redrawn, so refuse rather than score clean images.
        raise UsageError(f"{weights_path}: the run trained on pixel-noised images "
                         f"(--noise_percent_pixels {percent} --noise_std_pixels {std}) and its "
                         "weights file predates the saved noise state; rerun the training with "
                         "--save_weights_at to score it")
    model = build_model(record["model"], record["model_options"])
    model.load_state_dict(record["state_dict"])
    source = record.get("data_source")
    if source is not None:
        data = _user_data(weights_path, source, datasets)
        prepare = (normaliser if data.is_images else vector_normaliser)(
            tuple(source["mean"]), tuple(source["std"]), device)
    else:
        data = datasets.get(record["dataset"], record["permutation"])
        prepare = normaliser(data.mean, data.std, device)
    ids = record["train_ids"]
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(data.train_y)):
        raise UsageError(f"{weights_path}: its example ids do not fit {record['dataset']} "
                         f"({len(data.train_y)} training examples); was --data_dir the run's?")
    images = data.train_x[ids]
    if percent:  # the same draws as the run's: same generator state, same images, same order
        images = add_pixel_noise(images, percent, std, generator_at(state))
    return ScoringRun(ids=ids.numpy(), model=model.to(device),
                      images=images.to(device), labels=record["train_labels"].to(device),
                      prepare=prepare, dataset=record["dataset"])


def _user_data(weights_path, source, datasets):
    """run_images.py's data, refused in one line when missing or changed since the run."""
    try:
        data = datasets.get_user(source)
    except UsageError as err:
        raise UsageError(f"{weights_path}: its data at {source['path']} cannot be read "
                         f"({str(err)[:200]}); put them back where the run found them") from None
    require_same_listing(data, source, weights_path,
                         "score with the data the run trained on")
    return data
