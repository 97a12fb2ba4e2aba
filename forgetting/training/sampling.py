"""Which examples an epoch presents, and in what order: the loop asks its sampler each epoch.

``UniformOrder`` is the original's rule (SPEC section 3): every training position once, in a
fresh ``numpy.random.permutation``, drawn from numpy's global generator at the start of the
epoch, so the resume state's numpy RNG reproduces it. Positions index the training set as the
job holds it (``job.train_x``), not example ids.
"""
import numpy as np
import torch


class UniformOrder:
    """Every training position once per epoch, in a fresh ``numpy.random.permutation``."""

    def epoch_order(self, epoch, n_train, device):
        """The positions in ``0..n_train-1`` to present in epoch ``epoch`` (0-based), as an
        int64 tensor on ``device``; batches are consecutive slices of it (the last may be short)."""
        return torch.from_numpy(np.random.permutation(n_train)).to(device)
