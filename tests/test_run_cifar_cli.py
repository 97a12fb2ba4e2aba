"""run_cifar.py's command line (docs/training.md#cifar): what it loads through torchvision's real
CIFAR classes, the file names, the ids it trains, its flags, and the files a run writes.

The data sets are tiny synthetic CIFARs in CIFAR's own pickle format (tests/cifar_fixtures.py
says why and how their md5s reach torchvision). Most tests stop right before training
(conftest.run_until_training keeps the TrainingJob the script builds). Only a few train (a
ResNet18 step costs about a second on 50 images on two CPU cores): the files of a whole run
are those of conftest.cifar_reference, which the resume and crash tests also use. Its flag
refusals are in tests/test_bad_input.py.
"""
import dataclasses
import os

import numpy as np
import pytest
import torch

import run_cifar
from forgetting.training import loop as train_loop
from helpers import CIFAR_FNAME, best_acc_of, dump_pickle, load_pickle
from models import ResNet18
from pickles import sorting_dict

DEFAULT_FNAME = ("dataset_cifar10__data_augmentation_False__cutout_False__seed_1__sorting_file_none"
                 "__remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_0"
                 "__noise_percent_pixels_0__noise_std_pixels_0")


# ----------------------------------------------------------------------------- the job, untrained

def test_loads_cifar10_through_torchvision(run_until_training, cifar10, tmp_path):
    _, arrays, _ = cifar10
    job = run_until_training(output_dir=tmp_path)
    assert (job.train_ids == np.arange(len(arrays["train_y"]))).all()
    assert torch.equal(job.train_x, torch.from_numpy(arrays["train_x"]))
    assert torch.equal(job.train_y, torch.from_numpy(arrays["train_y"]))
    assert torch.equal(job.test_x, torch.from_numpy(arrays["test_x"]))
    assert torch.equal(job.test_y, torch.from_numpy(arrays["test_y"]))
    assert os.path.basename(job.paths.stats) == DEFAULT_FNAME + "__stats_dict.pkl"
    assert job.paths.checkpoint == os.path.join(str(tmp_path), "checkpoint", "cifar10",
                                                DEFAULT_FNAME + ".t7")
    assert job.config == {"learning_rate": 0.1, "batch_size": 128, "model": "resnet18",
                          "optimizer": "sgd", "n_holes": 1, "length": 16, "amp": False}
    assert job.epochs == 200 and job.generator is None


def test_loads_cifar100_through_torchvision(run_until_training, cifar100, tmp_path):
    root, arrays, _ = cifar100
    job = run_until_training("--dataset", "cifar100", "--batch_size", 32, output_dir=tmp_path,
                             data_dir=root)
    assert torch.equal(job.train_x, torch.from_numpy(arrays["train_x"]))
    assert torch.equal(job.train_y, torch.from_numpy(arrays["train_y"]))  # the fine labels
    assert torch.equal(job.test_x, torch.from_numpy(arrays["test_x"]))
    assert job.model.linear.out_features == 100
    assert os.path.basename(job.paths.stats).startswith("dataset_cifar100__")
    assert os.path.join("checkpoint", "cifar100") in job.paths.checkpoint


@pytest.mark.parametrize("given_std, shown", [("0.5", "0.5"), ("10", "10.0")])
def test_noise_std_prints_as_the_parsed_float(run_until_training, tmp_path, given_std, shown):
    job = run_until_training("--noise_std_pixels", given_std, output_dir=tmp_path)
    assert os.path.basename(job.paths.stats) == (
        DEFAULT_FNAME[:-len("noise_std_pixels_0")] + f"noise_std_pixels_{shown}__stats_dict.pkl")


def test_no_label_noise_writes_no_changed_labels_file(run_until_training, tmp_path):
    run_until_training(output_dir=tmp_path)
    assert not any(name.endswith("_changed_labels.txt") for name in os.listdir(tmp_path))


def test_remove_subsample_trains_the_documented_ids(run_until_training, cifar10, tmp_path, capsys):
    _, arrays, _ = cifar10
    sorted_ids = np.random.RandomState(9).permutation(len(arrays["train_y"]))[:180]   # a partial sorting file
    dump_pickle(tmp_path / "order.pkl", sorting_dict(sorted_ids))
    job = run_until_training("--input_dir", tmp_path, "--sorting_file", "order", "--keep_lowest_n",
                             60, "--remove_subsample", 20, "--remove_n", 7, output_dir=tmp_path)
    np.random.seed(1)
    lowest = sorted_ids[:60]
    expected = np.concatenate([lowest[np.random.permutation(60)[:40]], sorted_ids[60:]])
    assert (job.train_ids == expected).all()                            # remove_n unused here
    assert torch.equal(job.train_x, torch.from_numpy(arrays["train_x"][expected]))
    assert torch.equal(job.train_y, torch.from_numpy(arrays["train_y"][expected]))
    assert "__remove_subsample_20__" in os.path.basename(job.paths.stats)
    assert kept_per_class_line(arrays["train_y"], expected, 10) in capsys.readouterr().out.splitlines()


def kept_per_class_line(labels, trained_ids, num_classes):
    """What a removal run prints, counted with a plain loop."""
    kept, total = [0] * num_classes, [0] * num_classes
    for label in labels:
        total[label] += 1
    for example_id in trained_ids:
        kept[labels[example_id]] += 1
    return (f"keeping {len(trained_ids)} of {len(labels)} examples, per class (kept/all): "
            + " ".join(f"{c}:{kept[c]}/{total[c]}" for c in range(num_classes)))


def test_random_removal_on_cifar100_says_all_100_classes(run_until_training, cifar100, tmp_path, capsys):
    root, arrays, _ = cifar100
    job = run_until_training("--dataset", "cifar100", "--keep_lowest_n", -1, "--remove_n", 30,
                             output_dir=tmp_path, data_dir=root)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("keeping ")]
    assert lines == [kept_per_class_line(arrays["train_y"], job.train_ids, 100)]


def test_a_run_without_removal_prints_no_per_class_line(run_until_training, tmp_path, capsys):
    run_until_training(output_dir=tmp_path)
    assert "per class" not in capsys.readouterr().out



def test_both_no_cuda_spellings_parse():
    assert run_cifar.parse_args(["--output_dir", "x", "--no-cuda"]).no_cuda
    assert run_cifar.parse_args(["--output_dir", "x", "--no_cuda"]).no_cuda
    args = run_cifar.parse_args(["--output_dir", "x"])
    assert not args.no_cuda and not args.amp and not args.channels_last
    assert args.noise_std_pixels == 0 and isinstance(args.noise_std_pixels, int)
    assert (args.dataset, args.model, args.batch_size, args.epochs, args.learning_rate,
            args.n_holes, args.length, args.optimizer, args.input_dir, args.data_dir) == \
        ("cifar10", "resnet18", 128, 200, 0.1, 1, 16, "sgd", "cifar10_results/", "/tmp/data")



# ----------------------------------------------------------------------------- training runs

@pytest.mark.slow
def test_amp_and_channels_last_train_on_cpu(run_until_training, tmp_path):
    job = run_until_training("--amp", "--channels_last", "--data_augmentation", "--cutout",
                             "--epochs", 1, "--batch_size", 4, output_dir=tmp_path)
    assert job.amp and job.config["amp"] is True
    assert job.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert job.prepare_train(job.train_x[:2]).is_contiguous(memory_format=torch.channels_last)
    # 8 examples in 2 batches: bfloat16 convolutions are slow on a CPU
    small = dataclasses.replace(job, train_x=job.train_x[:8], train_y=job.train_y[:8],
                                train_ids=job.train_ids[:8], test_x=job.test_x[:8],
                                test_y=job.test_y[:8])
    train_loop.run_training(small)
    stats = load_pickle(small.paths.stats)
    assert sorted(k for k in stats if isinstance(k, int)) == job.train_ids[:8].tolist()
    assert len(stats["train"][1]) == 2 and len(stats["test"][1]) == 1


@pytest.mark.slow
def test_a_run_writes_the_original_files(cifar_reference, tiny_cifar):
    """conftest.cifar_reference: 3 epochs, batch 50, augmentation, cutout, 20% label noise."""
    out = cifar_reference
    n_train = len(tiny_cifar.arrays["train_y"])
    stats = load_pickle(os.path.join(out, CIFAR_FNAME + "__stats_dict.pkl"))
    assert set(stats) == set(range(n_train)) | {"train", "test"}
    for example in range(n_train):
        losses, accs, margins = stats[example]
        assert len(losses) == len(accs) == len(margins) == 3
        assert set(accs) <= {0, 1} and all(isinstance(v, float) for v in losses + margins)
    assert stats["train"][0] == [] and len(stats["train"][1]) == 3 * (n_train // 50)
    assert stats["test"][0] == [] and len(stats["test"][1]) == 3

    with open(os.path.join(out, CIFAR_FNAME + "__best_acc.txt")) as handle:
        assert handle.read() == best_acc_of(stats)

    checkpoint = torch.load(os.path.join(out, "checkpoint", "cifar10", CIFAR_FNAME + ".t7"),
                            weights_only=True)
    assert set(checkpoint) == {"acc", "epoch", "net"}
    assert checkpoint["acc"] == max(stats["test"][1]) > 0
    assert checkpoint["epoch"] == stats["test"][1].index(checkpoint["acc"])
    ResNet18(10).load_state_dict(checkpoint["net"])
    assert all(name.startswith(CIFAR_FNAME) for name in os.listdir(out) if name != "checkpoint")
    changed = np.loadtxt(os.path.join(out, CIFAR_FNAME + "_changed_labels.txt"), dtype=np.int64, ndmin=2)
    assert changed.shape == (int(20 * n_train / 100), 3)
