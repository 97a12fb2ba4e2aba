"""Per-example statistics of every presentation, computed for the whole batch at once.

SPEC section 3: for example i with target y_i and model output o_i, taken in train mode
before the optimiser step,
  loss   = the per-example loss (cross-entropy; NLL on MNIST's log-softmax output),
  acc    = argmax(o_i) == y_i (argmax takes the first maximum),
  margin = o_i[y_i] - max_{k != y_i} o_i[k].
The recorder keeps one epoch on the device, indexed by training position, and copies it to
the host once per epoch: nothing in the batch loop waits for the device.
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
    """Device buffers for one epoch's presentations, written by position with tensor ops."""

    def __init__(self, n_train, batch_size, device):
        self.n_batches = -(-n_train // batch_size)
        self.batch_sizes = np.minimum(batch_size, n_train - batch_size * np.arange(self.n_batches))
        kw = dict(device=device)
        self.loss = torch.zeros(n_train, dtype=torch.float32, **kw)
        self.acc = torch.zeros(n_train, dtype=torch.bool, **kw)
        self.true_out = torch.zeros(n_train, dtype=torch.float32, **kw)
        self.other_out = torch.zeros(n_train, dtype=torch.float32, **kw)
        self.batch_correct = torch.zeros(self.n_batches, dtype=torch.int64, **kw)

    def record(self, batch_index, positions, outputs, targets, losses):
        """Store the batch's statistics at ``positions`` (training positions, device int64)."""
        outputs, losses = outputs.detach().float(), losses.detach().float()
        correct, true_out, other_out = per_example_stats(outputs, targets)
        self.loss[positions] = losses
        self.acc[positions] = correct
        self.true_out[positions] = true_out
        self.other_out[positions] = other_out
        self.batch_correct[batch_index] = correct.sum()

    def to_host(self, test_acc):
        """The finished epoch as numpy arrays (one device-to-host copy per buffer)."""
        cum_correct = np.cumsum(self.batch_correct.cpu().numpy())
        cum_seen = np.cumsum(self.batch_sizes)
        margin = self.true_out.cpu().numpy().astype(np.float64) - self.other_out.cpu().numpy()
        return EpochStats(
            loss=self.loss.cpu().numpy(),
            acc=self.acc.cpu().numpy().astype(np.uint8),
            margin=margin,
            train_acc=100.0 * cum_correct / cum_seen,
            test_acc=float(test_acc),
        )
