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
from forgetting.files.naming import weights_for_stats
from forgetting.scores.catalog import SCORES
from forgetting.scores.stats_arrays import load_run_arrays


def weights_paths(paths, epoch):
    """The weights file of epoch ``epoch`` of every run; refuses (naming the run and the flag
    that writes it) before any work when one is missing."""
    found = []
    for path in paths:
        weights = weights_for_stats(path, epoch)
        if weights is None or not os.path.isfile(weights):
            raise UsageError(
                f"{path}: no saved weights for epoch {epoch} ({weights or 'its name does not end in __stats_dict.pkl'} "
                f"is missing); train the run with --save_weights_at {epoch}, or pick an epoch it "
                "saved with --weights_epoch")
        found.append(weights)
    return found


class _ModelScorer:
    """The model-based scores of each run (imports torch and the networks on first use)."""

    def __init__(self, scores, device, data_dir, batch_size):
        from forgetting.scores.saved_run import DatasetCache, load_scoring_run

        self.functions = {s.name: getattr(importlib.import_module(f"forgetting.scores.{s.from_weights}"),
                                          f"{s.from_weights}_scores") for s in scores}
        self.load, self.datasets = load_scoring_run, DatasetCache(data_dir)
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


def score_runs(paths, names, epochs, weights_epoch=None, device=None, data_dir=None,
               batch_size=None):
    """``(ids, {name: per-example values over the runs})``, ids ascending.

    ``names``: scores from ``SCORES``; ``epochs``: the first presentations the stats-based
    scores consider; ``weights_epoch``, ``device``, ``data_dir``, ``batch_size``: for the
    model-based ones. Every refusal that needs no reading comes before any work.
    """
    scores = [SCORES[name] for name in names]
    stats_scores = [s for s in scores if s.from_stats is not None]
    model_scores = [s for s in scores if s.from_weights is not None]
    weights = weights_paths(paths, weights_epoch) if model_scores else None
    model_scorer = _ModelScorer(model_scores, device, data_dir, batch_size) if model_scores else None
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
        if model_scores:
            weight_ids, model_values = model_scorer(weights[index])
            if run_ids is not None and not np.array_equal(weight_ids, run_ids):
                raise UsageError(f"{weights[index]}: its training ids differ from those in {path}; "
                                 "the weights file belongs to another run (retrain with "
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
