"""The samplers of --sampling (issue 11) on small known losses: what each epoch presents, with
what weight, how their state follows the recorded epochs; and the files of a sampled run
(the ragged log and the legacy pickle), checked against plain loops."""
import math
import pickle
from unittest import mock

import numpy as np
import pytest
import torch

from forgetting.files.stats_log import SampledStatsLog, open_stats_log
from forgetting.files.stats_pickle import write_stats_pickle
from forgetting.scores.forgetting import forgetting_counts
from forgetting.scores.stats_arrays import stats_to_arrays
from forgetting.training import loop
from forgetting.training.recorder import EpochStats
from forgetting.training.sampling import (ForgettingOrder, InfoBatchOrder, SgdSOrder, UniformOrder,
                                          last_presentation, make_sampler)

CPU = torch.device("cpu")


def observe(sampler, epoch, positions, losses, correct=None):
    positions = torch.as_tensor(positions, dtype=torch.int64)
    losses = torch.as_tensor(losses, dtype=torch.float32)
    if correct is None:
        correct = torch.zeros(len(positions), dtype=torch.bool)
    sampler.observe(epoch, positions, losses, torch.as_tensor(correct, dtype=torch.bool))


def full_epoch(sampler, epoch, losses, correct=None):
    """Tell ``sampler`` that every position was presented once with ``losses``."""
    observe(sampler, epoch, np.arange(len(losses)), losses, correct)


def within(count, expected, n, p, sigmas=5):
    """A binomial count within ``sigmas`` standard deviations of its mean."""
    return abs(count - expected) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


# ----------------------------------------------------------------------------- uniform

def test_uniform_is_the_original_permutation():
    np.random.seed(4)
    expected = np.random.permutation(10)
    np.random.seed(4)
    plan = UniformOrder().epoch_plan(0, 10, CPU)
    assert plan.order.tolist() == expected.tolist() and plan.weights is None
    assert make_sampler("uniform", 10, 5, 1, CPU).state_dict() is None


def test_last_presentation_takes_the_last_of_duplicates():
    last = last_presentation(torch.tensor([3, 1, 3, 0, 3]), 5)
    assert last.tolist() == [3, 1, -1, 4, -1]


# ----------------------------------------------------------------------------- sgd_s

def test_sgd_s_transient_epochs_are_uniform_epochs():
    sampler = SgdSOrder(40, 10, seed=1, device=CPU, transient_epochs=2)
    for epoch in range(2):
        np.random.seed(epoch)
        expected = np.random.permutation(40)
        np.random.seed(epoch)
        plan = sampler.epoch_plan(epoch, 40, CPU)
        assert plan.order.tolist() == expected.tolist() and plan.weights is None
        full_epoch(sampler, epoch, np.arange(40) + 1.0)
    assert bool(sampler.active.all())   # nothing leaves the set in transient epochs


def test_sgd_s_draws_in_proportion_to_the_last_loss():
    n = 4000
    losses = np.tile([1.0, 2.0, 3.0, 4.0], n // 4)   # weight share of each group: l / 10
    sampler = SgdSOrder(n, 5, seed=3, device=CPU, transient_epochs=1)
    full_epoch(sampler, 0, losses)
    order = sampler.epoch_plan(1, n, CPU).order
    assert len(order) == n                           # as many draws as the set holds
    counts = np.bincount(losses[order.numpy()].astype(int), minlength=5)[1:]
    for loss, count in zip([1, 2, 3, 4], counts):
        assert within(count, n * loss / 10, n, loss / 10), (loss, counts)
    # within a group every example is equally likely: no example far above its share
    per_example = np.bincount(order.numpy(), minlength=n)
    assert per_example[losses == 1.0].max() <= 6 and per_example[losses == 4.0].max() <= 12


def test_sgd_s_drops_the_lowest_losses_of_the_set_and_readds_from_those_outside():
    n = 200
    rng = np.random.default_rng(0)
    sampler = SgdSOrder(n, 10, seed=2, device=CPU, transient_epochs=1, drop_percent=10.0,
                        readd_percent=2.0)
    losses = rng.permutation(n).astype(np.float64) + 1.0      # distinct losses
    full_epoch(sampler, 0, losses)
    sizes = [n]
    last = losses.copy()
    for epoch in range(1, 6):
        before = sampler.active.numpy().copy()
        size = sampler.set_size(epoch)
        assert size == before.sum() == sizes[-1]
        order = sampler.epoch_plan(epoch, n, CPU).order.numpy()
        assert len(order) == size and before[order].all()      # drawn from the set only
        new = rng.permutation(n).astype(np.float64) + 1.0
        observe(sampler, epoch, order, new[: len(order)])
        # plain-loop oracle: each drawn example's loss at its last draw
        for i, position in enumerate(order):
            last[position] = new[i]
        assert np.allclose(sampler.last_loss.numpy(), last)
        in_set = [p for p in range(n) if before[p]]
        lowest = sorted(in_set, key=lambda p: (last[p], p))[: int(0.10 * size)]
        after = sampler.active.numpy()
        kept = set(in_set) - set(lowest)
        assert kept <= set(np.flatnonzero(after))
        came_back = set(np.flatnonzero(after)) - kept       # drawn from all that left
        assert came_back <= set(np.flatnonzero(~before)) | set(lowest)
        readded = min(int(0.02 * n), n - len(kept))
        assert len(came_back) == readded
        assert after.sum() == size - len(lowest) + readded == sampler.set_size(epoch + 1)
        sizes.append(after.sum())


# ----------------------------------------------------------------------------- infobatch

def test_infobatch_skips_below_mean_examples_and_rescales_the_rest():
    n, ratio = 6000, 0.3
    losses = np.tile([0.1, 0.2, 1.0, 5.0], n // 4)   # mean 1.575: the first two groups eligible
    sampler = InfoBatchOrder(n, 20, seed=5, device=CPU, prune_ratio=ratio)
    full_epoch(sampler, 0, losses)
    plan = sampler.epoch_plan(1, n, CPU)
    order, weights = plan.order.numpy(), plan.weights.numpy()
    assert len(set(order)) == len(order)             # skipping never repeats an example
    eligible = losses < losses.mean()
    presented = np.zeros(n, bool)
    presented[order] = True
    assert presented[~eligible].all()                # the others are all presented
    skipped = (~presented & eligible).sum()
    assert within(skipped, ratio * eligible.sum(), eligible.sum(), ratio)
    assert np.allclose(weights, np.where(eligible[order], 1 / (1 - ratio), 1.0))
    assert plan.weights.dtype == torch.float32


@pytest.mark.parametrize("epochs, anneal, full", [(16, 0.25, [0, 12, 13, 14, 15]),
                                                  (8, 0.125, [0, 7]), (5, 0.0, [0])])
def test_infobatch_first_and_anneal_epochs_present_every_example(epochs, anneal, full):
    n = 50
    sampler = InfoBatchOrder(n, epochs, seed=1, device=CPU, prune_ratio=0.9, anneal=anneal)
    full_epoch(sampler, 0, np.arange(n, dtype=float))
    got = []
    for epoch in range(epochs):
        np.random.seed(epoch)
        expected = np.random.permutation(n)
        np.random.seed(epoch)
        plan = sampler.epoch_plan(epoch, n, CPU)
        if plan.weights is None:
            assert plan.order.tolist() == expected.tolist()   # uniform's epoch, bit for bit
            got.append(epoch)
        else:
            assert len(plan.order) < n   # 0.9 of 25 eligible: some are skipped
    assert got == full


@pytest.mark.parametrize("mode", ["infobatch", "forgetting"])
def test_rescaled_loss_is_an_unbiased_estimate_of_the_full_loss(mode):
    """Over many epochs' draws, the weighted sum of the presented losses / n averages to the
    full-batch mean loss (within a few standard errors), although about a third is skipped."""
    n, ratio, draws = 64, 0.6, 3000
    rng = np.random.default_rng(1)
    losses = rng.exponential(1.0, n)
    sampler = make_sampler(mode, n, 10 ** 6, 7, CPU, prune_ratio=ratio, anneal=0.0,
                           **({"transient_epochs": 1} if mode == "forgetting" else {}))
    full_epoch(sampler, 0, losses, correct=rng.random(n) < 0.5)   # forgetting: half learned
    estimates, kept = [], []
    for _ in range(draws):
        plan = sampler.epoch_plan(1, n, CPU)
        estimates.append(float((plan.weights.double().numpy() * losses[plan.order.numpy()]).sum()) / n)
        kept.append(len(plan.order))
    estimates = np.array(estimates)
    standard_error = estimates.std() / math.sqrt(draws)
    assert abs(estimates.mean() - losses.mean()) < 4 * standard_error
    assert np.mean(kept) < 0.85 * n      # it did skip: the estimate is not trivially exact
    assert estimates.std() > 0


def test_train_epoch_applies_the_weights_in_the_mean_loss():
    """One batch of 4 with weights: the SGD step (lr 1) is minus the gradient of the weighted
    mean loss, computed here by hand."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2, bias=False)
    start = model.weight.detach().clone()
    x = torch.randn(4, 3)
    y = torch.tensor([0, 1, 1, 0])
    weights = torch.tensor([1.0, 2.5, 1.0, 2.5])
    order = torch.tensor([2, 0, 3, 1])

    class Job:
        pass

    job = Job()
    job.lr_for_epoch, job.model, job.batch_size, job.device, job.amp = None, model, 4, CPU, False
    job.optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    job.train_x, job.train_y = x, y
    job.prepare_train = lambda batch: batch
    job.loss_fn = lambda out, t: torch.nn.functional.cross_entropy(out, t, reduction="none")
    recorder = mock.Mock()   # stands in for the Recorder: what train_epoch hands it
    loop.train_epoch(job, recorder, 0, order, weights=weights)
    w = start.clone().requires_grad_(True)
    losses = torch.nn.functional.cross_entropy(x[order] @ w.T, y[order], reduction="none")
    (sum(weights[i] * losses[i] for i in range(4)) / 4).backward()
    assert torch.allclose(model.weight, start - w.grad, atol=1e-6)
    positions, _, _, recorded = recorder.record.call_args.args   # the one batch
    assert positions.tolist() == order.tolist() and torch.allclose(recorded, losses.detach())


# ----------------------------------------------------------------------------- forgetting

def test_forgetting_skips_only_examples_learned_and_never_forgotten():
    """Six examples with hand-written accuracy histories over three full epochs; the oracle
    is the paper's definition over each history, by a plain loop."""
    histories = {0: [1, 1, 1], 1: [0, 1, 1], 2: [1, 0, 1], 3: [0, 0, 0], 4: [1, 1, 0], 5: [0, 0, 1]}
    n = len(histories)
    sampler = ForgettingOrder(n, 100, seed=1, device=CPU, transient_epochs=3, prune_ratio=0.99)
    for epoch in range(3):
        assert sampler.epoch_plan(epoch, n, CPU).weights is None      # transient: uniform
        full_epoch(sampler, epoch, np.ones(n), [histories[i][epoch] for i in range(n)])

    def unforgettable(history):
        learned = any(history)
        forgotten = any(a == 1 and b == 0 for a, b in zip(history, history[1:]))
        return learned and not forgotten

    expected = [i for i in range(n) if unforgettable(histories[i])]
    assert expected == [0, 1, 5]
    assert np.flatnonzero(sampler.eligible().numpy()).tolist() == expected
    seen_skipped = set()
    for _ in range(50):
        plan = sampler.epoch_plan(3, n, CPU)
        order = plan.order.tolist()
        assert {2, 3, 4} <= set(order)                 # forgotten or never learned: always in
        seen_skipped |= set(range(n)) - set(order)
        assert np.allclose(plan.weights, [1 / (1 - 0.99) if i in expected else 1.0 for i in order])
    assert seen_skipped == set(expected)
    # a skipped example keeps its status; presented and misclassified, it is forgotten for good
    observe(sampler, 3, [0, 2], [1.0, 1.0], [False, True])
    assert np.flatnonzero(sampler.eligible().numpy()).tolist() == [1, 5]


def test_sampler_state_round_trips_and_continues_the_same_draws():
    a = SgdSOrder(30, 10, seed=9, device=CPU)
    full_epoch(a, 0, np.arange(30) + 1.0)
    observe(a, 1, a.epoch_plan(1, 30, CPU).order, np.ones(30))
    b = SgdSOrder(30, 10, seed=1, device=CPU)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert torch.equal(a.active, b.active) and torch.equal(a.last_loss, b.last_loss)
    assert torch.equal(a.epoch_plan(2, 30, CPU).order, b.epoch_plan(2, 30, CPU).order)


# ----------------------------------------------------------------------------- files

def sampled_epochs(n, epochs, seed):
    """Random epochs of a sampled run: positions with repeats and gaps, and their stats."""
    rng = np.random.default_rng(seed)
    out = []
    for epoch in range(epochs):
        m = int(rng.integers(0, n + 1))
        positions = rng.integers(0, n, m)
        batches = int(rng.integers(1, 4))
        out.append(EpochStats(loss=rng.random(m).astype(np.float32),
                              acc=rng.integers(0, 2, m).astype(np.uint8),
                              margin=rng.normal(size=m), train_acc=rng.random(batches) * 100,
                              test_acc=float(rng.random() * 100), positions=positions))
    return out


def write_sampled_run(tmp_path, ids, epochs):
    """Log ``epochs`` and write their legacy pickle: (log path, pickle path, loaded pickle)."""
    log_path, out = str(tmp_path / "log.bin"), str(tmp_path / "stats.pkl")
    log = SampledStatsLog.create(log_path, ids)
    for epoch, stats in enumerate(epochs):
        log.append(epoch, stats)
    write_stats_pickle(log_path, len(epochs), out)
    with open(out, "rb") as handle:
        return log_path, out, pickle.load(handle)


def test_a_sampled_log_gives_the_ragged_legacy_pickle(tmp_path):
    ids = np.array([17, 3, 99, 42, 5])
    epochs = sampled_epochs(len(ids), 6, seed=2)
    log_path, out, got = write_sampled_run(tmp_path, ids, epochs)
    # plain-loop oracle: every presentation appended to its example's lists, in order
    expected = {int(i): [[], [], []] for i in ids}
    train = []
    for stats in epochs:
        for k, position in enumerate(stats.positions):
            record = expected[int(ids[position])]
            record[0].append(float(stats.loss[k]))
            record[1].append(int(stats.acc[k]))
            record[2].append(float(stats.margin[k]))
        train.extend(stats.train_acc.tolist())
    expected["train"] = [[], train]
    expected["test"] = [[], [s.test_acc for s in epochs]]
    assert got == expected
    assert all(type(a) is int for k, v in got.items() if not isinstance(k, str) for a in v[1])

    # fewer epochs: the prefix; a reopened log finds its records again
    reopened = open_stats_log(log_path)
    assert reopened.sampled and reopened.records_on_disk() == 6 and reopened.holds(6)
    assert not reopened.holds(7)
    write_stats_pickle(log_path, 2, out)
    with open(out, "rb") as handle:
        assert pickle.load(handle)["test"] == [[], [s.test_acc for s in epochs[:2]]]


def test_a_record_rewritten_after_a_crash_replaces_the_later_ones(tmp_path):
    ids = np.arange(4)
    epochs = sampled_epochs(4, 4, seed=5)
    path = str(tmp_path / "log.bin")
    log = SampledStatsLog.create(path, ids)
    for epoch, stats in enumerate(epochs[:3]):
        log.append(epoch, stats)
    resumed = open_stats_log(path)          # the state said 1 epoch: record 1 is written again
    resumed.append(1, epochs[3])
    assert resumed.records_on_disk() == 2
    records = resumed.read(2)
    assert records[1]["positions"].tolist() == epochs[3].positions.tolist()
    assert float(records[0]["test_acc"]) == epochs[0].test_acc


def test_forgetting_counts_of_a_ragged_pickle_match_a_plain_loop(tmp_path):
    _, _, stats = write_sampled_run(tmp_path, np.arange(8), sampled_epochs(8, 7, seed=11))
    runs = stats_to_arrays(stats, 200)
    counts = forgetting_counts(runs.accs, 200, runs.lengths)
    for row, i in enumerate(runs.ids):
        accs = stats[int(i)][1]
        events = sum(1 for a, b in zip(accs, accs[1:]) if a == 1 and b == 0)
        assert counts[row] == (events if any(accs) else 200)


def test_an_epoch_that_skips_every_example_changes_no_state():
    sampler = ForgettingOrder(3, 10, seed=1, device=CPU, transient_epochs=0, prune_ratio=0.999)
    full_epoch(sampler, 0, [0.5, 0.5, 0.5], [True, True, True])
    plan = sampler.epoch_plan(1, 3, CPU)
    assert len(plan.order) == 0 and len(plan.weights) == 0
    before = {k: v.clone() for k, v in sampler.state_dict().items() if k != "generator"}
    empty = torch.zeros(0, dtype=torch.int64)
    sampler.observe(1, empty, torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    infobatch = InfoBatchOrder(3, 10, seed=1, device=CPU)
    infobatch.observe(0, empty, torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    after = sampler.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
