"""Forgetting under label noise (Figure 3): which examples a run flipped, and how their
forgetting counts compare with the others' and with their own under clean labels
(definitions: docs/figures.md#label-noise).

- ``read_changed_labels``: the ``<save_fname>_changed_labels.txt`` of a run with
  ``--noise_percent_labels`` (docs/files.md#changed-labels) as int64 arrays;
- ``noise_groups``: the counts of the flipped examples and of the unchanged ones;
- ``noise_measures``: the ``measured:`` values of plot_figures.py noise.
"""
import numpy as np

from forgetting.errors import UsageError
from forgetting.files.regular import open_regular
from forgetting.analysis.counts import counts_of, mean_count, unforgettable_percent


def read_changed_labels(path):
    """``(ids, true labels, new labels)`` of a changed-labels file, one line
    ``<id> <true label> <new label>`` per flipped example; a UsageError naming the first
    line that is not three whole numbers, an id listed twice, or a missing file."""
    try:
        with open_regular(path, "r") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UsageError(f"--changed_labels {path} does not exist; give the <save_fname>"
                         "_changed_labels.txt that the run with --noise_percent_labels wrote") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read --changed_labels {path}: "
                         f"{getattr(err, 'strerror', None) or err}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if len(fields) != 3 or not all(f.isascii() and f.isdigit() for f in fields):
            raise UsageError(f"--changed_labels {path}, line {number}: {line[:60]!r} is not "
                             "'<id> <true label> <new label>'; give a _changed_labels.txt file")
        rows.append([int(f) for f in fields])
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    ids, counts = np.unique(table[:, 0], return_counts=True)
    if (counts > 1).any():
        raise UsageError(f"--changed_labels {path}: id {ids[counts > 1][0]} is listed more than "
                         "once; give the file a run wrote")
    return table[:, 0], table[:, 1], table[:, 2]


def noise_groups(ids, counts, flipped):
    """``(flipped counts, unchanged counts)``: the counts of the ids in ``flipped`` (in that
    order) and of every other id of the sorting file (in its order)."""
    noisy = counts_of(ids, counts, flipped, "--sorting_file")
    clean = np.asarray(counts)[~np.isin(ids, flipped)]
    return noisy, clean


def noise_measures(noisy, clean, noisy_before=None):
    """{key: value}: percent unforgettable and mean count of the flipped (``noisy_``) and
    unchanged (``clean_``) examples; with ``noisy_before`` (the flipped examples' counts in
    the run without noise) also ``noisy_mean_count_before``."""
    measures = {
        "noisy_unforgettable_percent": unforgettable_percent(noisy),
        "clean_unforgettable_percent": unforgettable_percent(clean),
        "noisy_mean_count": mean_count(noisy),
        "clean_mean_count": mean_count(clean),
    }
    if noisy_before is not None:
        measures["noisy_mean_count_before"] = mean_count(noisy_before)
    return measures
