"""What the two training scripts share before the loop: common flags, checks, device, seeding.

Imports nothing of training: the scripts build a ``TrainingJob`` and hand it to
``forgetting.training.loop.run_job``.
"""
import numpy as np
import torch

from forgetting.data.selection import check_removal_flags
from forgetting.errors import UsageError
from forgetting.files.naming import SAMPLING_DEFAULTS, SAMPLING_OPTIONS
from forgetting.files.outdir import check_output_dir


def add_common_flags(parser, no_cuda_flags, cpu_threads=None, removal_and_sampling=True,
                     data_dir=True):
    """The flags the training scripts have: output, input, data location and the new ones.

    ``cpu_threads``: the script's --threads default on the CPU (None: PyTorch's choice);
    ``set_threads`` applies it. ``removal_and_sampling=False`` leaves out --remove_n,
    --keep_lowest_n and the --sampling flags (run_continual.py, whose tasks decide what
    trains); --sorting_file stays. ``data_dir=False`` leaves out --data_dir (run_images.py
    defines its own: the user's image folder).
    """
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="random seed (default: 1); in the file name")
    parser.add_argument("--sorting_file", default="none",
                        help="sorting file written by order_examples_by_forgetting.py: a name "
                             "in --input_dir (with or without .pkl), or a path to the file; or "
                             "'none' (default); in the file name (a path by its file's name "
                             "without .pkl)")
    if removal_and_sampling:
        parser.add_argument("--remove_n", type=int, default=0,
                            help="number of examples to remove (default: 0); in the file name")
        parser.add_argument("--keep_lowest_n", type=int, default=0,
                            help="sorted position where the removal window starts; negative "
                                 "removes --remove_n random examples instead (default: 0); in "
                                 "the file name")
    parser.add_argument(*no_cuda_flags, dest="no_cuda", action="store_true", default=False,
                        help="train on the CPU even if a GPU is available")
    parser.add_argument("--output_dir", required=True,
                        help="directory for the stats pickle, best_acc.txt and resume files "
                             "(created if missing)")
    if data_dir:
        parser.add_argument("--data_dir", default="/tmp/data",
                            help="where torchvision's datasets live or are downloaded (default: "
                                 "/tmp/data)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run with these flags after its last finished epoch")
    parser.add_argument("--no_extend", action="store_true",
                        help="with --resume: refuse a saved run whose run record has another "
                             "--epochs, instead of extending it (sweep.py passes it unless given "
                             "--extend)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                        help="where to train (default: auto = CUDA, else Apple GPU, else CPU)")
    if cpu_threads is None:
        threads_default = "PyTorch's choice"
    else:  # run_mnist.py: its small network ran faster and far steadier on one thread
        threads_default = (f"{cpu_threads} when training on the CPU, where it measured faster and "
                           "steadier than more threads for this small network; PyTorch's choice "
                           "on a GPU")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for PyTorch (default: {threads_default})")
    parser.add_argument("--progress_every", type=float, default=30.0, metavar="SECONDS",
                        help="progress within an epoch on stderr: a bar when stderr is a terminal, "
                             "else at most one line every SECONDS (default: 30); 0 shows none")
    parser.add_argument("--save_weights_at", type=int, nargs="+", default=[], metavar="E",
                        help="also save the model's weights after each epoch E (0 = before the "
                             "first step) to <save_fname>__weights_epoch_<E>.pt, with what "
                             "score_examples.py --score el2n/grand needs to rebuild the model and "
                             "training set; not in the file name")
    parser.set_defaults(cpu_threads=cpu_threads)
    parser.epilog = ("exit status: 0 trained, or nothing left to do; 2 bad input (one error: line, "
                     "nothing changed); 75 the run is being trained by another process (the same "
                     "command may succeed later); 130/143 stopped by Ctrl-C/SIGTERM after saving "
                     "the finished epochs")
    if removal_and_sampling:
        add_sampling_flags(parser)


def add_sampling_flags(parser):
    """--sampling and its options (issue 11). The options default to None here so that one
    given without a mode that uses it can be refused; ``check_sampling_flags`` fills in the
    defaults of the chosen mode."""
    group = parser.add_argument_group(
        "sampling", "train on fewer presentations; a mode other than uniform, and those of its "
                    "options that differ from their defaults, enter the file name")
    group.add_argument("--sampling", choices=tuple(SAMPLING_OPTIONS), default="uniform",
                       help="uniform: every example once per epoch (default, the original); "
                            "sgd_s: loss-proportional draws from a shrinking set; infobatch: skip "
                            "below-mean-loss examples and rescale the rest; forgetting: skip "
                            "examples learned and never forgotten so far, and rescale. A sampled "
                            "run's 'train acc' is over the examples it presented, not the "
                            "training set (sgd_s presents the hardest: it may fall while the "
                            "model improves)")
    defaults = SAMPLING_DEFAULTS
    group.add_argument("--transient_epochs", type=int, default=None,
                       help=f"sgd_s, forgetting: uniform epochs first (default: "
                            f"{defaults['transient_epochs']})")
    group.add_argument("--drop_percent", type=float, default=None,
                       help="sgd_s: percent of the set with the lowest loss that leaves it after "
                            f"each epoch, in [0, 100) (default: {defaults['drop_percent']})")
    group.add_argument("--readd_percent", type=float, default=None,
                       help="sgd_s: percent of the training set drawn back from those that left, "
                            f"after each epoch, in [0, 100] (default: {defaults['readd_percent']})")
    group.add_argument("--prune_ratio", type=float, default=None,
                       help="infobatch, forgetting: probability that an eligible example is "
                            f"skipped, in [0, 1) (default: {defaults['prune_ratio']})")
    group.add_argument("--anneal", type=float, default=None,
                       help="infobatch, forgetting: final fraction of the epochs that present "
                            f"every example, in [0, 1] (default: {defaults['anneal']})")


def add_noise_flags(parser, in_name):
    """--noise_percent_labels, --noise_percent_pixels, --noise_std_pixels (docs/training.md#noise).
    ``in_name``: how they enter the script's file name, for --help."""
    parser.add_argument("--noise_percent_labels", type=int, default=0,
                        help="percent of training labels flipped to another class, 0..100 "
                             f"(default: 0); {in_name}")
    parser.add_argument("--noise_percent_pixels", type=int, default=0,
                        help="percent of each training image's pixels given noise, 0..100 "
                             f"(default: 0); {in_name}")
    # type=float with the int default 0, as the original: the default prints as "0" in
    # run_cifar.py's file name, a given value as "0.5" or "10.0".
    parser.add_argument("--noise_std_pixels", type=float, default=0,
                        help=f"std of the Normal(120, std) pixel noise (default: 0); {in_name}")


def check_noise_flags(args):
    """Refuse noise percentages outside 0..100 and a negative (or NaN) std."""
    for name in ("noise_percent_labels", "noise_percent_pixels"):
        value = getattr(args, name)
        if not 0 <= value <= 100:
            raise UsageError(f"--{name} is {value}; it must be a percentage in 0..100")
    if not args.noise_std_pixels >= 0:   # also refuses nan
        raise UsageError(f"--noise_std_pixels is {args.noise_std_pixels}; it must be 0 or more")


def check_sampling_flags(args):
    """Refuse an option that the chosen --sampling mode does not use, and values out of range;
    then fill in the mode's defaults."""
    used = SAMPLING_OPTIONS[args.sampling]
    for name in SAMPLING_DEFAULTS:
        if getattr(args, name) is not None and name not in used:
            users = [mode for mode, options in SAMPLING_OPTIONS.items() if name in options]
            raise UsageError(f"--{name} is an option of --sampling {' or '.join(users)}, not of "
                             f"--sampling {args.sampling}; add --sampling {users[0]} or drop it")
    for name in used:
        if getattr(args, name) is None:
            setattr(args, name, SAMPLING_DEFAULTS[name])
    in_range = {"transient_epochs": (lambda v: v >= 0, "0 or more"),
                "drop_percent": (lambda v: 0 <= v < 100, "a percentage in [0, 100)"),
                "readd_percent": (lambda v: 0 <= v <= 100, "a percentage in [0, 100]"),
                "prune_ratio": (lambda v: 0 <= v < 1, "a probability in [0, 1)"),
                "anneal": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]")}
    for name in used:
        accepts, what = in_range[name]
        if not accepts(getattr(args, name)):   # NaN is refused too
            raise UsageError(f"--{name} is {getattr(args, name)}; it must be {what}")
    if args.sampling == "sgd_s" and args.transient_epochs < 1:
        raise UsageError("--transient_epochs is 0 but sgd_s draws by the losses of earlier "
                         "epochs; give --transient_epochs 1 or more")


def check_common_flags(args, removal_and_sampling=True):
    """Refuse bad numbers, impossible removal flags and an unusable output directory, before
    any data is loaded, touching nothing. ``removal_and_sampling``: as ``add_common_flags``."""
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} is {getattr(args, name)}; it must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads is {args.threads}; it must be at least 1")
    if not args.progress_every >= 0:   # also refuses nan
        raise UsageError(f"--progress_every is {args.progress_every}; it must be 0 (none) or more seconds")
    for epoch in args.save_weights_at:
        if not 0 <= epoch <= args.epochs:
            raise UsageError(f"--save_weights_at {epoch} is not an epoch of this run; give values "
                             f"from 0 (before the first step) to {args.epochs}, its last epoch")
    if removal_and_sampling:
        check_sampling_flags(args)
    check_output_dir(args.output_dir)
    if removal_and_sampling:
        check_removal_flags(args.remove_n, args.keep_lowest_n, args.sorting_file,
                            getattr(args, "remove_subsample", 0))


def set_threads(args, device):
    """``torch.set_num_threads`` from --threads, or from the script's CPU default on the CPU."""
    threads = args.threads
    if threads is None and device.type == "cpu":
        threads = getattr(args, "cpu_threads", None)
    if threads:
        torch.set_num_threads(threads)


def pick_device(args):
    """The torch.device to train on from --device and --no_cuda."""
    if args.no_cuda or args.device == "cpu":
        return torch.device("cpu")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if args.device == "cuda" and not cuda:
        raise UsageError("--device cuda but no CUDA GPU is visible; use --device auto or cpu")
    if args.device == "mps" and not mps:
        raise UsageError("--device mps but no Apple GPU is available; use --device auto or cpu")
    if args.device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    return torch.device(args.device)


def seed_everything(seed):
    """``torch.manual_seed`` (all devices) and ``numpy.random.seed``, as the original."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def add_image_flags(parser):
    """run_cifar.py's flags that shape the training images and labels (run_images.py has them
    too): augmentation, cutout, --remove_subsample and the noise flags."""
    parser.add_argument("--data_augmentation", action="store_true", default=False,
                        help="random crop of the 4-pixel zero-padded image and horizontal flip; "
                             "in the file name")
    parser.add_argument("--cutout", action="store_true", default=False,
                        help="zero --n_holes boxes of side --length after normalising; in the "
                             "file name")
    parser.add_argument("--n_holes", type=int, default=1,
                        help="number of cutout holes per image (default: 1)")
    parser.add_argument("--length", type=int, default=16,
                        help="side of each cutout hole in pixels (default: 16)")
    parser.add_argument("--remove_subsample", type=int, default=0,
                        help="train on the --keep_lowest_n lowest sorted ids minus this many drawn "
                             "at random, plus every id after them (needs --sorting_file) "
                             "(default: 0); in the file name")
    add_noise_flags(parser, "in the file name")


def add_speed_flags(parser):
    """--amp and --channels_last (run_cifar.py, run_images.py): GPU speed-ups."""
    parser.add_argument("--amp", action="store_true",
                        help="bfloat16 autocast for the forward passes (faster on recent GPUs; "
                             "changes results, so off by default); not in the file name")
    parser.add_argument("--channels_last", action="store_true",
                        help="model and inputs in channels_last memory format (often faster on "
                             "GPUs); not in the file name")


def check_image_flags(args):
    """Refuse the values of ``add_image_flags``' flags that cannot work, before any data is
    loaded."""
    check_noise_flags(args)
    for name in ("n_holes", "length"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} is {getattr(args, name)}; it must be 0 or more")
