"""Cutout (DeVries & Taylor 2017): zero square boxes of an image, in two forms.

One box rule, ``cutout_box``, serves both:

- ``Cutout(n_holes, length)``: the per-image transform of the original, for a
  torchvision ``transforms.Compose``; it draws centres with numpy's global RNG.
- ``apply_cutout`` / ``random_cutout``: the batched form the trainer uses on the device,
  centres drawn per example with ``torch.randint`` and an optional ``torch.Generator``.

Box rule (docs/training.md#augmentation): for a centre (y, x), rows ``clip(y - length//2, 0, H)`` up to
(excluding) ``clip(y + length//2, 0, H)``, columns likewise with W. A hole near the border
is clipped, so it covers fewer pixels; an odd ``length`` gives an even-sided box
(``2 * (length//2)``), exactly as the original.
"""
from __future__ import annotations

import numpy as np
import torch


def cutout_box(y, x, length: int, height: int, width: int):
    """Box ``(y0, y1, x0, x1)`` of a hole centred at (y, x): rows y0..y1-1, cols x0..x1-1.

    ``y`` and ``x`` may be Python/numpy ints or integer tensors of any (matching) shape;
    tensors give tensors, clamped elementwise, with no host synchronisation.
    """
    half = length // 2

    def clip(v, hi):
        if isinstance(v, torch.Tensor):
            return torch.clamp(v, 0, hi)
        return min(max(int(v), 0), hi)

    return clip(y - half, height), clip(y + half, height), clip(x - half, width), clip(x + half, width)


class Cutout:
    """Per-image cutout transform, as in the original: a (C, H, W) float tensor in, the
    same shape out with ``n_holes`` boxes of side ``length`` zeroed in every channel.

    Each centre is ``(np.random.randint(H), np.random.randint(W))`` from numpy's global
    RNG, y drawn before x, hole after hole. Holes may overlap.
    """

    def __init__(self, n_holes: int, length: int):
        self.n_holes = n_holes
        self.length = length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        for _ in range(self.n_holes):
            y = np.random.randint(h)
            x = np.random.randint(w)
            y0, y1, x0, x1 = cutout_box(y, x, self.length, h, w)
            mask[y0:y1, x0:x1] = 0.0
        return img * torch.from_numpy(mask).to(img.device, img.dtype).expand_as(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_holes={self.n_holes}, length={self.length})"


def apply_cutout(images: torch.Tensor, centres: torch.Tensor, length: int) -> torch.Tensor:
    """Zero every hole's box in every channel of a batch.

    images:  (B, C, H, W), any dtype, any device.
    centres: int64 (B, n_holes, 2) of (y, x), on the images' device.
    Returns a new (B, C, H, W) tensor; ``images`` is not modified.
    """
    b, _, h, w = images.shape
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    holes = torch.zeros(b, h, w, dtype=torch.bool, device=images.device)
    for k in range(centres.shape[1]):
        y0, y1, x0, x1 = cutout_box(centres[:, k, 0], centres[:, k, 1], length, h, w)
        in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])   # (B, H)
        in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])   # (B, W)
        holes |= in_rows[:, :, None] & in_cols[:, None, :]       # (B, H, W)
    return images.masked_fill(holes[:, None], 0)


def random_cutout(images: torch.Tensor, n_holes: int, length: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Cutout with centres drawn uniformly over the H x W grid, independently per example
    and per hole: ``torch.randint`` on ``images.device`` (``generator``, if given, must
    live on that device), first all y (B, n_holes), then all x (B, n_holes).
    """
    b, _, h, w = images.shape
    ys = torch.randint(0, h, (b, n_holes), generator=generator, device=images.device)
    xs = torch.randint(0, w, (b, n_holes), generator=generator, device=images.device)
    return apply_cutout(images, torch.stack((ys, xs), dim=2), length)
