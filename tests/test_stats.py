"""The batched statistics recorder against a plain per-example loop written the original's way.

The oracle below is the original run_mnist.py/run_cifar.py inner loop, one example at a
time (tests/oracles.py): ``torch.max`` for the prediction, ``torch.sort`` of the row for the
margin, and ``.item()`` everywhere, so every number is a Python float. The recorder must give the same
numbers: margins equal as float64, losses equal as float32, accuracies equal, and the
running training accuracy ``100. * correct / seen`` after every batch equal as floats.
"""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from forgetting.files import stats_pickle
from forgetting.files.stats_log import StatsLog, record_dtype
from forgetting.training.recorder import EpochRecorder, per_example_stats
from oracles import original_example_stats


# ----------------------------------------------------------------------------- the oracle

def oracle_epoch(n_train, batches):
    """Per position (loss, acc, margin) and the running train accuracy after each batch."""
    loss, acc, margin = [None] * n_train, [None] * n_train, [None] * n_train
    train_acc, correct, seen = [], 0, 0
    for positions, outputs, targets, losses in batches:
        _, predicted = torch.max(outputs, 1)
        for j, pos in enumerate(positions.tolist()):
            loss[pos], acc[pos], margin[pos] = original_example_stats(outputs, targets, losses, j)
        seen += targets.size(0)
        correct += predicted.eq(targets).sum().item()
        train_acc.append(100. * correct / float(seen))
    return loss, acc, margin, train_acc


# ----------------------------------------------------------------------------- inputs

def tie_rows(gen, n_classes):
    """Rows built to exercise every tie: repeated maxima, the true class tied for the max
    (first and not first), all-equal rows, and the true class the unique max / not max."""
    rows, targets = [], []
    base = torch.randn(n_classes, generator=gen)

    r = base.clone(); r[2] = r[6] = base.abs().max() + 1            # two maxima, target elsewhere
    rows.append(r); targets.append(0)
    r = base.clone(); r[3] = r[8] = base.abs().max() + 1            # target is the FIRST of two maxima
    rows.append(r); targets.append(3)
    r = base.clone(); r[3] = r[8] = base.abs().max() + 1            # target is the SECOND of two maxima
    rows.append(r); targets.append(8)
    r = base.clone(); r[1] = r[4] = r[9] = base.abs().max() + 1     # three maxima, target is the middle
    rows.append(r); targets.append(4)
    rows.append(torch.full((n_classes,), -2.3)); targets.append(0)  # all equal, target first
    rows.append(torch.full((n_classes,), 0.7)); targets.append(5)   # all equal, target not first
    r = base.clone(); r[7] = base.abs().max() + 1                   # unique max is the target
    rows.append(r); targets.append(7)
    r = base.clone(); r[7] = base.abs().max() + 1; r[2] = r[5] = r[7] - 0.5   # tied runners-up
    rows.append(r); targets.append(7)
    r = base.clone(); r[0] = base.abs().max() + 1                   # unique max is not the target
    rows.append(r); targets.append(9)
    return torch.stack(rows), torch.tensor(targets)


def random_batches(seed, n_train, batch_size, n_classes=10, log_softmax=True, ties=True):
    """A random epoch: a permutation of positions cut into batches, outputs with ties mixed in."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_train, generator=gen)
    tied_outputs, tied_targets = tie_rows(gen, n_classes)
    batches = []
    for start in range(0, n_train, batch_size):
        positions = order[start:start + batch_size]
        b = len(positions)
        # coarse values (few distinct levels) make ties between other classes frequent too
        logits = torch.randint(-3, 4, (b, n_classes), generator=gen).float() * 0.5
        logits += torch.randn(b, n_classes, generator=gen) * (torch.rand(b, 1, generator=gen) < 0.5)
        targets = torch.randint(0, n_classes, (b,), generator=gen)
        if ties:
            k = min(b, len(tied_targets))
            slots = torch.randperm(b, generator=gen)[:k]
            pick = torch.randperm(len(tied_targets), generator=gen)[:k]
            logits[slots], targets[slots] = tied_outputs[pick], tied_targets[pick]
        if log_softmax:
            outputs = F.log_softmax(logits, dim=1)
            losses = F.nll_loss(outputs, targets, reduction="none")
        else:
            outputs = logits
            losses = F.cross_entropy(outputs, targets, reduction="none")
        batches.append((positions, outputs, targets, losses))
    return batches


def record_epoch(n_train, batch_size, batches, recorder=None, test_acc=97.5):
    recorder = recorder or EpochRecorder(n_train, batch_size, torch.device("cpu"))
    for batch_index, (positions, outputs, targets, losses) in enumerate(batches):
        recorder.record(batch_index, positions, outputs, targets, losses)
    return recorder, recorder.to_host(test_acc)


def assert_matches_oracle(stats, n_train, batches):
    loss, acc, margin, train_acc = oracle_epoch(n_train, batches)
    assert stats.margin.dtype == np.float64
    assert stats.loss.dtype == np.float32
    # margins: exactly the Python float the original computed
    assert stats.margin.tolist() == margin
    # losses: the original's Python float is the float32 value widened, so equal as float32
    np.testing.assert_array_equal(stats.loss, np.array(loss, dtype=np.float32))
    assert [float(v) for v in stats.loss] == loss
    assert stats.acc.tolist() == acc
    assert stats.train_acc.tolist() == train_acc


# ----------------------------------------------------------------------------- tests

def test_tie_rows_cover_the_cases():
    """The hand-made tie rows really are what they claim (guards the test itself)."""
    outputs, targets = tie_rows(torch.Generator().manual_seed(0), 10)
    predicted = outputs.argmax(1)
    assert predicted.tolist()[:6] == [2, 3, 3, 1, 0, 0]
    correct, true_out, other_out = per_example_stats(outputs, targets)
    assert correct.tolist() == [False, True, False, False, True, False, True, True, False]
    # target tied for the max: margin 0 whether or not it is the first maximum
    assert (true_out - other_out)[1:6].tolist() == [0.0] * 5


@pytest.mark.parametrize("log_softmax", [True, False], ids=["log_softmax+nll", "logits+ce"])
@pytest.mark.parametrize("n_train,batch_size", [(23, 5), (64, 64), (65, 64), (100, 7), (9, 20)])
def test_recorder_matches_original_loop(n_train, batch_size, log_softmax):
    batches = random_batches(n_train * 1000 + batch_size, n_train, batch_size, log_softmax=log_softmax)
    assert len(batches) == -(-n_train // batch_size)
    _, stats = record_epoch(n_train, batch_size, batches)
    assert_matches_oracle(stats, n_train, batches)
    assert stats.test_acc == 97.5 and type(stats.test_acc) is float


def test_recorder_reused_across_epochs():
    """The loop keeps one recorder for the whole run: the second epoch must not see the first."""
    n_train, batch_size = 37, 8
    recorder = None
    for epoch in range(3):
        batches = random_batches(epoch, n_train, batch_size)
        recorder, stats = record_epoch(n_train, batch_size, batches, recorder, test_acc=epoch)
        assert_matches_oracle(stats, n_train, batches)
        assert stats.test_acc == float(epoch)


def test_running_train_accuracy_by_hand():
    """Three batches of 4, 4, 2 with 3, 0, 2 correct: 75, 37.5, 50 percent."""
    n_train, batch_size = 10, 4
    eye = torch.eye(10)
    targets = [torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7]), torch.tensor([8, 9])]
    preds = [torch.tensor([0, 1, 2, 9]), torch.tensor([0, 0, 0, 0]), torch.tensor([8, 9])]
    batches, start = [], 0
    for t, p in zip(targets, preds):
        outputs = eye[p]
        positions = torch.arange(start, start + len(t))
        start += len(t)
        batches.append((positions, outputs, t, F.cross_entropy(outputs, t, reduction="none")))
    _, stats = record_epoch(n_train, batch_size, batches)
    assert stats.train_acc.tolist() == [75.0, 100. * 3 / 8, 50.0]
    assert stats.acc.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert stats.margin.tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(n_train=st.integers(1, 40), batch_size=st.integers(1, 16), seed=st.integers(0, 2**31 - 1),
       levels=st.integers(1, 4), n_classes=st.integers(2, 12))
def test_recorder_property(n_train, batch_size, seed, levels, n_classes):
    """Random sizes, class counts and heavily quantised outputs (so ties are everywhere)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_train, generator=gen)
    batches = []
    for start in range(0, n_train, batch_size):
        positions = order[start:start + batch_size]
        logits = torch.randint(0, levels, (len(positions), n_classes), generator=gen).float()
        targets = torch.randint(0, n_classes, (len(positions),), generator=gen)
        batches.append((positions, logits, targets, F.cross_entropy(logits, targets, reduction="none")))
    _, stats = record_epoch(n_train, batch_size, batches)
    assert_matches_oracle(stats, n_train, batches)


# ----------------------------------------------------------------------------- legacy layout

def make_records(n_train, n_batches, epochs, seed=0):
    rng = np.random.default_rng(seed)
    records = np.zeros(epochs, dtype=record_dtype(n_train, n_batches))
    records["loss"] = rng.random((epochs, n_train), dtype=np.float32) * 3
    records["margin"] = rng.normal(size=(epochs, n_train))
    records["acc"] = rng.integers(0, 2, (epochs, n_train))
    records["train_acc"] = rng.random((epochs, n_batches)) * 100
    records["test_acc"] = rng.random(epochs) * 100
    return records


def assert_legacy_layout(stats, ids, records):
    epochs = len(records)
    assert list(stats) == [int(i) for i in ids] + ["train", "test"]
    for pos, example_id in enumerate(ids):
        assert type(example_id) is int or isinstance(example_id, np.integer)
        key = next(k for k in stats if k == example_id)
        assert type(key) is int
        value = stats[key]
        assert type(value) is list and len(value) == 3
        losses, accs, margins = value
        assert all(type(v) is list and len(v) == epochs for v in value)
        assert all(type(v) is float for v in losses)
        assert all(type(v) is int and v in (0, 1) for v in accs)
        assert all(type(v) is float for v in margins)
        assert losses == [float(records["loss"][e, pos]) for e in range(epochs)]
        assert accs == [int(records["acc"][e, pos]) for e in range(epochs)]
        assert margins == [float(records["margin"][e, pos]) for e in range(epochs)]
    for key, expected in (("train", records["train_acc"].reshape(-1)), ("test", records["test_acc"])):
        entry = stats[key]
        assert type(entry) is list and len(entry) == 2
        assert entry[0] == [] and type(entry[0]) is list
        assert type(entry[1]) is list and all(type(v) is float for v in entry[1])
        assert entry[1] == [float(v) for v in expected]


def test_build_stats_dict_layout():
    ids = np.array([7, 2, 11, 0, 5], dtype=np.int64)      # training order, not sorted
    records = make_records(len(ids), n_batches=3, epochs=4)
    stats = stats_pickle.build_stats_dict(ids, records)
    assert_legacy_layout(stats, ids.tolist(), records)
    # 'train' is epoch-major: every batch of epoch 0, then every batch of epoch 1, ...
    assert stats["train"][1][3] == float(records["train_acc"][1, 0])
    # a plain pickle round trip keeps it all (no numpy types inside)
    assert pickle.loads(pickle.dumps(stats)) == stats
    assert b"numpy" not in pickle.dumps(stats)


def test_build_stats_dict_zero_epochs():
    ids = np.array([3, 1], dtype=np.int64)
    stats = stats_pickle.build_stats_dict(ids, make_records(2, 2, 0))
    assert stats == {3: [[], [], []], 1: [[], [], []], "train": [[], []], "test": [[], []]}


def test_best_acc_text():
    records = make_records(4, 2, 3)
    stats = stats_pickle.build_stats_dict(np.arange(4), records)
    text = stats_pickle.best_acc_text(float(records["train_acc"].max()), float(records["test_acc"].max()))
    assert text == f"train test \n{max(stats['train'][1])} {max(stats['test'][1])}"
    assert not text.endswith("\n")


def test_runlog_round_trip_to_legacy_dict(tmp_path):
    """Recorder -> log -> legacy dict gives back the oracle's numbers, example by example."""
    n_train, batch_size, epochs = 19, 6, 3
    ids = np.array([4, 18, 0, 7, 3, 12, 9, 1, 16, 5, 11, 2, 14, 8, 17, 6, 13, 10, 15], dtype=np.int64)
    log = StatsLog.create(str(tmp_path / "run__resume_stats.bin"), ids, -(-n_train // batch_size))
    recorder, oracles = None, []
    for epoch in range(epochs):
        batches = random_batches(100 + epoch, n_train, batch_size)
        recorder, stats = record_epoch(n_train, batch_size, batches, recorder, test_acc=50.0 + epoch)
        log.append(epoch, stats)
        oracles.append(oracle_epoch(n_train, batches))
    stats_dict = stats_pickle.build_stats_dict(log.ids, StatsLog.open(log.path).read(epochs))
    assert list(stats_dict) == ids.tolist() + ["train", "test"]
    for pos, example_id in enumerate(ids.tolist()):
        losses, accs, margins = stats_dict[example_id]
        assert margins == [o[2][pos] for o in oracles]
        assert accs == [o[1][pos] for o in oracles]
        assert np.array_equal(np.float32(losses), np.float32([o[0][pos] for o in oracles]))
    assert stats_dict["train"] == [[], [v for o in oracles for v in o[3]]]
    assert stats_dict["test"] == [[], [50.0, 51.0, 52.0]]
