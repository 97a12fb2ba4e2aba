"""What run_cifar.py optimises with: the optimisers and their learning-rate schedule.

Optimisers (docs/training.md#optimisers):
- ``sgd``: SGD(learning_rate, momentum 0.9, Nesterov, weight decay 5e-4); epoch ``e``
  (0-based) trains at ``learning_rate * 0.2 ** bisect_right([60, 120, 160], e - 1)``. The
  original stepped ``MultiStepLR`` with ``scheduler.step(epoch)`` AFTER each epoch, so the
  drops take effect at epochs 61, 121 and 161, not 60, 120 and 160.
- ``adam``: Adam(lr 0.001), no schedule; ``--learning_rate`` is ignored, as in the original.

Recipes (run_images.py's ``--recipe``): ``mnist`` is run_mnist.py's training (plain SGD, lr
0.01, momentum 0.5, no schedule, batch 64), ``cifar`` run_cifar.py's (the ``sgd`` above, batch
128); ``recipe_optimizer`` builds either, with single values overridden.
"""
import bisect
import functools

import torch

OPTIMIZERS = ("sgd", "adam")
SGD_MILESTONES = (60, 120, 160)
SGD_GAMMA = 0.2
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 5e-4
ADAM_LR = 0.001


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


# --recipe -> run_mnist.py's or run_cifar.py's defaults (run_images.py's flags override them).
RECIPES = {
    "mnist": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.5, "batch_size": 64},
    "cifar": {"optimizer": "sgd", "lr": 0.1, "momentum": SGD_MOMENTUM, "batch_size": 128},
}


def recipe_optimizer(recipe, name, parameters, lr, momentum):
    """``(optimizer, lr_for_epoch)`` of ``recipe`` with optimiser ``name``: ``mnist`` + ``sgd``
    is run_mnist.py's ``SGD(lr, momentum)`` without a schedule; ``cifar`` + ``sgd`` is
    run_cifar.py's (Nesterov, weight decay 5e-4, scheduled) with ``momentum``; ``adam`` is
    Adam(lr) for both (``lr`` None: 0.001), no schedule."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=ADAM_LR if lr is None else lr), None
    if name != "sgd":
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    if recipe == "mnist":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum), None
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum, nesterov=True,
                                weight_decay=SGD_WEIGHT_DECAY)
    return optimizer, functools.partial(sgd_learning_rate, lr)
