"""Per-example difficulty scores from training dynamics: pure functions over arrays.

- ``stats_arrays``: a stats pickle's dict as ``RunArrays`` (ids, accs, losses, lengths);
- ``forgetting``: forgetting event counts (the paper); ``mli``: Max Loss Increase;
- ``original``: the original ordering script's notebook functions, on these arrays;
- ``aum``: Area Under the Margin; ``cartography``: confidence, variability, correctness;
- ``el2n``, ``grand``: from saved weights (import torch; ``saved_run`` rebuilds the run);
- ``catalog``: every score's name, file key and direction; ``over_runs``: scores over runs;
- ``ranking``: the sorting file's order (easiest first, ties by id or a seeded shuffle).
"""
from forgetting.scores.forgetting import forgetting_counts
from forgetting.scores.mli import max_loss_increase
from forgetting.scores.ranking import sort_by_score
from forgetting.scores.stats_arrays import RunArrays, StatsFormatError, stats_to_arrays

__all__ = ["RunArrays", "StatsFormatError", "forgetting_counts", "max_loss_increase",
           "sort_by_score", "stats_to_arrays"]
