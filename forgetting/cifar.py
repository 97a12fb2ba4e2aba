"""What run_cifar.py trains with: the optimisers and their schedule, and the batch transforms.

Kept out of the CLI so tests can call exactly what the training loop calls.

Optimisers (SPEC section 2):
- ``sgd``: SGD(learning_rate, momentum 0.9, Nesterov, weight decay 5e-4); epoch ``e``
  (0-based) trains at ``learning_rate * 0.2 ** bisect_right([60, 120, 160], e - 1)``. The
  original stepped ``MultiStepLR`` with ``scheduler.step(epoch)`` AFTER each epoch, so the
  drops take effect at epochs 61, 121 and 161, not 60, 120 and 160.
- ``adam``: Adam(lr 0.001), no schedule; ``--learning_rate`` is ignored, as in the original.

Transforms (uint8 (B, 3, 32, 32) batches on the device in, float32 model inputs out):
- train: [random crop of the 4-pixel zero-padded image + horizontal flip] -> normalise ->
  [cutout], the random parts drawn per example from one ``torch.Generator`` on the device;
- test: normalise only.
"""
import bisect
import functools

import torch

from cutout import random_cutout
from forgetting.augment import random_crop_flip
from forgetting.cli import normaliser

OPTIMIZERS = ("sgd", "adam")
SGD_MILESTONES = (60, 120, 160)
SGD_GAMMA = 0.2
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 5e-4
ADAM_LR = 0.001
CROP_PADDING = 4


def sgd_learning_rate(base_lr, epoch):
    """The SGD rate of 0-based ``epoch``: base for 0..60, x0.2 for 61..120, x0.04 for 121..160,
    x0.008 from 161 on."""
    return base_lr * SGD_GAMMA ** bisect.bisect_right(SGD_MILESTONES, epoch - 1)


def make_optimizer(name, parameters, learning_rate):
    """``(optimizer, lr_for_epoch)``; ``lr_for_epoch`` is None when the rate never changes."""
    if name == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=SGD_MOMENTUM,
                                    nesterov=True, weight_decay=SGD_WEIGHT_DECAY)
        return optimizer, functools.partial(sgd_learning_rate, learning_rate)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=ADAM_LR), None
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


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
