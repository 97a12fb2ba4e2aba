"""Per-example statistics of every presentation, computed for the whole batch at once.

docs/training.md#each-epoch: for example i with target y_i and model output o_i, taken in train mode
before the optimiser step,
  loss   = the per-example loss (cross-entropy; NLL on MNIST's log-softmax output),
  acc    = argmax(o_i) == y_i (argmax takes the first maximum),
  margin = o_i[y_i] - max_{k != y_i} o_i[k].
The recorder keeps one epoch on the device and copies it to the host once per epoch: nothing
in the batch loop waits for the device. Per batch it only copies the outputs, targets, losses
and positions into slices of preallocated buffers (in presentation order); the statistics
above are formed for the whole epoch at once in ``to_host``. They are row-wise exact
operations (argmax, gather, max), so the numbers are the same as batch by batch, and the
batch loop pays 4 slice copies instead of ~13 small ops (benchmarks/RESULTS.md).

An epoch makes ``count`` presentations (``begin_epoch``): ``n_train`` under the original's
uniform order, which the recorder returns by training position; a sampler (``--sampling``)
may present fewer, some examples twice: the recorder then returns them in presentation
order with their positions (``EpochStats.positions``). Buffers hold ``n_train``
presentations, the most any sampler makes.
"""
import dataclasses
from typing import NamedTuple, Optional

import numpy as np
import torch


def per_example_stats(outputs, targets):
    """Correctness, the true-class output and the best other output, all of shape (B,).

    The two outputs are returned separately (float32) so the margin can be formed in float64
    on the host, as the original did with two ``.item()`` calls; Apple GPUs have no float64.
    """
    correct = outputs.argmax(dim=1) == targets
    true_out = outputs.gather(1, targets[:, None]).squeeze(1)
    others = outputs.scatter(1, targets[:, None], float("-inf"))
    return correct, true_out, others.amax(dim=1)


class DeviceStats(NamedTuple):
    """One epoch's statistics on the device, in presentation order."""

    positions: torch.Tensor
    loss: torch.Tensor
    correct: torch.Tensor
    true_out: torch.Tensor
    other_out: torch.Tensor


@dataclasses.dataclass
class EpochStats:
    """One epoch on the host: loss float32, acc uint8, margin float64, by training position
    when ``positions`` is None, else per presentation in presentation order, ``positions``
    (int64) saying whose; train_acc float64 per batch (running accuracy in percent);
    test_acc a float (percent)."""

    loss: np.ndarray
    acc: np.ndarray
    margin: np.ndarray
    train_acc: np.ndarray
    test_acc: float
    positions: Optional[np.ndarray] = None


class EpochRecorder:
    """Device buffers for one epoch's presentations, filled batch by batch in presentation
    order; ``to_host`` turns them into statistics, by training position when
    ``by_position`` (every example presented once), else in presentation order."""

    def __init__(self, n_train, batch_size, device, by_position=True):
        self.n_train, self.batch_size, self.device = n_train, batch_size, device
        self.by_position = by_position
        self.begin_epoch(n_train)
        kw = dict(device=device)
        self.positions = torch.zeros(n_train, dtype=torch.int64, **kw)
        self.targets = torch.zeros(n_train, dtype=torch.int64, **kw)
        self.loss = torch.zeros(n_train, dtype=torch.float32, **kw)
        self.outputs = None   # (n_train, n_classes) float32, made at the first batch

    def begin_epoch(self, count):
        """The coming epoch presents ``count`` examples (at most ``n_train``)."""
        self.count = count
        self.n_batches = -(-count // self.batch_size)
        self.batch_sizes = np.minimum(self.batch_size, count - self.batch_size * np.arange(self.n_batches))
        self._stats = None

    def record(self, batch_index, positions, outputs, targets, losses):
        """Keep batch ``batch_index``'s outputs, targets and per-example losses, and the
        training ``positions`` (device int64) they belong to. ``losses`` None: the caller fills
        ``self.loss`` for the epoch before ``to_host`` (forgetting/training/custom.py)."""
        start = batch_index * self.batch_size
        end = start + len(positions)
        if self.outputs is None or self.outputs.shape[1] != outputs.shape[1]:
            self.outputs = torch.zeros(self.n_train, outputs.shape[1], dtype=torch.float32,
                                       device=self.device)
        self.outputs[start:end] = outputs.detach()   # copy_ widens bf16 (amp) to float32
        if losses is not None:
            self.loss[start:end] = losses.detach()
        self.targets[start:end] = targets
        self.positions[start:end] = positions
        self._stats = None   # the epoch's statistics are formed again from the buffers

    def epoch_device_stats(self):
        """The epoch's ``(positions, losses, correct, true_out, other_out)`` on the device, in
        presentation order (what a sampler observes, and what ``to_host`` copies)."""
        if self._stats is None:
            n = self.count
            if self.outputs is None:   # an epoch without a batch
                self.outputs = torch.zeros(self.n_train, 1, dtype=torch.float32, device=self.device)
            correct, true_out, other_out = per_example_stats(self.outputs[:n], self.targets[:n])
            self._stats = DeviceStats(self.positions[:n], self.loss[:n], correct, true_out,
                                      other_out)
        return self._stats

    def to_host(self, test_acc):
        """The finished epoch as numpy arrays, by training position or in presentation order
        (see ``EpochStats``)."""
        positions, losses, correct, true_out, other_out = self.epoch_device_stats()
        # presentation order first; copies, not views of the buffers (on the CPU .cpu() is a
        # no-op): the commit thread writes them while the next epoch refills the buffers
        correct = correct.cpu().numpy()
        positions = positions.cpu().numpy()
        loss = losses.to("cpu", copy=True).numpy()
        margin = true_out.cpu().numpy().astype(np.float64) - other_out.cpu().numpy()
        cum_seen = np.cumsum(self.batch_sizes)
        train_acc = 100.0 * np.cumsum(correct, dtype=np.int64)[cum_seen - 1] / cum_seen
        if not self.by_position:
            return EpochStats(loss=loss, acc=correct.astype(np.uint8), margin=margin,
                              train_acc=train_acc, test_acc=float(test_acc),
                              positions=positions.copy())
        by_position = EpochStats(loss=np.empty(self.n_train, dtype=np.float32),
                                 acc=np.empty(self.n_train, dtype=np.uint8),
                                 margin=np.empty(self.n_train, dtype=np.float64),
                                 train_acc=train_acc, test_acc=float(test_acc))
        by_position.loss[positions] = loss
        by_position.acc[positions] = correct
        by_position.margin[positions] = margin
        return by_position

    def presented(self, n_batches):
        """How many presentations the epoch's first ``n_batches`` batches recorded."""
        return min(n_batches * self.batch_size, self.count)

    def totals(self, start, end):
        """Summed loss and number classified correctly over presentations ``start:end`` of the
        epoch, as a float32 device tensor of 2 (no host sync; progress display reads it)."""
        correct = (self.outputs[start:end].argmax(dim=1) == self.targets[start:end]).sum()
        return torch.stack([self.loss[start:end].sum(), correct.to(torch.float32)])
