"""Which examples an epoch presents, in what order and with what loss weight: the loop asks
its sampler each epoch (``epoch_plan``) and tells it what the epoch recorded (``observe``).

Positions index the training set as the job holds it (``job.train_x``), not example ids.

``UniformOrder`` is the original's rule (docs/training.md#each-epoch): every training position once, in a
fresh ``numpy.random.permutation`` drawn from numpy's global generator at the start of the
epoch, so the resume state's numpy RNG reproduces it. It has no state of its own.

The other samplers (``--sampling``, issue 11) present fewer examples:

- ``sgd_s`` (loss-based resampling): ``transient_epochs`` uniform epochs; then each epoch
  draws as many positions as the current set holds, with replacement, with probability
  proportional to each example's last recorded loss; after each such epoch the
  ``drop_percent`` lowest-loss examples of the set leave it (ties by position) and
  ``readd_percent`` of the training set, drawn at random from those outside it, comes back.
  No loss rescaling (the blog's method).
- ``infobatch``: each epoch, every example whose last loss is below the mean of the last
  losses is skipped with probability ``prune_ratio``; the kept below-mean ones have their
  loss scaled by 1 / (1 - prune_ratio), so the expected sum of the epoch's weighted losses
  (and gradients) is the full epoch's. Epoch 0 (no loss recorded yet) and the epochs from
  ``int(epochs * (1 - anneal))`` on present every example, unweighted.
- ``forgetting``: the same skipping and rescaling, but the examples that may be skipped are
  those learned and never forgotten so far in this run (by the paper's definition, over the
  presentations so far), from epoch ``transient_epochs`` on, until the anneal epochs.

Every epoch that presents every example once (transient, first and anneal epochs) is
``UniformOrder``'s epoch, so those epochs draw exactly what a uniform run would. The other
epochs draw on the device from the sampler's own seeded ``torch.Generator`` (a few tensor
ops per epoch, nothing per batch); the pruning samplers read one count back to the host per
epoch (the length of the order), ``sgd_s`` none (its set size follows from the counts).
Their state (last losses, the set, the forgetting flags, the generator) is saved in the
resume state through ``state_dict``/``load_state_dict``, so ``--resume`` continues exactly.
"""
from typing import NamedTuple, Optional

import numpy as np
import torch

# The sampler's generator is seeded from --seed plus this offset, so its stream is not the
# CIFAR augmentation generator's (seeded with --seed itself on the same device).
GENERATOR_SEED_OFFSET = 0x5A3D1E


class EpochPlan(NamedTuple):
    """``order``: the positions to present (int64 on the device; batches are consecutive
    slices of it, the last may be short; a position may appear 0, 1 or more times);
    ``weights``: float32 per entry of ``order`` that multiplies its loss in the step's mean,
    or None for all ones."""

    order: torch.Tensor
    weights: Optional[torch.Tensor] = None


class UniformOrder:
    """Every training position once per epoch, in a fresh ``numpy.random.permutation``."""

    presents_each_once = True

    def epoch_plan(self, epoch, n_train, device):
        return EpochPlan(torch.from_numpy(np.random.permutation(n_train)).to(device))

    def observe(self, epoch, positions, losses, correct):
        """What epoch ``epoch`` recorded: nothing to keep."""

    def state_dict(self):
        """None: nothing beyond the global RNGs that the resume state already holds."""
        return None

    def load_state_dict(self, state):
        pass


def last_presentation(positions, n_train):
    """For each position in ``0..n_train-1``, the index in ``positions`` of its last
    occurrence, or -1 if absent (device int64). ``amax`` is order-independent, so this is
    deterministic where a scatter of duplicates is not (CUDA)."""
    index = torch.arange(len(positions), device=positions.device)
    last = torch.full((n_train,), -1, dtype=torch.int64, device=positions.device)
    return last.scatter_reduce(0, positions, index, reduce="amax")


class _SampledOrder:
    """What the non-uniform samplers share: the last recorded loss of every position, the
    device generator, the uniform epochs, and the resume state."""

    presents_each_once = False
    _state_tensors = ("last_loss",)

    def __init__(self, n_train, epochs, seed, device):
        self.n_train, self.epochs, self.device = n_train, epochs, device
        self.uniform = UniformOrder()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + GENERATOR_SEED_OFFSET)
        self.last_loss = torch.zeros(n_train, dtype=torch.float32, device=device)

    def observe(self, epoch, positions, losses, correct):
        """Keep each presented position's loss at its last presentation of the epoch."""
        if len(positions) == 0:   # every example skipped (a tiny training set): nothing new
            return None, None
        last = last_presentation(positions, self.n_train)
        presented = last >= 0
        self.last_loss = torch.where(presented, losses[last.clamp_min(0)], self.last_loss)
        return last, presented

    def state_dict(self):
        state = {name: getattr(self, name).detach().to("cpu", copy=True)
                 for name in self._state_tensors}
        state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state):
        for name in self._state_tensors:
            setattr(self, name, state[name].to(self.device))
        self.generator.set_state(state["generator"])

    def _randperm(self):
        return torch.randperm(self.n_train, generator=self.generator, device=self.device)


class SgdSOrder(_SampledOrder):
    """SGD-S (see the module docstring). State: ``last_loss`` and ``active`` (the set)."""

    _state_tensors = ("last_loss", "active")

    def __init__(self, n_train, epochs, seed, device, transient_epochs=1, drop_percent=10.0,
                 readd_percent=1.0):
        super().__init__(n_train, epochs, seed, device)
        self.transient_epochs = transient_epochs
        self.drop_percent, self.readd_percent = drop_percent, readd_percent
        self.active = torch.ones(n_train, dtype=torch.bool, device=device)

    def set_size(self, epoch):
        """How many examples the set holds at the start of epoch ``epoch``: pure arithmetic on
        the counts, so drawing that many needs no read-back from the device."""
        size = self.n_train
        for _ in range(self.transient_epochs, epoch):
            size -= self._dropped(size)
            size += self._readded(size)
        return size

    def _dropped(self, size):
        return int(self.drop_percent / 100 * size)

    def _readded(self, size_after_drop):
        return min(int(self.readd_percent / 100 * self.n_train), self.n_train - size_after_drop)

    def epoch_plan(self, epoch, n_train, device):
        if epoch < self.transient_epochs:
            return self.uniform.epoch_plan(epoch, n_train, device)
        # clamp: an example whose loss is exactly 0 keeps a (negligible) chance, and the
        # weights never sum to 0
        weights = torch.where(self.active, self.last_loss.clamp_min(1e-30), 0.0)
        order = torch.multinomial(weights, self.set_size(epoch), replacement=True,
                                  generator=self.generator)
        return EpochPlan(order)

    def observe(self, epoch, positions, losses, correct):
        super().observe(epoch, positions, losses, correct)
        if epoch < self.transient_epochs:
            return
        size = self.set_size(epoch)
        dropped = self._dropped(size)
        lowest = torch.sort(torch.where(self.active, self.last_loss, float("inf")), stable=True)
        self.active[lowest.indices[:dropped]] = False
        readded = self._readded(size - dropped)
        keys = torch.rand(self.n_train, generator=self.generator, device=self.device)
        keys = torch.where(self.active, 2.0, keys)     # only those outside the set can come back
        self.active[torch.sort(keys, stable=True).indices[:readded]] = True


class _PruningOrder(_SampledOrder):
    """Skip each eligible example with probability ``prune_ratio`` and weight the kept
    eligible ones by 1 / (1 - prune_ratio); every example, unweighted, in ``full_epoch``s."""

    def __init__(self, n_train, epochs, seed, device, prune_ratio=0.5, anneal=0.125):
        super().__init__(n_train, epochs, seed, device)
        self.prune_ratio, self.anneal = prune_ratio, anneal

    def full_epoch(self, epoch):
        return epoch >= int(self.epochs * (1 - self.anneal))

    def eligible(self):
        raise NotImplementedError

    def epoch_plan(self, epoch, n_train, device):
        if self.full_epoch(epoch):
            return self.uniform.epoch_plan(epoch, n_train, device)
        eligible = self.eligible()
        skip = eligible & (torch.rand(n_train, generator=self.generator, device=device)
                           < self.prune_ratio)
        permutation = self._randperm()
        order = permutation[~skip[permutation]]   # one read-back per epoch: the order's length
        weights = torch.where(eligible[order], 1.0 / (1.0 - self.prune_ratio), 1.0)
        return EpochPlan(order, weights.to(torch.float32))


class InfoBatchOrder(_PruningOrder):
    """InfoBatch: the below-mean-loss examples may be skipped (epoch 0 is uniform)."""

    def full_epoch(self, epoch):
        return epoch == 0 or super().full_epoch(epoch)

    def eligible(self):
        return self.last_loss < self.last_loss.mean()


class ForgettingOrder(_PruningOrder):
    """Online unforgettable examples may be skipped, from epoch ``transient_epochs`` on.

    State: ``learned`` (correct at some presentation), ``forgotten`` (a presentation
    misclassified right after a correctly classified one), ``last_acc`` (the last one)."""

    _state_tensors = ("last_loss", "learned", "forgotten", "last_acc")

    def __init__(self, n_train, epochs, seed, device, transient_epochs=1, prune_ratio=0.5,
                 anneal=0.125):
        super().__init__(n_train, epochs, seed, device, prune_ratio, anneal)
        self.transient_epochs = transient_epochs
        self.learned, self.forgotten, self.last_acc = (
            torch.zeros(n_train, dtype=torch.bool, device=device) for _ in range(3))

    def full_epoch(self, epoch):
        return epoch < self.transient_epochs or super().full_epoch(epoch)

    def eligible(self):
        return self.learned & ~self.forgotten

    def observe(self, epoch, positions, losses, correct):
        if len(positions) == 0:   # every example skipped (a tiny training set): nothing learned
            return
        # This sampler presents an example at most once per epoch, so its last presentation
        # is its only one and the epoch adds at most one transition per example.
        last, presented = super().observe(epoch, positions, losses, correct)
        acc = presented & correct[last.clamp_min(0)]
        self.forgotten |= presented & self.last_acc & ~acc
        self.learned |= acc
        self.last_acc = torch.where(presented, acc, self.last_acc)


SAMPLERS = {"sgd_s": SgdSOrder, "infobatch": InfoBatchOrder, "forgetting": ForgettingOrder}


def make_sampler(mode, n_train, epochs, seed, device, **options):
    """The sampler for ``--sampling mode`` with its options (``uniform``: ``UniformOrder``)."""
    if mode == "uniform":
        return UniformOrder()
    return SAMPLERS[mode](n_train, epochs, seed, device, **options)
