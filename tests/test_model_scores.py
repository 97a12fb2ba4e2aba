"""el2n and grand as functions, on tiny models with dropout and batch norm, against autograd one
example at a time (float64, so the batched path must agree to rounding); and AUM and the
cartography statistics on ragged runs against plain loops."""
import math
import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from forgetting.scores.aum import area_under_margin
from forgetting.scores.cartography import confidence, correctness, variability
from forgetting.scores.el2n import el2n_scores
from forgetting.scores.grand import default_chunk, grand_scores
from forgetting.scores.ranking import sort_by_score
from models import MnistNet


class TinyBN(nn.Module):
    """conv, batch norm, dropout, linear: eval mode matters for all three."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(self.drop(F.relu(self.bn(self.conv(x))).flatten(1)))


def prepare(images):
    return images.double() / 255 - 0.5


def tiny_model():
    torch.manual_seed(0)
    model = TinyBN().double()
    with torch.no_grad():  # running statistics that are not the identity
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    images = torch.randint(0, 256, (37, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 5, (37,))
    return model, images, labels


def loop_grand(model, images, labels):
    model.eval()
    out = []
    for x, y in zip(images, labels):
        model.zero_grad()
        F.cross_entropy(model(prepare(x[None])), y[None]).backward()
        out.append(math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters())))
    return out


def loop_el2n(model, images, labels):
    model.eval()
    with torch.no_grad():
        return [float((model(prepare(x[None]))[0].softmax(0) - F.one_hot(y, 5).double()).norm())
                for x, y in zip(images, labels)]


@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
def test_grand_matches_autograd_per_example(chunk):
    model, images, labels = tiny_model()
    expected = loop_grand(model, images, labels)
    model.train()  # grand must switch to eval mode itself
    np.testing.assert_allclose(grand_scores(model, images, labels, prepare, chunk=chunk), expected,
                               rtol=1e-10)


@pytest.mark.parametrize("batch_size", [1000, 7])
def test_el2n_matches_a_loop(batch_size):
    model, images, labels = tiny_model()
    expected = loop_el2n(model, images, labels)
    model.train()
    np.testing.assert_allclose(el2n_scores(model, images, labels, prepare, batch_size=batch_size),
                               expected, rtol=1e-10)


def test_el2n_of_log_probabilities_equals_that_of_logits():
    torch.manual_seed(1)
    net = MnistNet(dropout=True).double()
    images = torch.randint(0, 256, (9, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (9,))
    scores = el2n_scores(net, images, labels, prepare)
    assert ((scores >= 0) & (scores <= math.sqrt(2))).all()
    np.testing.assert_allclose(scores, loop_el2n_10(net, images, labels), rtol=1e-10)


def loop_el2n_10(model, images, labels):
    with torch.no_grad():
        logits = [model(prepare(x[None]))[0] for x in images]
    return [float((torch.exp(l - l.logsumexp(0)) - F.one_hot(y, 10).double()).norm())
            for l, y in zip(logits, labels)]


def test_default_chunk_bounds_the_gradient_memory():
    assert default_chunk(MnistNet()) == 256
    big = nn.Linear(2 ** 14, 2 ** 14)       # 268 M parameters: one example at a time
    assert default_chunk(big) == 1


# ---------------------------------------------------------------- stats scores, ragged runs

def ragged(seed=0, n=30, width=9):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, width + 1, n)
    losses = rng.exponential(1.0, (n, width))
    accs = (rng.random((n, width)) < 0.6).astype(np.int8)
    margins = rng.standard_normal((n, width))
    return losses, accs, margins, lengths


@pytest.mark.parametrize("epochs", [1, 4, 9, 50])
def test_aum_and_cartography_ignore_padding(epochs):
    losses, accs, margins, lengths = ragged()
    for i, length in enumerate(lengths):
        k = min(int(length), epochs)
        probs = [math.exp(-v) for v in losses[i, :k]]
        expect = ([statistics.fmean(margins[i, :k]), statistics.fmean(probs),
                   statistics.pstdev(probs), statistics.fmean(accs[i, :k].tolist())]
                  if k else [math.nan] * 4)
        got = [area_under_margin(margins, epochs, lengths)[i], confidence(losses, epochs, lengths)[i],
               variability(losses, epochs, lengths)[i], correctness(accs, epochs, lengths)[i]]
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-15)


def test_descending_order_breaks_ties_by_ascending_id():
    ids, values = sort_by_score([5, 3, 9, 1, 7], [0.5, 2.0, 0.5, np.nan, 2.0], descending=True)
    assert ids.tolist() == [3, 7, 5, 9, 1]
    assert values[:4].tolist() == [2.0, 2.0, 0.5, 0.5] and np.isnan(values[4])
    ids, _ = sort_by_score([2, 1, 0], np.array([1, 3, 1], dtype=np.int64), descending=True)
    assert ids.tolist() == [1, 0, 2]


def test_only_the_asked_matrices_are_built():
    """aum reads only margins, confidence only losses: the accuracies are checked (issue 20,
    item 7) but not returned, and every matrix built is checked against their lengths."""
    from forgetting.scores.stats_arrays import StatsFormatError, stats_to_arrays

    stats = {0: [[0.5, 0.25], [1, 0], [2.0, -1.0]], 1: [[1.0], [0], [0.5]], "train": [[], [50.0]]}
    run = stats_to_arrays(stats, 5, with_losses=False, with_margins=True, with_accs=False)
    assert run.accs is None and run.losses is None
    assert run.lengths.tolist() == [2, 1] and run.margins.tolist() == [[2.0, -1.0], [0.5, 0.0]]
    run = stats_to_arrays(stats, 5, with_accs=False)
    assert run.losses.tolist() == [[0.5, 0.25], [1.0, 0.0]] and run.margins is None
    stats[1][2].append(3.0)
    with pytest.raises(StatsFormatError, match="example 1 has 2 margins but 1 accuracies"):
        stats_to_arrays(stats, 5, with_margins=True, with_accs=False)
