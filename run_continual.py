#!/usr/bin/env python
"""Train on two tasks in turn and track how much each task is forgotten (the paper's Sec. 4.2,
Fig. 4: example forgetting and catastrophic forgetting).

The tasks are two disjoint sets of ``--task_size`` training examples: a random split, or a
split by forgetting statistics (task A: examples a sorting file counts with zero forgetting
events; task B: examples forgotten at least once). ``--tasks AB`` trains ``--epochs_per_task``
epochs on A, then as many on B; after every epoch the model is evaluated on each task's whole
partition and on the test set.

Writes in --output_dir what the training scripts write for a run (``<save_fname>__stats_dict.pkl``
of a sampled run: each epoch holds the presentations of the task it trained; best_acc.txt, the
run record, the resume files) plus ``<save_fname>__tasks.csv``, one line per epoch
(forgetting/training/continual.py).
"""
import numpy as np
import torch
import torch.nn.functional as F

from forgetting.cli import (add_common_flags, check_common_flags, pick_device,
                            seed_everything, set_threads)
from forgetting.data.datasets import CIFAR_DATASETS, MNIST_DATASETS, load_cifar, load_mnist_family
from forgetting.data.tasks import (check_tasks, forgetting_split, load_forgetting_counts,
                                   random_split)
from forgetting.data.transforms import eval_transform, normaliser, train_transform
from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error
from forgetting.files.naming import CONTINUAL_FNAME_FLAGS, RunPaths, check_name_fits, save_fname
from forgetting.files.outdir import make_output_dir
from forgetting.files.replaced import make_room
from forgetting.files.run_lock import hold_run_lock
from forgetting.files.weights import run_description
from forgetting.training.continual import TaskSchedule, table_csv
from forgetting.training.job import TrainingJob
from forgetting.training.loop import flag_fields, run_job
from forgetting.training.optim import OPTIMIZERS, make_optimizer
from models import CIFAR_MODELS, MnistNet, build_cifar_model

SPLITS = ("random", "forgetting")
# The defaults that depend on the dataset's family: the training script's of that family.
FAMILY_DEFAULTS = {
    "mnist": {"model": "mnist_net", "batch_size": 64, "learning_rate": 0.01, "momentum": 0.5,
              "input_dir": "mnist_results/"},
    "cifar": {"model": "resnet18", "batch_size": 128, "learning_rate": 0.1, "momentum": None,
              "input_dir": "cifar10_results/"},
}


def family(dataset):
    """``mnist`` or ``cifar``: whose training script's defaults and network apply."""
    return "mnist" if dataset in MNIST_DATASETS else "cifar"


class ContinualParser(ArgumentParser):
    """The parser whose ``parse_args`` also fills the family defaults and derives ``epochs``
    (``len(tasks) * epochs_per_task``; not a flag), so that the loop, the run record and
    sweep.py's plan all see the run's total epochs."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        check_tasks(parsed.tasks)
        for name in ("task_size", "epochs_per_task"):
            if getattr(parsed, name) < 1:
                raise UsageError(f"--{name} is {getattr(parsed, name)}; it must be at least 1")
        defaults = FAMILY_DEFAULTS[family(parsed.dataset)]
        for name, value in defaults.items():
            if getattr(parsed, name) is None:
                setattr(parsed, name, value)
        parsed.epochs = len(parsed.tasks) * parsed.epochs_per_task
        return parsed


def build_parser():
    """The script's flags (sweep.py reads them to check a grid before running anything)."""
    parser = ContinualParser(
        description="Train on two tasks in turn and record each task's accuracy after every "
                    "epoch (Toneva et al., ICLR 2019, Sec. 4.2).")
    parser.add_argument("--dataset", default="cifar10", choices=MNIST_DATASETS + CIFAR_DATASETS,
                        help="as run_mnist.py's or run_cifar.py's --dataset (default: cifar10); in "
                             "the file name")
    parser.add_argument("--split", default="random", choices=SPLITS,
                        help="random: 2 x --task_size examples drawn at random; forgetting: task A "
                             "drawn from the examples with zero forgetting events in "
                             "--sorting_file, task B from those forgotten at least once "
                             "(default: random); in the file name")
    parser.add_argument("--tasks", default="AB",
                        help="the order the tasks train in, --epochs_per_task epochs each: AB, "
                             "BA, ABA, ... (default: AB); in the file name")
    parser.add_argument("--task_size", type=int, default=5000,
                        help="examples per task (default: 5000); in the file name")
    parser.add_argument("--epochs_per_task", type=int, default=20,
                        help="epochs each task trains for, each time it comes (default: 20); in "
                             "the file name")
    parser.add_argument("--model", default=None, choices=("mnist_net",) + tuple(CIFAR_MODELS),
                        help="mnist_net (run_mnist.py's network) for the MNIST family, the "
                             "CIFAR networks of run_cifar.py for CIFAR (default: mnist_net or "
                             "resnet18)")
    parser.add_argument("--no_dropout", action="store_true", default=False,
                        help="mnist_net without its dropout layers")
    parser.add_argument("--data_augmentation", action="store_true", default=False,
                        help="CIFAR: random crop and flip, as run_cifar.py (training only; the "
                             "tasks are evaluated without it)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="training batch size (default: 64 MNIST, 128 CIFAR)")
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                        help="sgd: run_mnist.py's SGD(--learning_rate, --momentum) for the MNIST "
                             "family, run_cifar.py's Nesterov SGD (momentum 0.9, weight decay "
                             "5e-4, its schedule) for CIFAR; adam: run_cifar.py's Adam (CIFAR "
                             "only) (default: sgd)")
    parser.add_argument("--learning_rate", "--lr", type=float, default=None,
                        help="SGD learning rate (default: 0.01 MNIST, 0.1 CIFAR)")
    parser.add_argument("--momentum", type=float, default=None,
                        help="SGD momentum, MNIST family (default: 0.5)")
    parser.add_argument("--input_dir", default=None,
                        help="where --sorting_file lives (default: mnist_results/ or "
                             "cifar10_results/)")
    add_common_flags(parser, ("--no_cuda", "--no-cuda"), cpu_threads=1, removal_and_sampling=False)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_continual_flags(args):
    """Refuse flags that do not apply to the dataset's family or the split, before any data
    is loaded."""
    mnist = family(args.dataset) == "mnist"
    if (args.model == "mnist_net") != mnist:
        raise UsageError(f"--model {args.model} is not a network for --dataset {args.dataset}; "
                         f"give --model {FAMILY_DEFAULTS[family(args.dataset)]['model']}")
    if args.no_dropout and args.model != "mnist_net":
        raise UsageError("--no_dropout removes mnist_net's dropout; the CIFAR networks have none "
                         "to remove (drop the flag)")
    if args.data_augmentation and mnist:
        raise UsageError("--data_augmentation is run_cifar.py's crop and flip, for the CIFAR "
                         "datasets; drop it for --dataset " + args.dataset)
    if mnist and args.optimizer != "sgd":
        raise UsageError("the MNIST family trains with run_mnist.py's SGD; drop --optimizer adam")
    if not mnist and args.momentum is not None:
        raise UsageError("--momentum is run_mnist.py's; the CIFAR family's SGD uses Nesterov "
                         "momentum 0.9: drop --momentum")
    if args.split == "forgetting" and args.sorting_file == "none":
        raise UsageError("--split forgetting needs the --sorting_file of "
                         "order_examples_by_forgetting.py (in --input_dir) to split by")


def split_tasks(args, n_train, say):
    """``(task A ids, task B ids)`` for the run's --split; says what each task holds. A random
    split does not read --sorting_file (so one sweep's grid can hold both splits)."""
    if args.split == "random":
        task_a, task_b = random_split(n_train, args.task_size, args.seed)
        say(f"tasks: A and B, {args.task_size} random examples each")
    else:
        ids, counts, path = load_forgetting_counts(args.input_dir, args.sorting_file, n_train)
        task_a, task_b = forgetting_split(ids, counts, args.task_size, args.seed, path)
        say(f"tasks: A = {args.task_size} of the {int((counts == 0).sum())} examples never "
            f"forgotten, B = {args.task_size} of the {int((counts >= 1).sum())} forgotten at least "
            f"once ({path})")
    return task_a, task_b


def build_model(args, data, device):
    """``(model, optimizer, lr_for_epoch, config)``: the family's network and optimiser as its
    training script builds them; ``config``: the result-relevant flags --resume compares."""
    if args.model == "mnist_net":
        model = MnistNet(dropout=not args.no_dropout).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=args.momentum)
        lr_for_epoch = None
    else:
        model = build_cifar_model(args.model, data.num_classes).to(device)
        optimizer, lr_for_epoch = make_optimizer(args.optimizer, model.parameters(), args.learning_rate)
    config = {"model": args.model, "optimizer": args.optimizer, "batch_size": args.batch_size,
              "learning_rate": args.learning_rate, "momentum": args.momentum,
              "no_dropout": args.no_dropout, "data_augmentation": args.data_augmentation}
    return model, optimizer, lr_for_epoch, config


def transforms(args, data, device):
    """``(prepare_train, prepare_test, generator)``; the tasks are evaluated with prepare_test."""
    if family(args.dataset) == "mnist":
        normalise = normaliser(data.mean, data.std, device)
        return normalise, normalise, None
    generator = None
    if args.data_augmentation:
        generator = torch.Generator(device=device)
        generator.manual_seed(args.seed)
    prepare_train = train_transform(data.mean, data.std, device, args.data_augmentation, False,
                                    1, 16, generator, False)
    return prepare_train, eval_transform(data.mean, data.std, device, False), generator


@exit_on_usage_error
def main(argv=None):
    args = parse_args(argv)
    check_common_flags(args, removal_and_sampling=False)
    check_continual_flags(args)
    device = pick_device(args)
    set_threads(args, device)
    say = lambda msg: print(msg, flush=True)  # noqa: E731

    seed_everything(args.seed)
    if family(args.dataset) == "mnist":
        data = load_mnist_family(args.dataset, args.data_dir)
    else:
        data = load_cifar(args.dataset, args.data_dir)
    task_a, task_b = split_tasks(args, len(data.train_y), say)
    train_ids = np.concatenate([task_a, task_b])

    fname = save_fname(args, CONTINUAL_FNAME_FLAGS)
    check_name_fits(args.output_dir, fname)
    say(f"{args.dataset}: training {args.model} on tasks {args.tasks}, {args.epochs_per_task} "
        f"epochs each, on {device}; writing {fname}__tasks.csv to {args.output_dir}")
    make_output_dir(args.output_dir)
    paths = RunPaths.for_run(args.output_dir, fname, task_table=True)
    with hold_run_lock(args.output_dir, fname):  # before any file of the run is written
        make_room(paths, args.output_dir, fname, args.resume, say)
        model, optimizer, lr_for_epoch, config = build_model(args, data, device)
        prepare_train, prepare_test, generator = transforms(args, data, device)
        data = data.to(device)
        ids_on_device = torch.from_numpy(train_ids).to(device)
        described = None
        if args.save_weights_at:  # what score_examples.py needs to rebuild this run's training set
            options = ({"dropout": not args.no_dropout} if args.model == "mnist_net"
                       else {"num_classes": data.num_classes})
            described = run_description(args.model, options, args.dataset, train_ids,
                                        data.train_y[ids_on_device], permutation=data.permutation)
        schedule = TaskSchedule(args.tasks, args.epochs_per_task, args.task_size, say)
        job = TrainingJob(
            model=model, optimizer=optimizer,
            # log_softmax outputs (mnist_net) take nll_loss, logits cross_entropy: the same loss
            loss_fn=(lambda outputs, targets: F.nll_loss(outputs, targets, reduction="none"))
            if args.model == "mnist_net" else
            (lambda outputs, targets: F.cross_entropy(outputs, targets, reduction="none")),
            prepare_train=prepare_train, prepare_test=prepare_test,
            train_x=data.train_x[ids_on_device], train_y=data.train_y[ids_on_device],
            test_x=data.test_x, test_y=data.test_y, config=config,
            lr_for_epoch=lr_for_epoch, generator=generator, run_description=described,
            after_test=schedule.after_test,
            side_files=lambda state: {paths.task_table: table_csv(state["sampler"]["table"])},
            **flag_fields(args, "run_continual.py", fname, paths, device, train_ids,
                          len(data.test_y), say, sampler=schedule))
        run_job(job)


if __name__ == "__main__":
    main()
