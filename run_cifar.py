#!/usr/bin/env python
"""Train ResNet18, WideResNet or the paper's small CNN on CIFAR-10/100 while recording every
example's loss, correctness and margin at every presentation.

Writes ``<save_fname>__stats_dict.pkl`` and ``<save_fname>__best_acc.txt`` in --output_dir,
the best model to ``<output_dir>/checkpoint/<dataset>/<save_fname>.t7``, and with
--noise_percent_labels ``<save_fname>_changed_labels.txt`` (the files of the original
run_cifar.py, see docs/files.md), plus the run's resume files.
"""
import torch
import torch.nn.functional as F

from forgetting.cli import (add_common_flags, add_image_flags, add_speed_flags,
                            check_common_flags, check_image_flags, pick_device, seed_everything,
                            set_threads)
from forgetting.data.datasets import CIFAR_DATASETS, load_cifar
from forgetting.data.noisy_set import noisy_training_set
from forgetting.data.selection import say_kept_per_class, select_train_ids
from forgetting.data.transforms import eval_transform, train_transform
from forgetting.errors import ArgumentParser, exit_on_usage_error
from forgetting.files.naming import CIFAR_FNAME_FLAGS, RunPaths, check_name_fits, save_fname
from forgetting.files.weights import run_description
from forgetting.files.outdir import make_output_dir
from forgetting.files.replaced import make_room
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.side_text import write_text_once
from forgetting.training.job import TrainingJob
from forgetting.training.loop import flag_fields, run_job
from forgetting.training.optim import OPTIMIZERS, make_optimizer
from models import CIFAR_MODELS, build_cifar_model


def build_parser():
    """The script's flags (sweep.py reads them to check a grid before running anything)."""
    parser = ArgumentParser(
        description="Train on CIFAR-10/100 and record per-example statistics of every "
                    "presentation (Toneva et al., ICLR 2019).")
    parser.add_argument("--dataset", default="cifar10", choices=CIFAR_DATASETS,
                        help="torchvision's CIFAR-10 or CIFAR-100 under --data_dir, downloaded when "
                             "missing (default: cifar10); in the file name")
    parser.add_argument("--model", default="resnet18", choices=list(CIFAR_MODELS),
                        help=", ".join(CIFAR_MODELS) + ": the original's CIFAR ResNets and "
                             "WideResNet (WRN-28-10, dropout 0.3), and the paper's small CNN (2 "
                             "conv + 2 fully connected layers) (default: resnet18)")
    parser.add_argument("--batch_size", type=int, default=128,
                        help="training batch size (default: 128)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs to train (default: 200)")
    parser.add_argument("--learning_rate", type=float, default=0.1,
                        help="SGD learning rate, x0.2 from epochs 61, 121 and 161 (default: 0.1); "
                             "ignored by --optimizer adam")
    add_image_flags(parser)
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                        help="sgd (Nesterov momentum 0.9, weight decay 5e-4, scheduled) or adam "
                             "(lr 0.001) (default: sgd)")
    parser.add_argument("--input_dir", default="cifar10_results/",
                        help="where --sorting_file lives (default: cifar10_results/)")
    add_speed_flags(parser)
    add_common_flags(parser, ("--no-cuda", "--no_cuda"))
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    check_common_flags(args)
    check_image_flags(args)
    device = pick_device(args)
    set_threads(args, device)

    seed_everything(args.seed)
    data = load_cifar(args.dataset, args.data_dir)
    train_ids = select_train_ids(len(data.train_y), args.input_dir, args.sorting_file,
                                 args.remove_n, args.keep_lowest_n, args.remove_subsample)
    say_kept_per_class(data.train_y.numpy(), data.num_classes, train_ids, args.sorting_file,
                       args.keep_lowest_n)
    fname = save_fname(args, CIFAR_FNAME_FLAGS)
    check_name_fits(args.output_dir, fname)
    paths = RunPaths.for_run(args.output_dir, fname, checkpoint_subdir=args.dataset)
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    noisy = noisy_training_set(args, data, train_ids)
    make_output_dir(args.output_dir)  # only now: the noise can still refuse the input
    with hold_run_lock(args.output_dir, fname):  # before any file of the run is written
        make_room(paths, args.output_dir, fname, args.resume, say)
        if noisy.changed_labels is not None:
            write_text_once(paths.changed_labels, noisy.changed_labels)

        model = build_cifar_model(args.model, data.num_classes).to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer, lr_for_epoch = make_optimizer(args.optimizer, model.parameters(), args.learning_rate)
        generator = None
        if args.data_augmentation or args.cutout:
            generator = torch.Generator(device=device)
            generator.manual_seed(args.seed)

        print(f"{args.dataset}: training {args.model} on {len(train_ids)} of {len(data.train_y)} "
              f"examples on {device}; writing {fname}__stats_dict.pkl to {args.output_dir}", flush=True)
        described = None
        if args.save_weights_at:  # what score_examples.py needs to rebuild this run's training set
            described = run_description(
                args.model, {"num_classes": data.num_classes}, args.dataset, train_ids,
                noisy.train_y, label_noise_percent=args.noise_percent_labels,
                pixel_noise=(args.noise_percent_pixels, args.noise_std_pixels),
                pixel_noise_state=noisy.pixel_noise_state)
        job = TrainingJob(
            model=model, optimizer=optimizer,
            loss_fn=lambda outputs, targets: F.cross_entropy(outputs, targets, reduction="none"),
            prepare_train=train_transform(data.mean, data.std, device, args.data_augmentation,
                                          args.cutout, args.n_holes, args.length, generator,
                                          args.channels_last),
            prepare_test=eval_transform(data.mean, data.std, device, args.channels_last),
            train_x=noisy.train_x.to(device), train_y=noisy.train_y.to(device),
            test_x=data.test_x.to(device), test_y=data.test_y.to(device),
            # optimizer first: adam ignores --learning_rate (as the original did), so it is only
            # compared for sgd, and a changed optimizer is what the refusal must name
            config={"optimizer": args.optimizer,
                    "learning_rate": args.learning_rate if args.optimizer == "sgd" else None,
                    "batch_size": args.batch_size, "model": args.model, "n_holes": args.n_holes,
                    "length": args.length, "amp": args.amp},
            lr_for_epoch=lr_for_epoch, generator=generator, amp=args.amp,
            run_description=described,
            **flag_fields(args, "run_cifar.py", fname, paths, device, train_ids,
                          len(data.test_y), say))
        run_job(job)


if __name__ == "__main__":
    main()
