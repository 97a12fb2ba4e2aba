"""A training run's files without training: the real writers fed made-up numbers.

``write_run`` writes what run_mnist.py / run_cifar.py leave in ``--output_dir`` (stats log,
resume state, legacy stats pickle, best_acc.txt) through the project's own writers, so the
results table and the figures can be tested on many runs, and benchmarked at 50,000 x 200,
in seconds. Tests that need real training use run_mnist.py itself.
"""
import os
import types

import numpy as np
import torch

import helpers
from forgetting.files import atomic
from forgetting.files.naming import RunPaths
from forgetting.files.stats_log import StatsLog
from forgetting.files.stats_pickle import best_acc_text, write_stats_pickle
from forgetting.training.resume_state import save_state


def mnist_fname(**flags):
    """run_mnist.py's save_fname for its defaults (``--dataset mnist``) updated with ``flags``."""
    return helpers.mnist_fname(**{"dataset": "mnist", **flags})


def write_run(output_dir, fname, test_accs, n_train=20, n_batches=2, weights=8,
              finished_pickle=True, seed=0, zeros=False):
    """One run with ``len(test_accs)`` committed epochs whose test accuracies are
    ``test_accs``; other numbers random. ``weights``: floats in the saved model (its
    optimizer holds as many), to give the resume state a realistic size.
    ``finished_pickle=False``: the state says the legacy pickle trails (a killed run).
    ``zeros``: every per-example number 0 (files that copy sparsely, for benchmarks).
    Returns the RunPaths."""
    os.makedirs(output_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = RunPaths.for_run(output_dir, fname)
    log = StatsLog.create(paths.stats_log, np.arange(n_train), n_batches)
    best_train = 0.0
    for epoch, test_acc in enumerate(test_accs):
        train_acc = np.sort(rng.uniform(0, 100, n_batches))
        best_train = max(best_train, float(train_acc.max()))
        per_example = (np.zeros(n_train, np.float32), np.zeros(n_train), np.zeros(n_train, np.uint8))
        if not zeros:
            per_example = (rng.random(n_train, dtype=np.float32), rng.normal(size=n_train),
                           rng.integers(0, 2, n_train, dtype=np.uint8))
        loss, margin, acc = per_example
        log.append(epoch, types.SimpleNamespace(loss=loss, margin=margin, acc=acc,
                                                train_acc=train_acc, test_acc=float(test_acc)))
    epochs = len(test_accs)
    best_test = max(map(float, test_accs), default=0.0)
    save_state(paths.resume_state, {
        "epochs_done": epochs, "legacy_epochs": epochs if finished_pickle else 0,
        "best_train": best_train, "best_test": best_test,
        "config": {"batch_size": 64, "lr": 0.01, "momentum": 0.5},
        "model": {"weight": torch.zeros(weights)},
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(weights)}}, "param_groups": []},
        "rng": {"torch": torch.zeros(8, dtype=torch.uint8)}})
    write_stats_pickle(paths.stats_log, epochs, paths.stats)
    atomic.write_text(paths.best_acc, best_acc_text(best_train, best_test))
    return paths
