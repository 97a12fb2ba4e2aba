"""What run_cifar.py optimises with (docs/training.md#optimisers): SGD with the original's settings and
learning-rate schedule, Adam without one.

The schedule's oracle is what the original ran: ``torch.optim.lr_scheduler.MultiStepLR``
(milestones 60, 120, 160, gamma 0.2) stepped with ``scheduler.step(epoch)`` after each epoch.
"""
import dataclasses
import warnings

import pytest
import torch

from forgetting.training import loop as train_loop
from forgetting.training.custom import Recorder
from forgetting.training.optim import make_optimizer, sgd_learning_rate


def original_rates(base_lr, epochs):
    """The rate each epoch 0..epochs-1 trained at in the original run_cifar.py: SGD with a
    MultiStepLR that the epoch loop stepped with ``scheduler.step(epoch)`` after the epoch."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[60, 120, 160], gamma=0.2)
    rates = []
    with warnings.catch_warnings():
        # step(epoch) is deprecated; torch still honours it with the closed-form rate
        warnings.simplefilter("ignore", UserWarning)
        for epoch in range(epochs):
            rates.append(optimizer.param_groups[0]["lr"])   # what this epoch trains at
            scheduler.step(epoch)
    return rates


def test_the_oracle_drops_after_epochs_60_120_160():
    """Guards the oracle itself: stepping after each epoch moves the drops one epoch late."""
    rates = original_rates(0.1, 201)
    drops = [e for e in range(1, 201) if rates[e] != rates[e - 1]]
    assert drops == [61, 121, 161]
    assert rates[0] == 0.1 and rates[200] == rates[161] != rates[160]


def test_sgd_rate_is_the_originals_for_every_epoch():
    for base in (0.1, 0.05):
        assert [sgd_learning_rate(base, epoch) for epoch in range(201)] == original_rates(base, 201)
    # the drops take effect at 61, 121 and 161 (the original stepped MultiStepLR after epochs)
    assert {sgd_learning_rate(0.1, e) for e in range(0, 61)} == {0.1}
    assert {sgd_learning_rate(0.1, e) for e in range(61, 121)} == {0.1 * 0.2}
    assert {sgd_learning_rate(0.1, e) for e in range(121, 161)} == {0.1 * 0.2 ** 2}
    assert {sgd_learning_rate(0.1, e) for e in range(161, 201)} == {0.1 * 0.2 ** 3}


def test_optimizers_have_the_original_settings():
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd, schedule = make_optimizer("sgd", params, 0.05)
    group = sgd.param_groups[0]
    assert isinstance(sgd, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == \
        (0.05, 0.9, True, 5e-4)
    assert [schedule(e) for e in range(201)] == original_rates(0.05, 201)
    adam, schedule = make_optimizer("adam", params, 0.05)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 0.001
    assert schedule is None


@pytest.mark.slow
def test_the_training_loop_steps_at_the_scheduled_rate(run_until_training, tmp_path):
    job = run_until_training("--learning_rate", 0.05, output_dir=tmp_path)
    # A 2-example job keeps each step cheap; the loop code and the optimiser are the real ones.
    job = dataclasses.replace(job, train_x=job.train_x[:2], train_y=job.train_y[:2],
                              train_ids=job.train_ids[:2], batch_size=2)
    rates, step = [], job.optimizer.step

    def recording_step(*args, **kwargs):
        rates.append(job.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    job.optimizer.step = recording_step
    epochs = [0, 60, 61, 120, 121, 160, 161]
    with Recorder.for_job(job) as rec:
        for epoch in epochs:
            train_loop.train_epoch(job, rec, epoch, job.sampler.epoch_plan(epoch, 2, job.device).order)
    assert rates == [original_rates(0.05, 162)[e] for e in epochs]


def test_adam_runs_have_no_schedule(run_until_training, tmp_path):
    job = run_until_training("--optimizer", "adam", "--learning_rate", 0.5, output_dir=tmp_path)
    assert isinstance(job.optimizer, torch.optim.Adam)
    assert job.optimizer.param_groups[0]["lr"] == 0.001 and job.lr_for_epoch is None
