#!/usr/bin/env python
"""Train on your own data (an image folder or a .npz file) while recording every example's
loss, correctness and margin at every presentation: run_mnist.py's and run_cifar.py's
training (forgetting/training/loop.py) on data they do not know.

Writes what run_mnist.py writes (``<save_fname>__stats_dict.pkl``, ``__best_acc.txt``, the run
record and resume files) plus ``<save_fname>__examples.tsv``, which maps each example id to
its file (docs/files.md#examples-listing); with --noise_percent_labels also
``<save_fname>_changed_labels.txt``.
"""
import os

import torch
import torch.nn.functional as F

from forgetting.cli import (add_common_flags, add_image_flags, add_speed_flags,
                            check_common_flags, check_image_flags, pick_device, seed_everything,
                            set_threads)
from forgetting.data.noisy_set import noisy_training_set
from forgetting.data.selection import say_kept_per_class, select_train_ids
from forgetting.data.transforms import eval_transform, train_transform
from forgetting.data.user_data import load_user_data, normalisation, vector_normaliser
from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.naming import IMAGES_FNAME_FLAGS, RunPaths, check_name_fits, save_fname
from forgetting.files.outdir import make_output_dir
from forgetting.files.replaced import make_room
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.run_record import read_record
from forgetting.files.side_text import write_text_once
from forgetting.files.weights import run_description
from forgetting.training.job import TrainingJob
from forgetting.training.loop import flag_fields, run_job
from forgetting.training.optim import OPTIMIZERS, RECIPES, recipe_optimizer
from forgetting.training.user_model import MODEL_NAMES, build_user_model, gives_log_probabilities


def build_parser():
    """The script's flags."""
    parser = ArgumentParser(
        description="Train on your own images or feature vectors and record per-example "
                    "statistics of every presentation (Toneva et al., ICLR 2019).")
    source = parser.add_argument_group("data", "give --data_dir or --npz")
    source.add_argument("--data_dir", default=None,
                        help="image folder: DIR/train/<class>/* and DIR/test/<class>/*, or "
                             "DIR/<class>/* split by --test_fraction; its name is the file "
                             "name's dataset")
    source.add_argument("--npz", default=None,
                        help=".npz file with x_train, y_train, x_test, y_test: uint8 images "
                             "(N x H x W or N x H x W x C) or float vectors (N x D); its name "
                             "without .npz is the file name's dataset")
    source.add_argument("--image_size", type=int, default=None,
                        help="resize every image of --data_dir to N x N (needed when their "
                             "sizes differ) (default: keep the size); in the file name when given")
    source.add_argument("--test_fraction", type=float, default=0.2,
                        help="DIR/<class>/* layout: fraction of each class's files that test, "
                             "in [0, 1) (default: 0.2); in the file name when not 0.2")
    source.add_argument("--split_seed", type=int, default=0,
                        help="DIR/<class>/* layout: seed of the test split (default: 0); in the "
                             "file name when not 0")
    source.add_argument("--cache_dir", default=None,
                        help="where the decoded images are cached (default: "
                             "DIR/.forgetting_cache)")
    source.add_argument("--mean", type=float, nargs="+", default=None,
                        help="normalisation mean: one value, or one per channel (images, in "
                             "pixel/255) or per feature (vectors) (default: the training set's "
                             "own)")
    source.add_argument("--std", type=float, nargs="+", default=None,
                        help="normalisation std, as --mean (default: the training set's own)")
    parser.add_argument("--model", default="resnet18",
                        help="mnist_net (1 x 28 x 28 images), " + ", ".join(MODEL_NAMES[1:-1]) +
                             " (colour images), mlp (vectors or images; one hidden layer of 100), "
                             "or torchvision:<name> (random weights, nothing downloaded) "
                             "(default: resnet18); in the file name")
    parser.add_argument("--no_dropout", action="store_true", default=False,
                        help="mnist_net without its dropout layers; in the file name when given")
    parser.add_argument("--recipe", default="cifar", choices=tuple(RECIPES),
                        help="mnist: run_mnist.py's SGD (lr 0.01, momentum 0.5, no schedule, "
                             "batch 64); cifar: run_cifar.py's (lr 0.1, Nesterov momentum 0.9, "
                             "weight decay 5e-4, x0.2 from epochs 61, 121, 161, batch 128) "
                             "(default: cifar); in the file name when not cifar")
    parser.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                        help="sgd (the recipe's) or adam (lr 0.001 unless --lr, no schedule) "
                             "(default: sgd)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: the recipe's)")
    parser.add_argument("--momentum", type=float, default=None,
                        help="SGD momentum (default: the recipe's)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="training batch size (default: the recipe's)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs to train (default: 200)")
    add_image_flags(parser)
    parser.add_argument("--input_dir", default=None,
                        help="where --sorting_file lives (default: --output_dir)")
    add_speed_flags(parser)
    add_common_flags(parser, ("--no_cuda", "--no-cuda"), data_dir=False)
    return parser


def parse_args(argv=None):
    """The parsed flags, the recipe's values filled in where a flag was not given."""
    args = build_parser().parse_args(argv)
    recipe = RECIPES[args.recipe]
    for name in ("optimizer", "lr", "momentum", "batch_size"):
        if getattr(args, name) is None and not (name == "lr" and args.optimizer == "adam"):
            setattr(args, name, recipe[name])
    return args


def check_source_flags(args):
    """Refuse data-source and model flags that cannot work, before any data is read."""
    if (args.data_dir is None) == (args.npz is None):
        raise UsageError("give exactly one of --data_dir (an image folder) and --npz (a .npz "
                         "file)")
    if args.image_size is not None and args.image_size < 1:
        raise UsageError(f"--image_size is {args.image_size}; it must be at least 1")
    if not 0 <= args.test_fraction < 1:
        raise UsageError(f"--test_fraction is {args.test_fraction}; it must be in [0, 1)")
    if args.no_dropout and args.model != "mnist_net":
        raise UsageError(f"--no_dropout removes the dropout of mnist_net only, not of --model "
                         f"{args.model}: drop --no_dropout")


def check_fits_data(args, data):
    """Refuse the image-only flags for feature vectors."""
    if data.is_images:
        return
    for name in ("data_augmentation", "cutout", "channels_last"):
        if getattr(args, name):
            raise UsageError(f"--{name} works on images; {args.npz} holds feature vectors: drop it")
    if args.noise_percent_pixels:
        raise UsageError("--noise_percent_pixels adds noise to image pixels; the data are feature "
                         "vectors: drop it")


def check_same_data(record_path, data):
    """Refuse to resume a run whose record lists other examples (files or labels added,
    removed or renamed since it started: its ids would name other examples)."""
    try:
        recorded = (read_record(record_path) or {}).get("data") or {}
    except ValueError:
        return  # an unreadable record: the saver says so and rewrites it
    before = recorded.get("listing_sha256")
    if before is not None and before != data.source["listing_sha256"]:
        raise UsageError(f"the data at {data.source['path']} list other examples than when the "
                         f"run in {record_path} started (files or labels changed); resume with "
                         "the data it trained on, or start over without --resume")


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    check_common_flags(args)
    check_image_flags(args)
    check_source_flags(args)
    device = pick_device(args)
    set_threads(args, device)
    say = lambda msg: print(msg, flush=True)  # noqa: E731

    seed_everything(args.seed)
    data = load_user_data(args.data_dir, args.npz, args.image_size, args.test_fraction,
                          args.split_seed, args.cache_dir, say)
    check_fits_data(args, data)
    mean, std = normalisation(data, args.mean, args.std)
    args.dataset = data.name  # the file name's dataset
    input_dir = args.output_dir if args.input_dir is None else args.input_dir
    train_ids = select_train_ids(len(data.train_y), input_dir, args.sorting_file,
                                 args.remove_n, args.keep_lowest_n, args.remove_subsample)
    say_kept_per_class(data.train_y.numpy(), data.num_classes, train_ids, args.sorting_file,
                       args.keep_lowest_n)
    model, model_options = build_user_model(args.model, data.shape, data.num_classes,
                                            dropout=not args.no_dropout)
    fname = save_fname(args, IMAGES_FNAME_FLAGS)
    check_name_fits(args.output_dir, fname)
    paths = RunPaths.for_run(args.output_dir, fname, examples=True)
    noisy = noisy_training_set(args, data, train_ids)
    make_output_dir(args.output_dir)
    with hold_run_lock(args.output_dir, fname):  # before any file of the run is written
        if args.resume:
            check_same_data(paths.record, data)
        make_room(paths, args.output_dir, fname, args.resume, say)
        write_text_once(paths.examples, data.examples_tsv())
        if noisy.changed_labels is not None:
            write_text_once(paths.changed_labels, noisy.changed_labels)

        model = model.to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer, lr_for_epoch = recipe_optimizer(args.recipe, args.optimizer, model.parameters(),
                                                   args.lr, args.momentum)
        generator = None
        if args.data_augmentation or args.cutout:
            generator = torch.Generator(device=device)
            generator.manual_seed(args.seed)
        if data.is_images:
            prepare_train = train_transform(mean, std, device, args.data_augmentation,
                                            args.cutout, args.n_holes, args.length, generator,
                                            args.channels_last)
            prepare_test = eval_transform(mean, std, device, args.channels_last)
        else:
            prepare_train = prepare_test = vector_normaliser(mean, std, device)
        loss = F.nll_loss if gives_log_probabilities(args.model) else F.cross_entropy

        print(f"{data.name}: training {args.model} on {len(train_ids)} of {len(data.train_y)} "
              f"examples ({data.num_classes} classes, {' x '.join(map(str, data.shape))}) on "
              f"{device}; writing {fname}__stats_dict.pkl to {args.output_dir}", flush=True)
        described = None
        if args.save_weights_at:  # what score_examples.py needs to rebuild this run's training set
            described = run_description(
                args.model, model_options, data.name, train_ids, noisy.train_y,
                label_noise_percent=args.noise_percent_labels,
                pixel_noise=(args.noise_percent_pixels, args.noise_std_pixels),
                pixel_noise_state=noisy.pixel_noise_state,
                data_source=dict(data.source, mean=list(mean), std=list(std)))
        job = TrainingJob(
            model=model, optimizer=optimizer,
            loss_fn=lambda outputs, targets: loss(outputs, targets, reduction="none"),
            prepare_train=prepare_train, prepare_test=prepare_test,
            train_x=noisy.train_x.to(device), train_y=noisy.train_y.to(device),
            test_x=data.test_x.to(device), test_y=data.test_y.to(device),
            config={"recipe": args.recipe, "optimizer": args.optimizer, "lr": args.lr,
                    "momentum": args.momentum, "batch_size": args.batch_size, "model": args.model,
                    "mean": list(mean), "std": list(std), "amp": args.amp},
            lr_for_epoch=lr_for_epoch, generator=generator, amp=args.amp,
            run_description=described,
            **flag_fields(args, "run_images.py", fname, paths, device, train_ids,
                          len(data.test_y), say))
        job.record["data"] = dict(data.source, mean=list(mean), std=list(std),
                                  examples_file=os.path.basename(paths.examples))
        run_job(job)


if __name__ == "__main__":
    main()
