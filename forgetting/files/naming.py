"""Every file name the project writes or looks for, in one place.

The contract (docs/flags.md#file-names): ``save_fname`` joins ``f'{name}_{value}'`` with ``'__'``
over the flags that enter the file name, in the order docs/flags.md gives, each value
formatted with ``str()`` of the parsed value (``True``, ``0``, ``0.5``, ``10.0``). A run's
files in ``--output_dir`` are ``<save_fname>`` plus one of the suffixes below
(``RunPaths``); the reading tools find runs by ``STATS_ENDING`` and
``--input_fname_args`` (files/run_selection.py).
"""
import dataclasses
import os
import re
from typing import Optional

from forgetting.errors import UsageError

# The original's files.
STATS_SUFFIX = "__stats_dict.pkl"
BEST_ACC_SUFFIX = "__best_acc.txt"
CHANGED_LABELS_SUFFIX = "_changed_labels.txt"   # single underscore, as the original
CHECKPOINT_DIR, CHECKPOINT_SUFFIX = "checkpoint", ".t7"
STATS_ENDING = "stats_dict.pkl"                 # what the ordering script matches, as the original
# The run's own files (docs/files.md: <save_fname>__<what>).
STATS_LOG_SUFFIX = "__resume_stats.bin"
RESUME_STATE_SUFFIX = "__resume_state.pt"
RECORD_SUFFIX = "__run.json"                    # the run record (forgetting/files/run_record.py)
TASK_TABLE_SUFFIX = "__tasks.csv"               # run_continual.py: accuracy per task per epoch
EXAMPLES_SUFFIX = "__examples.tsv"              # run_images.py: id, label, class, path
TASK_NAMES = "AB"                               # run_continual.py's tasks, in training-set order
# A rerun without --resume moves the earlier run's files to <output_dir>/replaced/<save_fname>/<time>/
REPLACED_DIR = "replaced"
# --save_weights_at E: the weights after E epochs (0 = before the first step), for el2n/grand.
WEIGHTS_SUFFIX = "__weights_epoch_{epoch}.pt"
WEIGHTS_PATTERN = re.compile(r"__weights_epoch_(\d+)\.pt")
LOCK_SUFFIX = "__lock"                          # held (flock) by the process training the run
# sweep.py: each run's output, <output_dir>/logs/<save_fname>.log
SWEEP_LOG_DIR, SWEEP_LOG_SUFFIX = "logs", ".log"

MNIST_FNAME_FLAGS = ("dataset", "no_dropout", "seed", "sorting_file", "remove_n", "keep_lowest_n")
# run_mnist.py's flags added by this project that enter its file name only when they differ
# from these defaults (compared by value), appended after MNIST_FNAME_FLAGS in this order
# (docs/flags.md#file-names): the original's MNIST names stay as they were.
MNIST_APPENDED_FLAGS = {"model": "mnist_net", "noise_percent_labels": 0, "noise_percent_pixels": 0,
                        "noise_std_pixels": 0}
CIFAR_FNAME_FLAGS = (
    "dataset", "data_augmentation", "cutout", "seed", "sorting_file", "remove_n",
    "keep_lowest_n", "remove_subsample", "noise_percent_labels", "noise_percent_pixels",
    "noise_std_pixels",
)
# run_images.py (docs/flags.md#run_imagespy): ``dataset`` is the data source's name (the folder's
# or the .npz file's, forgetting/data/user_data.py source_name), set by the script; the flags of
# IMAGES_APPENDED_FLAGS follow, each only when it differs from its default (given here).
IMAGES_FNAME_FLAGS = ("dataset", "model", "seed", "sorting_file", "remove_n", "keep_lowest_n")
IMAGES_APPENDED_FLAGS = {
    "recipe": "cifar", "no_dropout": False, "image_size": None, "test_fraction": 0.2,
    "split_seed": 0, "data_augmentation": False, "cutout": False, "remove_subsample": 0,
    "noise_percent_labels": 0, "noise_percent_pixels": 0, "noise_std_pixels": 0,
}
# run_continual.py (docs/flags.md): what defines a continual experiment. The model and the
# optimiser settings are not in it (as run_cifar.py's --model): the run record holds them.
CONTINUAL_FNAME_FLAGS = ("dataset", "split", "tasks", "task_size", "epochs_per_task", "seed",
                         "sorting_file")

# The type each file-name flag's value has once the training scripts have parsed it
# (tests/test_collect_results.py checks this against their argparse definitions), so that a
# save_fname reads back into typed values (parse_save_fname). noise_std_pixels is a float
# flag whose default is the int 0: its file names say 0 or 0.5, both read as floats.
FNAME_FLAG_TYPES = {
    "dataset": str, "no_dropout": bool, "data_augmentation": bool, "cutout": bool, "seed": int,
    "sorting_file": str, "remove_n": int, "keep_lowest_n": int, "remove_subsample": int,
    "noise_percent_labels": int, "noise_percent_pixels": int, "noise_std_pixels": float,
    "split": str, "tasks": str, "task_size": int, "epochs_per_task": int, "model": str,
}


# The training scripts sweep.py can run, and the flags that name their runs.
SCRIPT_FNAME_FLAGS = {"run_mnist.py": MNIST_FNAME_FLAGS, "run_cifar.py": CIFAR_FNAME_FLAGS,
                      "run_continual.py": CONTINUAL_FNAME_FLAGS}

# docs/flags.md#file-names (issue 11): --sampling enters the file name only when it is not uniform,
# appended after the original's flags, followed by those of its mode's options (in this
# order) whose value is not the default, so a run keeps one name however it was spelled.
SAMPLING_OPTIONS = {
    "uniform": (),
    "sgd_s": ("transient_epochs", "drop_percent", "readd_percent"),
    "infobatch": ("prune_ratio", "anneal"),
    "forgetting": ("transient_epochs", "prune_ratio", "anneal"),
}
SAMPLING_DEFAULTS = {"transient_epochs": 1, "drop_percent": 10.0, "readd_percent": 1.0,
                     "prune_ratio": 0.5, "anneal": 0.125}
# A script's appended flags, keyed by its file-name flags (what save_fname is given).
APPENDED_FNAME_FLAGS = {MNIST_FNAME_FLAGS: MNIST_APPENDED_FLAGS,
                        IMAGES_FNAME_FLAGS: IMAGES_APPENDED_FLAGS}
# The parsed type of each flag that enters a file name only when set: the appended ones, and
# --sampling and its options (OPTIONAL_FLAG_TYPES: the results table's typed columns after the
# file-name flags; the noise flags are file-name flags of run_cifar.py, typed there).
APPENDED_FLAG_TYPES = {"model": str, "noise_percent_labels": int, "noise_percent_pixels": int,
                       "noise_std_pixels": float}
OPTIONAL_FLAG_TYPES = {"sampling": str, "transient_epochs": int, "drop_percent": float,
                       "readd_percent": float, "prune_ratio": float, "anneal": float,
                       "recipe": str, "image_size": int, "test_fraction": float, "split_seed": int}
# The longest name a run writes is its save_fname plus this many characters: the temporary
# file ".<save_fname>__resume_stats.bin.XXXXXXXX.tmp" that atomic writes go through.
LONGEST_NAME_EXTRA = len(".") + len("__resume_stats.bin") + len(".XXXXXXXX.tmp")


def optional_fname_flags(args, flags=()):
    """The flags (docs/flags.md#file-names) of ``args`` that enter the file name only when set:
    those of the script's appended flags (``APPENDED_FNAME_FLAGS[flags]``, ``flags`` being its
    file-name flags) that differ from their defaults, then ``sampling`` and its mode's
    non-default options when ``--sampling`` is set and not uniform."""
    appended = tuple(name for name, default in APPENDED_FNAME_FLAGS.get(tuple(flags), {}).items()
                     if getattr(args, name, default) != default)
    mode = getattr(args, "sampling", "uniform")
    if mode == "uniform":
        return appended
    return appended + ("sampling",) + tuple(name for name in SAMPLING_OPTIONS[mode]
                                            if getattr(args, name) != SAMPLING_DEFAULTS[name])


def sorting_file_name(sorting_file):
    """What a run's file name says for ``--sorting_file``: a plain name as given (the
    original's usage, its file names unchanged); for a path, the file's name without ``.pkl``,
    as the plain name of that file would be (a '/' cannot be part of a file name)."""
    if not os.path.dirname(sorting_file):
        return sorting_file
    name = os.path.basename(sorting_file)
    return name[:-len(".pkl")] if name.endswith(".pkl") else name


def is_sampled_run(path):
    """True if the run file at ``path`` comes from a ``--sampling`` run other than uniform (its
    name holds ``__sampling_<mode>``, docs/flags.md#file-names) or from run_continual.py (``split_<split>
    __tasks_<tasks>``: each epoch presents one task's examples): examples presented a varying
    number of times, by design. A uniform run presents every example once per epoch."""
    name = os.path.basename(path)
    return (re.search(r"(^|__)sampling_(?!uniform(__|$))", name) is not None
            or re.search(r"(^|__)split_(random|forgetting)__tasks_[AB]+__", name) is not None)


def save_fname(args, flags):
    """The run's base file name from the parsed ``args`` namespace and the script's ordered
    ``flags`` (the original's), followed by ``optional_fname_flags(args, flags)``; each value is
    ``str()`` of the parsed one, but a ``--sorting_file`` path is named by ``sorting_file_name``."""
    def value(name):
        parsed = getattr(args, name)
        return sorting_file_name(parsed) if name == "sorting_file" else parsed

    flags = tuple(flags)
    return "__".join(f"{name}_{value(name)}" for name in flags + optional_fname_flags(args, flags))


def check_name_fits(output_dir, fname):
    """Refuse a save_fname whose files' names would exceed the file system's limit (255 bytes
    on most): the original's CIFAR names are 196 characters, and non-default flags lengthen
    them. Checked before anything is written."""
    directory = os.path.abspath(output_dir)
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    longest = len(fname.encode()) + LONGEST_NAME_EXTRA
    if longest > limit:
        raise UsageError(f"the run's file names would be up to {longest} bytes, over the "
                         f"{limit} that {directory} allows; leave out some non-default "
                         "--sampling options")


@dataclasses.dataclass
class RunPaths:
    """Every file one training run writes, derived from ``--output_dir`` and its save_fname.

    ``stats``/``best_acc``: the original's files; ``stats_log``/``resume_state``: the run's
    own (forgetting/files/stats_log.py, forgetting/training/resume_state.py);
    ``checkpoint``: the best model (run_cifar.py only, else None); ``changed_labels``: the
    label-noise record (written only with --noise_percent_labels); ``record``: the run record;
    ``task_table``: run_continual.py's per-task accuracies (else None); ``examples``:
    run_images.py's listing of the example ids (else None).
    """

    stats: str
    best_acc: str
    stats_log: str
    resume_state: str
    changed_labels: str
    record: str
    checkpoint: Optional[str] = None
    task_table: Optional[str] = None
    examples: Optional[str] = None

    @classmethod
    def for_run(cls, output_dir, fname, checkpoint_subdir=None, task_table=False, examples=False):
        base = os.path.join(output_dir, fname)
        checkpoint = None
        if checkpoint_subdir is not None:
            checkpoint = os.path.join(output_dir, CHECKPOINT_DIR, checkpoint_subdir,
                                      fname + CHECKPOINT_SUFFIX)
        return cls(base + STATS_SUFFIX, base + BEST_ACC_SUFFIX, base + STATS_LOG_SUFFIX,
                   base + RESUME_STATE_SUFFIX, base + CHANGED_LABELS_SUFFIX, base + RECORD_SUFFIX,
                   checkpoint, base + TASK_TABLE_SUFFIX if task_table else None,
                   base + EXAMPLES_SUFFIX if examples else None)

    @classmethod
    def for_stats(cls, stats_path):
        """The files of the run whose stats pickle is ``stats_path``, or None when its name does
        not end in ``__stats_dict.pkl`` (then it has no save_fname to go by)."""
        if not stats_path.endswith(STATS_SUFFIX):
            return None
        directory, name = os.path.split(stats_path[:-len(STATS_SUFFIX)])
        return cls.for_run(directory, name)

    def weights(self, epoch):
        """``<save_fname>__weights_epoch_<epoch>.pt``, written with --save_weights_at."""
        return self.stats[:-len(STATS_SUFFIX)] + WEIGHTS_SUFFIX.format(epoch=epoch)

    def saved_weights_epochs(self):
        """The epochs whose weights files are on disk, ascending."""
        base = os.path.basename(self.stats[:-len(STATS_SUFFIX)])
        return sorted(int(WEIGHTS_PATTERN.fullmatch(os.path.basename(path)[len(base):]).group(1))
                      for path in self.existing_weights())

    def existing_weights(self):
        """The weights files of this save_fname now on disk (any epoch), sorted."""
        directory, base = os.path.split(self.stats[:-len(STATS_SUFFIX)])
        try:
            names = os.listdir(directory or ".")
        except OSError:
            return []
        return sorted(os.path.join(directory, name) for name in names
                      if name.startswith(base) and WEIGHTS_PATTERN.fullmatch(name[len(base):]))

    def written_by_training(self):
        """The files the training loop replaces atomically (not ``written_once``)."""
        return [p for p in (self.stats, self.best_acc, self.stats_log, self.resume_state,
                            self.record, self.checkpoint, self.task_table) if p is not None]

    def all_files(self):
        """Every file of the run that may be on disk now (weights and changed labels included)."""
        return self.written_by_training() + self.written_once() + self.existing_weights()

    def written_once(self):
        """The files a script writes once before training: changed labels, the examples listing."""
        return [p for p in (self.changed_labels, self.examples) if p is not None]


def lock_path(output_dir, fname):
    """The run's lock file (forgetting/files/run_lock.py)."""
    return os.path.join(output_dir, fname + LOCK_SUFFIX)


def sweep_log_path(output_dir, fname):
    """Where sweep.py writes one run's output."""
    return os.path.join(output_dir, SWEEP_LOG_DIR, fname + SWEEP_LOG_SUFFIX)


def has_fname_args(file_name, fname_args):
    """True when ``file_name`` holds ``f'{arg}_{val}__'`` for every pair of ``fname_args``.

    ``fname_args`` is the flat ``[arg1, val1, arg2, val2, ...]`` list of
    ``--input_fname_args``. The trailing ``__`` is what keeps ``seed_1__`` from matching
    ``seed_11__``.
    """
    pairs = zip(fname_args[0::2], fname_args[1::2])
    return all(f"{arg}_{val}__" in file_name for arg, val in pairs)


def typed_flag_value(flag, text):
    """``text`` of a file name read as flag ``flag``'s parsed type; ValueError if it is not."""
    kind = FNAME_FLAG_TYPES.get(flag) or APPENDED_FLAG_TYPES.get(flag) or OPTIONAL_FLAG_TYPES[flag]
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(f"{flag} is {text!r}, not True or False")
        return text == "True"
    return kind(text)


def _parse_with(name, flags):
    """``name`` read against one script's ordered ``flags``; ValueError if it does not fit."""
    values, rest = {}, name
    for flag, following in zip(flags, flags[1:] + (None,)):
        if not rest.startswith(flag + "_"):
            raise ValueError(f"expected {flag}_ at {rest!r}")
        rest = rest[len(flag) + 1:]
        # a value ends where the next flag begins (a sorting file's name may hold '_' and '__')
        end = rest.find(f"__{following}_") if following else rest.find("__")
        end = len(rest) if end < 0 else end
        values[flag] = typed_flag_value(flag, rest[:end])
        rest = rest[end + 2:]
    return values, rest


def parse_save_fname(name):
    """The flags of a run from its file name: the inverse of ``save_fname``.

    ``name`` is a save_fname, or a file name of the run (its suffix is dropped). Returns
    ``(values, extra)``: ``values`` maps each flag of run_mnist.py's, run_cifar.py's,
    run_continual.py's or run_images.py's file name to its typed value (FNAME_FLAG_TYPES), in file-name order; ``extra`` is the rest of
    the name after the script's flags, the ``<flag>_<value>`` parts that new result-changing
    flags append (docs/flags.md#file-names), joined by ``__``, or ``''``. ValueError if the name is not
    a save_fname of either script.
    """
    for suffix in (STATS_SUFFIX, BEST_ACC_SUFFIX, STATS_LOG_SUFFIX, RESUME_STATE_SUFFIX,
                   RECORD_SUFFIX):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    errors = []
    for flags in (MNIST_FNAME_FLAGS, CIFAR_FNAME_FLAGS, CONTINUAL_FNAME_FLAGS, IMAGES_FNAME_FLAGS):
        try:
            return _parse_with(name, flags)
        except ValueError as err:
            errors.append(str(err))
    raise ValueError(f"not a run's file name ({'; '.join(dict.fromkeys(errors))})")
