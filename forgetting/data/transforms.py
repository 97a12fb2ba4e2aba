"""Batch transforms on the device: uint8 image batches in, float32 model inputs out.

- ``normaliser``: ``(x / 255 - mean) / std``, as ToTensor + Normalize (MNIST and CIFAR);
- ``crop_flip`` / ``random_crop_flip``: ``--data_augmentation`` (docs/training.md#augmentation);
- cutout for a batch lives in the top-level ``cutout.py`` with the original's per-image
  ``Cutout`` (one box rule for both); ``train_transform`` composes the three for CIFAR.

Random crop of H x W from the image zero-padded by ``padding`` on each side (offsets
uniform in 0..2*padding per axis, per example), then a horizontal flip with probability
0.5 per example. The trainer applies it to raw pixels BEFORE normalisation, so the padding
is pixel value 0 (black), i.e. ``-mean/std`` once normalised, as torchvision's RandomCrop
on a PIL image gave in the original.

The whole batch is one pad and one gather: no loop over examples, no host sync.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cutout import random_cutout

CROP_PADDING = 4


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
              padding: int = 4) -> torch.Tensor:
    """Crop each zero-padded image at its offset, then mirror the flagged ones.

    images:  (B, C, H, W), any dtype (uint8 or float), any device.
    offsets: int64 (B, 2) of (dy, dx), each in 0..2*padding; the crop of example i is
             padded[i, :, dy:dy+H, dx:dx+W] (offset ``padding`` = the image unchanged).
    flips:   bool (B,); True mirrors the crop left-right (after cropping).
    Returns a new (B, C, H, W) tensor of the images' dtype.
    """
    b, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding, padding, padding, padding))       # zeros
    rows = offsets[:, 0:1] + torch.arange(h, device=dev)               # (B, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=dev)               # (B, W)
    # A left-right flip of the crop reads its columns in reverse order.
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=dev)[:, None, None, None]
    chan = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(images: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``crop_flip`` with fresh draws per example on ``images.device``: first the offsets
    ``torch.randint(0, 2*padding+1, (B, 2))``, then the flips ``torch.rand(B) < 0.5``,
    both from ``generator`` (which, if given, must live on the images' device).
    """
    b = images.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator,
                            device=images.device)
    flips = torch.rand(b, generator=generator, device=images.device) < 0.5
    return crop_flip(images, offsets, flips, padding)


def normaliser(mean, std, device):
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std``, as ToTensor + Normalize."""
    mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def normalise(images):
        return (images.float().div(255) - mean) / std

    return normalise


def _memory_format(channels_last):
    if channels_last:
        return lambda x: x.contiguous(memory_format=torch.channels_last)
    return lambda x: x


def eval_transform(mean, std, device, channels_last=False):
    """uint8 batch -> normalised float32 batch, for the test set (only normalised). Not named
    test_* so that pytest never mistakes it for a test."""
    normalise, layout = normaliser(mean, std, device), _memory_format(channels_last)
    return lambda images: layout(normalise(images))


def train_transform(mean, std, device, data_augmentation=False, cutout=False, n_holes=1,
                    length=16, generator=None, channels_last=False):
    """uint8 batch -> model input: crop/flip on the raw pixels (so the padding is black, i.e.
    ``-mean/std`` after normalising), normalise, then cutout (zeros after normalising, as the
    original's Cutout after Normalize). Crop and flip draw before cutout, batch by batch,
    from ``generator`` (a ``torch.Generator`` on ``device``, or None for torch's default)."""
    normalise, layout = normaliser(mean, std, device), _memory_format(channels_last)

    def prepare(images):
        if data_augmentation:
            images = random_crop_flip(images, CROP_PADDING, generator)
        inputs = normalise(images)
        if cutout:
            inputs = random_cutout(inputs, n_holes, length, generator)
        return layout(inputs)

    return prepare
