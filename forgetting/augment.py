"""Batched data augmentation on the device (SPEC section 2, ``--data_augmentation``).

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
