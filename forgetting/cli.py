"""What the two training scripts share before the loop: common flags, checks, device, seeding.

Imports nothing of training: the scripts build a ``TrainingJob`` and hand it to
``forgetting.training.loop.run_job``.
"""
import numpy as np
import torch

from forgetting.data.selection import check_removal_flags
from forgetting.errors import UsageError
from forgetting.files.outdir import check_output_dir


def add_common_flags(parser, no_cuda_flags, cpu_threads=None):
    """The flags both training scripts have: output, input, data location and the new ones.

    ``cpu_threads``: the script's --threads default on the CPU (None: PyTorch's choice);
    ``set_threads`` applies it.
    """
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="random seed (default: 1); in the file name")
    parser.add_argument("--sorting_file", default="none",
                        help="sorting file written by order_examples_by_forgetting.py, read from "
                             "--input_dir (with or without .pkl), or 'none' (default); in the file name")
    parser.add_argument("--remove_n", type=int, default=0,
                        help="number of examples to remove (default: 0); in the file name")
    parser.add_argument("--keep_lowest_n", type=int, default=0,
                        help="sorted position where the removal window starts; negative removes "
                             "--remove_n random examples instead (default: 0); in the file name")
    parser.add_argument(*no_cuda_flags, dest="no_cuda", action="store_true", default=False,
                        help="train on the CPU even if a GPU is available")
    parser.add_argument("--output_dir", required=True,
                        help="directory for the stats pickle, best_acc.txt and resume files "
                             "(created if missing)")
    parser.add_argument("--data_dir", default="/tmp/data",
                        help="where torchvision's datasets live or are downloaded (default: /tmp/data)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run with these flags after its last finished epoch")
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


def check_common_flags(args):
    """Refuse bad numbers, impossible removal flags and an unusable output directory, before
    any data is loaded, touching nothing."""
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
                             f"from 0 (before the first step) to --epochs {args.epochs}")
    check_output_dir(args.output_dir)
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
