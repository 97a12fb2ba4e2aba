"""A stats or sorting file as a pandas DataFrame, for notebooks.

``forgetting.load_stats(path)`` and ``forgetting.load_sorting(path)`` (re-exported by the
package) read the files through the restricted loader (``forgetting.files.safe_pickle``), so a
file cannot run code. pandas is imported only when one of them is called: the training
scripts and the ordering script never pay for it.
"""
import numpy as np

from forgetting.files import safe_pickle
from forgetting.files.naming import is_sampled_run
from forgetting.scores.stats_arrays import StatsFormatError, stats_to_arrays

STATS_COLUMNS = ("example_id", "presentation", "loss", "acc", "margin")


def load_stats(path):
    """One run's ``__stats_dict.pkl`` as a long DataFrame, one row per presentation.

    Columns: ``example_id`` (int64), ``presentation`` (int64, 0-based: the epoch, when every
    example is presented once per epoch), ``loss`` (float64), ``acc`` (int8, 0/1), ``margin``
    (float64). Rows by ascending example id, then presentation. The file's ``'train'`` and
    ``'test'`` accuracy lists are not in the frame (``forgetting.files.safe_pickle.load``
    gives the whole dict). Raises ``UsageError`` for a missing, damaged or unsafe file and
    ``StatsFormatError`` (a ValueError) for a pickle that is not a stats dict or does not add
    up (``stats_to_arrays``; a run is uniform unless its file name says ``sampling_<mode>``).
    """
    import pandas as pd

    stats = safe_pickle.load(path)
    try:
        run = stats_to_arrays(stats, None, with_losses=True, with_margins=True,
                              sampled=is_sampled_run(path))
    except StatsFormatError as err:
        raise StatsFormatError(f"{path}: not a stats file ({err})") from None
    del stats
    n, width = run.accs.shape
    real = np.arange(width)[None, :] < run.lengths[:, None]   # all True unless runs are ragged
    rows, presentations = np.nonzero(real)
    return pd.DataFrame({
        "example_id": run.ids[rows],
        "presentation": presentations.astype(np.int64),
        "loss": run.losses[real],
        "acc": run.accs[real],
        "margin": run.margins[real],
    }, columns=list(STATS_COLUMNS))


def load_sorting(path):
    """A sorting file (``{'indices': ids easiest first, '<score>': values}``) as a DataFrame.

    Columns: ``rank`` (0-based sorted position, what ``--keep_lowest_n`` counts), ``example_id``
    (int64), then each other entry of the file, under its own name (``'forgetting counts'``,
    ``'max loss increase'``, ...). Raises ``UsageError`` for a missing, damaged or unsafe file
    and ValueError (one line naming the file) for a pickle without ``'indices'``, ids that are
    not distinct non-negative integers, or an entry that is not one number per id.
    """
    import pandas as pd

    sorting = safe_pickle.load(path)
    if not isinstance(sorting, dict) or "indices" not in sorting:
        raise ValueError(f"{path}: not a sorting file (no 'indices' entry)")
    ids = _numbers(path, "indices", sorting["indices"])
    if ids.size and ids.dtype.kind not in "iu":
        raise ValueError(f"{path}: its 'indices' are {ids.dtype} values, not integer example ids")
    if ids.size and ids.min() < 0:
        raise ValueError(f"{path}: its 'indices' hold a negative example id ({ids.min()})")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path}: example id {unique[counts > 1][0]} appears "
                         f"{counts[counts > 1][0]} times in its 'indices'")
    columns = {"rank": np.arange(len(ids), dtype=np.int64), "example_id": ids.astype(np.int64)}
    for name, values in sorting.items():
        if name == "indices":
            continue
        values = _numbers(path, name, values)
        if len(values) != len(ids):
            raise ValueError(f"{path}: its {name!r} hold {len(values)} values for {len(ids)} ids; "
                             "re-create the sorting file")
        columns[name] = values
    return pd.DataFrame(columns)


def _numbers(path, name, values):
    """Entry ``name`` of a sorting file as a 1-D numeric (bool, int, float) array, or a
    one-line ValueError naming it."""
    try:
        return safe_pickle.as_numbers(values)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: its {name!r} entry is not a flat list of numbers") from None
