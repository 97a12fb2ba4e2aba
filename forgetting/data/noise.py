"""Label and pixel noise for run_cifar.py (docs/training.md#noise), vectorised over examples.

Both functions draw from numpy's global generator, as the original did, so the run's
stream of draws is: selection, then pixel noise, then label noise (docs/training.md#noise). Neither
draws anything when its percentage is 0 (the original skipped the whole step then).

- ``add_label_noise``: ``int(p * n / 100)`` training positions without replacement, each
  given a label drawn uniformly from the OTHER labels present in the training set.
- ``add_pixel_noise``: per image ``floor(p * H * W / 100)`` pixel positions without
  replacement, a channel each (with replacement), plus Normal(120, std) on that uint8
  value, truncated toward zero like Python's ``int()`` and clipped to 0..255 (the original
  wrapped around in uint8: deviation 4).
"""
import numpy as np
import torch

from forgetting.errors import UsageError

PIXEL_NOISE_MEAN = 120.0
# Images are processed in chunks so the per-pixel random keys (float64, H*W per image) of
# CIFAR-10's 50,000 images need 16 MB at a time rather than 400 MB at once.
PIXEL_NOISE_CHUNK = 2048


def add_label_noise(labels, percent):
    """Flip ``int(percent * n / 100)`` of the ``n`` labels to another present label.

    labels:  int array (n,), the training labels in training order (after removal).
    Returns ``(new_labels, positions, old, new)``: a flipped copy of ``labels``, the flipped
    positions in the order they were drawn, and their true and new labels (old != new).
    Draws ``np.random.choice(n, k, replace=False)`` for the positions, then
    ``np.random.randint(0, m - 1, size=k)`` for the labels (m = number of distinct labels),
    where draw r picks the r-th distinct label after skipping the true one. For labels
    0..m-1 (CIFAR) this is the very stream of the original's per-example
    ``np.random.choice(np.delete(np.arange(m), true), 1)`` loop (tests/test_cifar.py).
    """
    labels = np.asarray(labels)
    new_labels = labels.copy()
    if not percent:
        return new_labels, np.zeros(0, dtype=np.int64), labels[:0].copy(), labels[:0].copy()
    n = len(labels)
    k = int(percent * n / 100)
    classes = np.unique(labels)                      # sorted distinct labels present
    if k and len(classes) < 2:
        raise UsageError(f"--noise_percent_labels {percent} needs at least two distinct labels in "
                         f"the training set, which has only {len(classes)}; remove fewer examples")
    # Drawn even when k is 0 (it still consumes a permutation), as the original did.
    positions = np.random.choice(n, k, replace=False).astype(np.int64)
    old = labels[positions]
    true_index = np.searchsorted(classes, old)
    draw = np.random.randint(0, max(len(classes) - 1, 1), size=k)
    new = classes[draw + (draw >= true_index)]       # skip the true label's index
    new_labels[positions] = new
    return new_labels, positions, old, new


def changed_labels_text(ids, old, new):
    """The ``_changed_labels.txt`` content: ``<original id> <true label> <new label>`` lines."""
    return "".join(f"{i} {o} {n}\n" for i, o, n in zip(np.asarray(ids).tolist(),
                                                         np.asarray(old).tolist(),
                                                         np.asarray(new).tolist()))


def _pixel_noise_numpy(images, percent, std):
    n, c, h, w = images.shape
    k = int(np.floor(percent * h * w / 100))
    out = images.copy()
    if k == 0:
        return out
    flat = out.reshape(n, c * h * w)                 # a view of out
    for start in range(0, n, PIXEL_NOISE_CHUNK):     # chunks of images, not a loop per image
        stop = min(start + PIXEL_NOISE_CHUNK, n)
        m = stop - start
        # k distinct positions per image: the k smallest of H*W uniform keys.
        keys = np.random.random_sample((m, h * w))
        pixels = (np.argpartition(keys, k - 1, axis=1)[:, :k] if k < h * w
                  else np.tile(np.arange(h * w), (m, 1)))
        channels = np.random.randint(0, c, size=(m, k))
        noise = np.random.normal(PIXEL_NOISE_MEAN, std, size=(m, k))
        rows = np.arange(start, stop)[:, None]
        cols = channels * (h * w) + pixels           # distinct per image: pixels are distinct
        values = np.trunc(flat[rows, cols].astype(np.float64) + noise)
        flat[rows, cols] = np.clip(values, 0, 255).astype(np.uint8)
    return out


def add_pixel_noise(images, percent, std):
    """Noisy copy of uint8 images (N, C, H, W), numpy array or tensor (same kind returned).

    Per image: ``floor(percent * H * W / 100)`` distinct pixel positions (the positions of
    the smallest of H*W uniform keys), a channel for each, ``Normal(120, std)`` added and the
    result stored as ``min(255, max(0, int(old + noise)))``. Percent 0 returns an unchanged
    copy and draws nothing.
    """
    if isinstance(images, torch.Tensor):
        noisy = add_pixel_noise(images.cpu().numpy(), percent, std)
        return torch.from_numpy(noisy).to(images.device)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {images.shape}")
    if not percent:
        return images.copy()
    return _pixel_noise_numpy(images, percent, std)


def noisy_training_set(args, train_x, train_y, train_ids, say=print):
    """The selected training images and labels (``train_x``/``train_y``: CPU tensors of the
    whole training set; ``train_ids``: the ids that train, in training order) after pixel
    noise and then label noise (--noise_percent_pixels/--noise_std_pixels,
    --noise_percent_labels of ``args``), and the ``_changed_labels.txt`` text (None without
    label noise)."""
    positions = torch.from_numpy(train_ids)
    train_x, train_y = train_x[positions], train_y[positions]
    if args.noise_percent_pixels:
        say(f"adding Normal(120, {args.noise_std_pixels}) noise to {args.noise_percent_pixels}% of "
            "the pixels of every training image")
        train_x = add_pixel_noise(train_x, args.noise_percent_pixels, args.noise_std_pixels)
    changed_labels = None
    if args.noise_percent_labels:
        labels, flipped, old, new = add_label_noise(train_y.numpy(), args.noise_percent_labels)
        say(f"flipping {len(flipped)} labels")
        changed_labels = changed_labels_text(train_ids[flipped], old, new)
        train_y = torch.from_numpy(labels)
    return train_x, train_y, changed_labels
