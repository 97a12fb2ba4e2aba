"""File names: the save_fname that encodes a run's flags, and the ordering script's filter.

The contract (SPEC section 3): ``save_fname`` joins ``f'{name}_{value}'`` with ``'__'``
over the flags that enter the file name, in the order the SPEC tables give, each value
formatted with ``str()`` of the parsed value (``True``, ``0``, ``0.5``, ``10.0``).
"""

STATS_SUFFIX = "__stats_dict.pkl"
BEST_ACC_SUFFIX = "__best_acc.txt"

MNIST_FNAME_FLAGS = ("dataset", "no_dropout", "seed", "sorting_file", "remove_n", "keep_lowest_n")
CIFAR_FNAME_FLAGS = (
    "dataset", "data_augmentation", "cutout", "seed", "sorting_file", "remove_n",
    "keep_lowest_n", "remove_subsample", "noise_percent_labels", "noise_percent_pixels",
    "noise_std_pixels",
)


def save_fname(args, flags):
    """The run's base file name from the parsed ``args`` namespace and the ordered ``flags``."""
    return "__".join(f"{name}_{getattr(args, name)}" for name in flags)


def matches_fname_args(file_name, fname_args):
    """True when ``file_name`` is a stats file holding ``f'{arg}_{val}__'`` for every pair.

    ``fname_args`` is the flat ``[arg1, val1, arg2, val2, ...]`` list of
    ``--input_fname_args``. The trailing ``__`` is what keeps ``seed_1__`` from matching
    ``seed_11__``.
    """
    if not file_name.endswith("stats_dict.pkl"):
        return False
    pairs = zip(fname_args[0::2], fname_args[1::2])
    return all(f"{arg}_{val}__" in file_name for arg, val in pairs)
