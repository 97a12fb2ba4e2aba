"""Per-example statistics of every presentation, computed for the whole batch at once.

SPEC section 3: for example i with target y_i and model output o_i, taken in train mode
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
"""
import dataclasses

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


@dataclasses.dataclass
class EpochStats:
    """One epoch on the host, by training position: loss float32, acc uint8, margin float64;
    train_acc float64 per batch (running accuracy in percent); test_acc a float (percent)."""

    loss: np.ndarray
    acc: np.ndarray
    margin: np.ndarray
    train_acc: np.ndarray
    test_acc: float


class EpochRecorder:
    """Device buffers for one epoch's presentations, filled batch by batch in presentation
    order; ``to_host`` turns them into statistics by training position."""

    def __init__(self, n_train, batch_size, device):
        self.n_train, self.batch_size, self.device = n_train, batch_size, device
        self.n_batches = -(-n_train // batch_size)
        self.batch_sizes = np.minimum(batch_size, n_train - batch_size * np.arange(self.n_batches))
        kw = dict(device=device)
        self.positions = torch.zeros(n_train, dtype=torch.int64, **kw)
        self.targets = torch.zeros(n_train, dtype=torch.int64, **kw)
        self.loss = torch.zeros(n_train, dtype=torch.float32, **kw)
        self.outputs = None   # (n_train, n_classes) float32, made at the first batch

    def record(self, batch_index, positions, outputs, targets, losses):
        """Keep batch ``batch_index``'s outputs, targets and per-example losses, and the
        training ``positions`` (device int64) they belong to."""
        start = batch_index * self.batch_size
        end = start + len(positions)
        if self.outputs is None or self.outputs.shape[1] != outputs.shape[1]:
            self.outputs = torch.zeros(self.n_train, outputs.shape[1], dtype=torch.float32,
                                       device=self.device)
        self.outputs[start:end] = outputs.detach()   # copy_ widens bf16 (amp) to float32
        self.loss[start:end] = losses.detach()
        self.targets[start:end] = targets
        self.positions[start:end] = positions

    def to_host(self, test_acc):
        """The finished epoch as numpy arrays by training position."""
        correct, true_out, other_out = per_example_stats(self.outputs, self.targets)
        correct = correct.cpu().numpy()                      # presentation order
        positions = self.positions.cpu().numpy()
        cum_correct = np.cumsum(correct, dtype=np.int64)[np.cumsum(self.batch_sizes) - 1]
        cum_seen = np.cumsum(self.batch_sizes)
        loss = np.empty(self.n_train, dtype=np.float32)
        acc = np.empty(self.n_train, dtype=np.uint8)
        margin = np.empty(self.n_train, dtype=np.float64)
        loss[positions] = self.loss.cpu().numpy()
        acc[positions] = correct
        margin[positions] = true_out.cpu().numpy().astype(np.float64) - other_out.cpu().numpy()
        return EpochStats(
            loss=loss,
            acc=acc,
            margin=margin,
            train_acc=100.0 * cum_correct / cum_seen,
            test_acc=float(test_acc),
        )

    def presented(self, n_batches):
        """How many presentations the epoch's first ``n_batches`` batches recorded."""
        return min(n_batches * self.batch_size, self.n_train)

    def totals(self, start, end):
        """Summed loss and number classified correctly over presentations ``start:end`` of the
        epoch, as a float32 device tensor of 2 (no host sync; progress display reads it)."""
        correct = (self.outputs[start:end].argmax(dim=1) == self.targets[start:end]).sum()
        return torch.stack([self.loss[start:end].sum(), correct.to(torch.float32)])
