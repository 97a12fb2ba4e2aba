"""Plain-Python oracles: the original scripts' per-example statistics of a batch
(docs/training.md#each-epoch), and the scores (docs/scores.md), each walking one example's history a
presentation at a time, as a reader would by hand. The library's vectorised recorder and
scores, and the ordering script, are checked against these.

Not a test module: the tests import it.
"""
import math

import numpy as np
import torch


def original_example_stats(outputs, targets, losses, j):
    """(loss, acc, margin) of example j of a batch, exactly as the original computed them:
    ``torch.max`` for the prediction, the margin against ``torch.sort`` of the example's
    outputs, every number taken out with ``.item()``."""
    _, predicted = torch.max(outputs, 1)
    acc = predicted[j] == targets[j]
    output_correct_class = outputs[j, targets[j].item()]
    sorted_output, _ = torch.sort(outputs[j, :])
    if acc:
        output_highest_incorrect_class = sorted_output[-2]
    else:
        output_highest_incorrect_class = sorted_output[-1]
    margin = output_correct_class.item() - output_highest_incorrect_class.item()
    return losses[j].item(), int(acc.sum().item()), margin


def oracle_forgetting(accs, epochs):
    """Forgetting events in the first ``epochs`` presentations; ``epochs`` if never correct."""
    window = list(accs)[:epochs]
    if 1 not in window:
        return epochs
    events = 0
    for previous, current in zip(window, window[1:]):
        if previous == 1 and current == 0:
            events += 1
    return events


def oracle_mli(losses, epochs):
    """Largest ``loss[t+1] - loss[t]`` in the first ``epochs`` presentations; 0 with < 2."""
    window = list(losses)[:epochs]
    if len(window) < 2:
        return 0.0
    best = None
    for previous, current in zip(window, window[1:]):
        rise = current - previous
        if math.isnan(rise):
            return math.nan
        if best is None or rise > best:
            best = rise
    return best


def oracle_order(scores):
    """``scores``: {id: score}; ids by ascending score, ties by ascending id."""
    return sorted(scores, key=lambda example_id: (scores[example_id], example_id))


def oracle_tie_order(scores, descending=False, ties="id", seed=0):
    """``scores``: {id: score}; ids easiest first (ascending score, or descending), NaN last,
    by a plain loop: group the ids of equal score, then order each group by the tie rule:
    ascending id, or (``ties="random"``) the place of the id in the ascending ids shuffled
    in place by ``numpy.random.RandomState(seed).shuffle``."""
    shuffled = sorted(scores)
    if ties == "random":
        np.random.RandomState(seed).shuffle(shuffled)
    place = {example_id: position for position, example_id in enumerate(shuffled)}
    groups = {}
    for example_id, value in scores.items():
        value = float(value)
        key = (1, 0.0) if math.isnan(value) else (0, -value if descending else value)
        groups.setdefault(key, []).append(example_id)
    order = []
    for key in sorted(groups):
        order.extend(sorted(groups[key], key=place.__getitem__))
    return order
