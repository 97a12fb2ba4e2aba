"""The whole training loop against the original run_mnist.py, re-enacted plainly here.

``original_train`` and ``original_test`` below do what the original scripts' ``train()`` and
``test()`` did, step by step: a fresh ``np.random.permutation`` of the training set each
epoch, each batch built example by example with torchvision's ToTensor + Normalize on a PIL
image, the loss from ``CrossEntropyLoss(reduction='none')`` (on the network's log-softmax
output), and, BEFORE the optimiser step, a Python loop over the batch that takes each
example's margin from ``torch.sort`` of its outputs (tests/oracles.py, which the recorder's
own tests use too) and appends loss, correctness and margin to the example's lists. Its network is the original's ``Net``, dropout switched by a flag.

Our side is what ``run_mnist.py`` builds (its TrainingJob: model, optimiser, loss, normaliser,
sampler) trained by ``forgetting.training.loop.train_epoch`` into the scripts' ``Recorder``
(its ``end_epoch`` gives the committed statistics), the same initial weights and the same seed. Over 2 epochs of a few hundred real digits the
presented ids, the accuracies and the running training accuracy must be identical, and the
losses and margins equal within float tolerance: the original's cross-entropy re-normalises
the log-probabilities, ours reads them as they are, so the last bits differ and drift a little
over the steps (measured: at most 5e-7 apart, 80% of the values bit-identical).
"""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms

import run_mnist
from forgetting.training.custom import Recorder
from forgetting.training.loop import evaluate, train_epoch
from helpers import MNIST_5K, call_main
from oracles import original_example_stats

pytestmark = pytest.mark.slow  # trains MnistNet against the original loop

SEED, EPOCHS, BATCH_SIZE, LR, MOMENTUM = 1, 2, 32, 0.01, 0.5
# Every 13th mnist_5k training id: 308 digits of every class (the ids are a fixed shuffle of
# the class-grouped file), and 308 = 9 batches of 32 + a short one of 20.
IDS = np.arange(0, 4000, 13)


# ----------------------------------------------------------------------------- the original

class OriginalNet(nn.Module):
    """The original run_mnist.py's ``Net``."""

    def __init__(self, no_dropout):
        super().__init__()
        self.no_dropout = no_dropout
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        if self.no_dropout:
            x = F.relu(F.max_pool2d(self.conv2(x), 2))
        else:
            x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        if not self.no_dropout:
            x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


TRANSFORM = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


def original_train(model, optimizer, images, labels, train_indx, example_stats):
    """One epoch of the original ``train()``: ``images`` PIL digits and ``labels`` ints of the
    training set, ``train_indx`` their ids in the full data set. Returns the ids in the order
    they were presented."""
    criterion = nn.CrossEntropyLoss(reduction="none")
    correct, total = 0, 0
    model.train()
    trainset_permutation_inds = np.random.permutation(np.arange(len(labels)))
    for batch_start_ind in range(0, len(labels), BATCH_SIZE):
        batch_inds = trainset_permutation_inds[batch_start_ind:batch_start_ind + BATCH_SIZE]
        inputs = torch.stack([TRANSFORM(images[ind]) for ind in batch_inds])
        targets = torch.LongTensor(np.array(labels)[batch_inds].tolist())

        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        _, predicted = torch.max(outputs.data, 1)

        for j, index in enumerate(batch_inds):   # before the step, example by example
            index_in_original_dataset = train_indx[index]
            example_loss, acc, margin = original_example_stats(outputs.data, targets, loss, j)
            index_stats = example_stats.get(index_in_original_dataset, [[], [], []])
            index_stats[0].append(example_loss)
            index_stats[1].append(acc)
            index_stats[2].append(margin)
            example_stats[index_in_original_dataset] = index_stats

        loss = loss.mean()
        total += targets.size(0)
        correct += predicted.eq(targets.data).cpu().sum()
        loss.backward()
        optimizer.step()

        index_stats = example_stats.get("train", [[], []])
        index_stats[1].append(100. * correct.item() / float(total))
        example_stats["train"] = index_stats
    return [train_indx[i] for i in trainset_permutation_inds]


def original_test(model, images, labels, example_stats):
    """The original ``test()``: accuracy in percent over test batches of 1000; returns the
    mean test loss it printed (summed NLL over the test set / its size)."""
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for start in range(0, len(labels), 1000):
            data = torch.stack([TRANSFORM(image) for image in images[start:start + 1000]])
            target = torch.LongTensor(labels[start:start + 1000])
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.max(1, keepdim=True)[1]
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(labels)
    index_stats = example_stats.get("test", [[], []])
    index_stats[1].append(100. * correct / float(len(labels)))
    example_stats["test"] = index_stats
    return test_loss


# ----------------------------------------------------------------------------- the comparison

def pil_digits(images):
    """uint8 (N, 1, 28, 28) -> PIL images, as torchvision's MNIST hands them to transforms."""
    return [Image.fromarray(image[0].numpy()) for image in images]


@pytest.fixture
def mnist_job(monkeypatch, tmp_path):
    """What run_mnist.py builds for ``run_job``, before training (keyed by --no_dropout)."""
    def build(no_dropout):
        jobs = []
        monkeypatch.setattr(run_mnist, "run_job", jobs.append)
        argv = [*MNIST_5K, "--batch_size", BATCH_SIZE, "--epochs", EPOCHS, "--seed", SEED,
                "--lr", LR, "--momentum", MOMENTUM, "--output_dir", tmp_path / "out"]
        code, _, err = call_main(run_mnist.main, argv + (["--no_dropout"] if no_dropout else []))
        assert code == 0, err
        return jobs.pop()
    return build


@pytest.mark.parametrize("no_dropout", [True, False], ids=["no_dropout", "dropout"])
def test_train_epoch_matches_the_original_train(mnist_job, no_dropout):
    job = mnist_job(no_dropout)
    assert job.train_ids.tolist() == list(range(4000))   # so positions IDS are ids IDS
    job = dataclasses.replace(job, train_x=job.train_x[IDS], train_y=job.train_y[IDS], train_ids=IDS)
    train_x, train_y = job.train_x, job.train_y

    original = OriginalNet(no_dropout)
    original.load_state_dict(job.model.state_dict())      # the same initial weights
    images, labels = pil_digits(train_x), train_y.tolist()
    test_images, test_labels = pil_digits(job.test_x), job.test_y.tolist()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    optimizer = torch.optim.SGD(original.parameters(), lr=LR, momentum=MOMENTUM)
    example_stats, original_orders, original_test_losses = {}, [], []
    for _ in range(EPOCHS):
        original_orders.append(original_train(original, optimizer, images, labels, IDS.tolist(),
                                              example_stats))
        original_test_losses.append(original_test(original, test_images, test_labels, example_stats))

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    ours, our_orders, our_test_losses = [], [], []
    with Recorder.for_job(job) as rec:
        for epoch in range(EPOCHS):
            order = job.sampler.epoch_plan(epoch, len(IDS), job.device).order
            train_epoch(job, rec, epoch, order)
            test_acc, test_loss = evaluate(job)
            ours.append(rec.end_epoch(test_acc))
            our_orders.append(IDS[order.cpu().numpy()].tolist())
            our_test_losses.append(test_loss)

    assert our_orders == original_orders                  # the same ids, in the same batches
    assert sorted(k for k in example_stats if k not in ("train", "test")) == IDS.tolist()
    n_batches = -(-len(IDS) // BATCH_SIZE)
    for epoch, stats in enumerate(ours):
        expected = [example_stats[i] for i in IDS.tolist()]
        assert stats.acc.tolist() == [history[1][epoch] for history in expected]
        np.testing.assert_allclose(stats.loss, [history[0][epoch] for history in expected],
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats.margin, [history[2][epoch] for history in expected],
                                   rtol=1e-5, atol=1e-5)
        assert stats.train_acc.tolist() == \
            example_stats["train"][1][epoch * n_batches:(epoch + 1) * n_batches]
        assert stats.test_acc == example_stats["test"][1][epoch]
    np.testing.assert_allclose(our_test_losses, original_test_losses, rtol=1e-5)
    # guards the comparison itself: the network learned (training and test loss fell), so the
    # numbers moved
    assert ours[1].loss.mean() < ours[0].loss.mean() and our_test_losses[1] < our_test_losses[0]
