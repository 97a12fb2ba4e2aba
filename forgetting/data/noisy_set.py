"""The training set after the noise flags, for both training scripts (docs/training.md#noise).

``--noise_percent_pixels`` / ``--noise_std_pixels`` / ``--noise_percent_labels`` are applied
once to the selected training set (training order), pixel noise first, then label noise, both
from numpy's global generator right after the selection's draws (forgetting/data/noise.py).
"""
import dataclasses
from typing import Optional

import torch

from forgetting.data.noise import (add_label_noise, add_pixel_noise, changed_labels_text,
                                   generator_state)


@dataclasses.dataclass
class NoisyTrainingSet:
    """The images and labels to train on (CPU tensors, training order) and what the run's
    files need to say about the noise."""

    train_x: torch.Tensor                  # uint8 (n, C, H, W), after pixel noise
    train_y: torch.Tensor                  # int64 (n,), after label noise
    changed_labels: Optional[str]          # the _changed_labels.txt text; None without label noise
    pixel_noise_state: Optional[dict]      # noise.generator_state() before the pixel noise; None without


def noisy_training_set(args, data, train_ids):
    """The training set of ``train_ids`` (int64 array, training order) of ``data`` (an
    ``ImageData`` on the CPU) after ``args``' pixel noise and then label noise."""
    positions = torch.from_numpy(train_ids)
    train_x, train_y = data.train_x[positions], data.train_y[positions]
    state = None
    if args.noise_percent_pixels:
        print(f"adding Normal(120, {args.noise_std_pixels}) noise to {args.noise_percent_pixels}% of "
              "the pixels of every training image", flush=True)
        state = generator_state()
        train_x = add_pixel_noise(train_x, args.noise_percent_pixels, args.noise_std_pixels)
    changed_labels = None
    if args.noise_percent_labels:
        labels, flipped, old, new = add_label_noise(train_y.numpy(), args.noise_percent_labels)
        print(f"flipping {len(flipped)} labels", flush=True)
        changed_labels = changed_labels_text(train_ids[flipped], old, new)
        train_y = torch.from_numpy(labels)
    return NoisyTrainingSet(train_x, train_y, changed_labels, state)
