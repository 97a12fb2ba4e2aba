"""Plain-Python oracles for the scores (SPEC sections 4 and 5): each walks one example's
history a presentation at a time, as a reader would by hand. The library's vectorised
scores and the ordering script are checked against these.

Not a test module: the tests import it.
"""
import math


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
