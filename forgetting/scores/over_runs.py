"""Scores over several runs, streamed: each run is read once, reduced to one value per example
and score, and dropped before the next (peak memory about one stats file, as the ordering
script). Runs must hold the same example ids (the callers select one experiment:
forgetting/files/run_selection.py).

Per run, the stats-based scores come from its ``*stats_dict.pkl`` and the model-based ones
from its ``__weights_epoch_<E>.pt``; runs combine by mean (forgetting: by sum, as the
ordering script). Torch is imported only for a model-based score.
"""
import importlib
import os

import numpy as np

from forgetting.errors import UsageError
from forgetting.files.naming import STATS_SUFFIX, RunPaths
from forgetting.scores.catalog import SCORES
from forgetting.scores.stats_arrays import load_run_arrays


def weights_paths(paths, epoch):
    """The weights file of epoch ``epoch`` of every run; refuses (naming the run, the epochs it
    saved and the flag that writes them) before any work when one is missing."""
    found = []
    for path in paths:
        run = RunPaths.for_stats(path)
        if run is None:
            raise UsageError(f"{path}: its name does not end in {STATS_SUFFIX}, so it has no saved "
                             "weights to find; el2n and grand need runs of the training scripts")
        weights = run.weights(epoch)
        if not os.path.isfile(weights):
            saved = run.saved_weights_epochs()
            instead = (f"it saved epochs {', '.join(map(str, saved))}: pick one with --weights_epoch"
                       if saved else "it saved no weights")
            raise UsageError(f"{path}: no saved weights for epoch {epoch} ({weights} is missing); "
                             f"{instead}, or train the run with --save_weights_at {epoch}")
        found.append(weights)
    return found


class _ModelScorer:
    """The model-based scores of each run from one weights file of it (imports torch and the
    networks on first use); ``datasets``: a ``DatasetCache`` the scorers may share."""

    def __init__(self, scores, device, datasets, batch_size):
        from forgetting.scores.saved_run import load_scoring_run

        self.functions = {s.name: getattr(importlib.import_module(f"forgetting.scores.{s.from_weights}"),
                                          f"{s.from_weights}_scores") for s in scores}
        self.load, self.datasets = load_scoring_run, datasets
        self.device, self.batch_size, self.dataset = device, batch_size, None

    def __call__(self, weights_path):
        """``(ascending ids, {name: values in that order})`` for one run."""
        run = self.load(weights_path, self.device, self.datasets)
        if self.dataset is not None and run.dataset != self.dataset:
            raise UsageError(f"{weights_path}: a run of {run.dataset}, but earlier runs are of "
                             f"{self.dataset}; add 'dataset <name>' to --input_fname_args")
        self.dataset = run.dataset
        order = np.argsort(run.ids, kind="stable")
        values = {}
        for name, function in self.functions.items():
            extra = {} if self.batch_size is None else {"batch_size" if name == "el2n" else "chunk": self.batch_size}
            values[name] = function(run.model, run.images, run.labels, run.prepare, **extra)[order]
        return run.ids[order], values


def score_runs(paths, names, epochs, weights_epochs=None, device=None, data_dir=None,
               batch_size=None):
    """``(ids, {name: per-example values over the runs})``, ids ascending.

    ``names``: scores from ``SCORES``; ``epochs``: the first presentations the stats-based
    scores consider; ``weights_epochs`` ({name: the epoch whose saved weights it is taken
    at}), ``device``, ``data_dir``, ``batch_size``: for the model-based ones. Every refusal
    that needs no reading comes before any work.
    """
    scores = [SCORES[name] for name in names]
    stats_scores = [s for s in scores if s.from_stats is not None]
    model_scores = [s for s in scores if s.from_weights is not None]
    at_epoch = {}  # epoch -> the model-based scores taken at it (each run's file read once)
    for s in model_scores:
        at_epoch.setdefault(weights_epochs[s.name], []).append(s)
    weights = {epoch: weights_paths(paths, epoch) for epoch in at_epoch}
    scorers = {}
    if model_scores:
        from forgetting.scores.saved_run import DatasetCache

        datasets = DatasetCache(data_dir)
        scorers = {epoch: _ModelScorer(group, device, datasets, batch_size)
                   for epoch, group in at_epoch.items()}
    needs = {need for s in stats_scores for need in s.needs}

    ids = totals = first = None
    for index, path in enumerate(paths):
        run_ids, values = None, {}
        if stats_scores:
            run = load_run_arrays(path, epochs, with_losses="losses" in needs,
                                  with_margins="margins" in needs, with_accs="accs" in needs)
            run_ids = run.ids
            values = {s.name: s.from_stats(run, epochs) for s in stats_scores}
            del run
        for epoch, scorer in scorers.items():
            weight_ids, model_values = scorer(weights[epoch][index])
            if run_ids is not None and not np.array_equal(weight_ids, run_ids):
                raise UsageError(f"{weights[epoch][index]}: its training ids differ from those in "
                                 f"{path}; the weights file belongs to another run (retrain with "
                                 "--save_weights_at)")
            run_ids = weight_ids
            values.update(model_values)
        if ids is None:
            ids, first = run_ids, path
            totals = {name: np.asarray(v, dtype=np.int64 if SCORES[name].total == "sum" else np.float64).copy()
                      for name, v in values.items()}
            continue
        check_same_ids(path, run_ids, first, ids)
        for name, v in values.items():
            totals[name] += v
    for name in totals:
        if SCORES[name].total == "mean":
            totals[name] /= len(paths)
    return ids, totals


def check_same_ids(path, run_ids, first_path, ids):
    """Refuse a run whose example ids differ from the first run's, saying by how many."""
    if not np.array_equal(run_ids, ids):
        only_here = np.setdiff1d(run_ids, ids).size
        only_first = np.setdiff1d(ids, run_ids).size
        raise UsageError(
            f"{path}: its example ids differ from those of {first_path} ({only_here} ids "
            f"only in this file, {only_first} only in the first); all runs must hold the "
            "same examples: narrow --input_fname_args to runs on the same training set"
        )
