"""run_cifar.py (SPEC section 2): schedule, transforms, label and pixel noise, selection,
loading through torchvision's real CIFAR classes, and one end-to-end run of the CLI.

The data sets are tiny synthetic CIFARs in CIFAR's own pickle format (tests/cifar_fixtures.py
says why and how their md5s reach torchvision). Most CLI tests stop right before training:
``run_job`` is replaced by a function that keeps the TrainingJob, which holds exactly
the ids, images, labels, optimiser and schedule the loop would use. Only a few runs train
(a ResNet18 step costs about a second on 50 images on two CPU cores).
"""
import bisect
import dataclasses
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import run_cifar
from cifar_fixtures import (PYTHON, REPO, cli_env, patch_checksums, write_cifar10,
                            write_cifar100, write_wrapper)
from cutout import random_cutout
from forgetting.training import loop as train_loop
from forgetting.data.transforms import random_crop_flip
from forgetting.data.transforms import eval_transform, train_transform
from forgetting.training.optim import make_optimizer, sgd_learning_rate
from forgetting.data.datasets import CIFAR_MEAN, CIFAR_STD
from forgetting.errors import UsageError
from forgetting.data.noise import add_label_noise, add_pixel_noise
from forgetting.training.recorder import EpochRecorder
from models import ResNet18

N_TRAIN, N_TEST = 200, 100
DEFAULT_FNAME = ("dataset_cifar10__data_augmentation_False__cutout_False__seed_1__sorting_file_none"
                 "__remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_0"
                 "__noise_percent_pixels_0__noise_std_pixels_0")
E2E_FNAME = ("dataset_cifar10__data_augmentation_True__cutout_True__seed_1__sorting_file_none"
             "__remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_0"
             "__noise_percent_pixels_0__noise_std_pixels_0")

DEVICES = ["cpu"]
if torch.cuda.is_available():
    DEVICES.append("cuda")
if torch.backends.mps.is_available():
    DEVICES.append("mps")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    """(data_dir, arrays, checksums) of a 200/100-image CIFAR-10."""
    root = tmp_path_factory.mktemp("cifar_data")
    arrays, checksums = write_cifar10(root, N_TRAIN, N_TEST)
    return root, arrays, checksums


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar100_data")
    arrays, checksums = write_cifar100(root, 150, 60)
    return root, arrays, checksums


@pytest.fixture
def run_until_training(monkeypatch, cifar10, cifar100):
    """``run(*flags, output_dir=...)`` -> the TrainingJob run_cifar.main builds, untrained."""
    for _, _, checksums in (cifar10, cifar100):
        patch_checksums(monkeypatch, checksums)
    jobs = []
    monkeypatch.setattr(run_cifar, "run_job", jobs.append)

    def run(*flags, output_dir, data_dir=None):
        argv = ["--output_dir", str(output_dir), "--data_dir", str(data_dir or cifar10[0]),
                "--no-cuda", "--threads", "2", *map(str, flags)]
        run_cifar.main(argv)
        return jobs.pop()

    return run


def write_sorting_file(directory, name, indices):
    with open(os.path.join(directory, name + ".pkl"), "wb") as handle:
        pickle.dump({"indices": np.asarray(indices, dtype=np.int64),
                     "forgetting counts": np.zeros(len(indices), dtype=np.int64)}, handle)


# ----------------------------------------------------------------------------- schedule

def spec_rate(base, epoch):
    return base * 0.2 ** bisect.bisect_right([60, 120, 160], epoch - 1)


def test_sgd_rate_follows_the_spec_formula_for_every_epoch():
    for epoch in range(201):
        assert sgd_learning_rate(0.1, epoch) == spec_rate(0.1, epoch)
    # the drops take effect at 61, 121 and 161 (the original stepped MultiStepLR after epochs)
    assert {sgd_learning_rate(0.1, e) for e in range(0, 61)} == {0.1}
    assert {sgd_learning_rate(0.1, e) for e in range(61, 121)} == {0.1 * 0.2}
    assert {sgd_learning_rate(0.1, e) for e in range(121, 161)} == {0.1 * 0.2 ** 2}
    assert {sgd_learning_rate(0.1, e) for e in range(161, 201)} == {0.1 * 0.2 ** 3}


def test_optimizers_have_the_original_settings():
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd, schedule = make_optimizer("sgd", params, 0.05)
    group = sgd.param_groups[0]
    assert isinstance(sgd, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == \
        (0.05, 0.9, True, 5e-4)
    assert [schedule(e) for e in (0, 60, 61, 200)] == [spec_rate(0.05, e) for e in (0, 60, 61, 200)]
    adam, schedule = make_optimizer("adam", params, 0.05)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 0.001
    assert schedule is None


def test_the_training_loop_steps_at_the_scheduled_rate(run_until_training, tmp_path):
    job = run_until_training("--learning_rate", 0.05, output_dir=tmp_path)
    # A 2-example job keeps each step cheap; the loop code and the optimiser are the real ones.
    job = dataclasses.replace(job, train_x=job.train_x[:2], train_y=job.train_y[:2],
                              train_ids=job.train_ids[:2], batch_size=2)
    rates, step = [], job.optimizer.step

    def recording_step(*args, **kwargs):
        rates.append(job.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    job.optimizer.step = recording_step
    recorder = EpochRecorder(2, 2, job.device)
    epochs = [0, 60, 61, 120, 121, 160, 161]
    for epoch in epochs:
        train_loop.train_epoch(job, recorder, epoch, job.sampler.epoch_order(epoch, 2, job.device))
    assert rates == [spec_rate(0.05, e) for e in epochs]


def test_adam_runs_have_no_schedule(run_until_training, tmp_path):
    job = run_until_training("--optimizer", "adam", "--learning_rate", 0.5, output_dir=tmp_path)
    assert isinstance(job.optimizer, torch.optim.Adam)
    assert job.optimizer.param_groups[0]["lr"] == 0.001 and job.lr_for_epoch is None


# ----------------------------------------------------------------------------- transforms

@pytest.mark.parametrize("device", DEVICES)
def test_eval_transform_only_normalises(device):
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, device=device)
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    expected = (images.float() / 255 - mean) / std
    out = eval_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device))(images)
    torch.testing.assert_close(out, expected)
    untouched = train_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device))(images)
    torch.testing.assert_close(untouched, expected)
    last = eval_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device), channels_last=True)(images)
    assert last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_train_transform_is_crop_flip_then_normalise_then_cutout(device):
    device = torch.device(device)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device=device)
    ours = torch.Generator(device=device).manual_seed(7)
    prepare = train_transform(CIFAR_MEAN, CIFAR_STD, device, data_augmentation=True, cutout=True,
                              n_holes=2, length=8, generator=ours)
    theirs = torch.Generator(device=device).manual_seed(7)
    normalise = eval_transform(CIFAR_MEAN, CIFAR_STD, device)
    for _ in range(2):  # consecutive batches continue the same stream
        expected = random_cutout(normalise(random_crop_flip(images, 4, theirs)), 2, 8, theirs)
        torch.testing.assert_close(prepare(images), expected)


def test_crop_padding_is_black_before_normalising():
    images = torch.full((64, 3, 32, 32), 255, dtype=torch.uint8)
    prepare = train_transform(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"), data_augmentation=True,
                              generator=torch.Generator().manual_seed(0))
    out = prepare(images)
    mean, std = torch.tensor(CIFAR_MEAN).view(3, 1, 1), torch.tensor(CIFAR_STD).view(3, 1, 1)
    white, black = ((1 - mean) / std).expand(3, 32, 32), (-mean / std).expand(3, 32, 32)
    is_white = torch.isclose(out, white.expand_as(out))
    is_black = torch.isclose(out, black.expand_as(out))
    assert bool((is_white | is_black).all())
    assert bool(is_black.any()) and bool(is_white.any())


# ----------------------------------------------------------------------------- label noise

def original_label_flips(labels, percent):
    """The original's loop (labels 0..m-1): positions, then one choice per flipped example."""
    n, m = len(labels), len(np.unique(labels))
    positions = np.random.choice(np.arange(n), int(percent * n / 100), replace=False)
    new = [np.random.choice(np.delete(np.arange(m), labels[p]), 1)[0] for p in positions]
    return positions, np.array(new, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), classes=st.sampled_from([(3, 7), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
                                                       (2, 5, 9, 11)]),
       percent=st.integers(0, 100), seed=st.integers(0, 2 ** 31))
def test_label_noise_flips_the_right_count_to_other_present_labels(n, classes, percent, seed):
    labels = np.random.RandomState(seed).choice(classes, size=n).astype(np.int64)
    present = np.unique(labels)
    np.random.seed(seed)
    k = int(percent * n / 100)
    if k and len(present) < 2:
        with pytest.raises(UsageError, match="two distinct labels"):
            add_label_noise(labels, percent)
        return
    new_labels, positions, old, new = add_label_noise(labels, percent)
    assert len(positions) == len(set(positions.tolist())) == len(old) == len(new) == k
    assert (old == labels[positions]).all() and (new != old).all()
    assert np.isin(new, present).all()
    assert (new_labels[positions] == new).all()
    untouched = np.setdiff1d(np.arange(n), positions)
    assert (new_labels[untouched] == labels[untouched]).all()
    assert (labels == np.random.RandomState(seed).choice(classes, size=n)).all()  # input kept


def test_label_noise_draws_the_originals_stream():
    labels = np.random.RandomState(0).randint(0, 10, size=500)
    np.random.seed(4)
    expected_positions, expected_new = original_label_flips(labels, 37)
    np.random.seed(4)
    _, positions, _, new = add_label_noise(labels, 37)
    assert (positions == expected_positions).all() and (new == expected_new).all()
    # With a percentage too small to flip anything, the original still drew a permutation.
    np.random.seed(4)
    original_label_flips(labels[:5], 10)
    expected_next = np.random.random_sample()
    np.random.seed(4)
    assert len(add_label_noise(labels[:5], 10)[1]) == 0
    assert np.random.random_sample() == expected_next


def test_zero_percent_noise_draws_nothing():
    np.random.seed(3)
    before = np.random.get_state()[1].copy(), np.random.get_state()[2]
    labels = np.arange(50) % 10
    new_labels, positions, _, _ = add_label_noise(labels, 0)
    images = np.random.RandomState(0).randint(0, 256, (4, 3, 32, 32)).astype(np.uint8)
    assert (add_pixel_noise(images, 0, 5.0) == images).all()
    after = np.random.get_state()[1], np.random.get_state()[2]
    assert (before[0] == after[0]).all() and before[1] == after[1]
    assert (new_labels == labels).all() and len(positions) == 0


# ----------------------------------------------------------------------------- pixel noise

def changed_positions(before, after):
    """Per image, the number of pixel positions with any channel changed, and the largest
    number of channels changed at one position."""
    changed = before != after                                   # (N, C, H, W)
    return changed.any(axis=1).sum(axis=(1, 2)), changed.sum(axis=1).max(axis=(1, 2))


@pytest.mark.parametrize("percent", [1, 10, 50, 100])
def test_pixel_noise_changes_exactly_k_positions_of_black_images(percent):
    # Noise has mean 120, so on black images every chosen pixel visibly changes (std 0.5:
    # 120 +- a few, never truncated to 0 nor clipped at 255).
    images = np.zeros((20, 3, 32, 32), dtype=np.uint8)
    np.random.seed(1)
    noisy = add_pixel_noise(images, percent, 0.5)
    positions, channels = changed_positions(images, noisy)
    assert (positions == int(np.floor(percent * 32 * 32 / 100))).all()
    assert (channels == 1).all()  # one channel per chosen position
    assert noisy[noisy > 0].min() >= 115 and noisy.max() <= 125
    assert (images == 0).all()    # the input is not modified


@settings(max_examples=30, deadline=None)
@given(percent=st.integers(0, 100), std=st.sampled_from([0.0, 0.5, 10.0, 1000.0]),
       seed=st.integers(0, 2 ** 31))
def test_pixel_noise_stays_within_its_budget(percent, std, seed):
    images = np.random.RandomState(seed).randint(0, 256, (6, 3, 32, 32)).astype(np.uint8)
    np.random.seed(seed)
    noisy = add_pixel_noise(images, percent, std)
    assert noisy.dtype == np.uint8 and noisy.shape == images.shape
    positions, channels = changed_positions(images, noisy)
    assert (positions <= int(np.floor(percent * 32 * 32 / 100))).all()
    assert (channels <= 1).all()
    np.random.seed(seed)
    assert (add_pixel_noise(images, percent, std) == noisy).all()  # same seed, same noise


def test_pixel_noise_truncates_like_int_and_clips(monkeypatch):
    # Replace the Normal draws by fixed values to see the rounding: int() truncates toward 0,
    # then the value is clipped to 0..255 (the original wrapped around in uint8).
    monkeypatch.setattr(np.random, "normal",
                        lambda mean, std, size: np.resize([120.9, -30.5, 300.0, 0.99], size))
    images = np.full((3, 3, 32, 32), 10, dtype=np.uint8)
    noisy = add_pixel_noise(images, 100, 0.0)
    assert sorted(np.unique(noisy).tolist()) == [0, 10, 130, 255]
    counts = {v: int((noisy == v).sum()) for v in (0, 10, 130, 255)}
    assert counts[0] == counts[130] == counts[255] == 3 * 1024 // 4       # one per image and pixel
    assert counts[10] == 3 * 3 * 1024 - 3 * 3 * 1024 // 4                  # + 0.99 -> 10, and the rest


def test_pixel_noise_keeps_tensors_tensors():
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    noisy = add_pixel_noise(images, 10, 1.0)
    assert isinstance(noisy, torch.Tensor) and noisy.dtype == torch.uint8
    assert int((noisy != 0).any(dim=1).sum()) == 2 * 102


# ----------------------------------------------------------------------------- CLI, no training

def test_loads_cifar10_through_torchvision(run_until_training, cifar10, tmp_path):
    _, arrays, _ = cifar10
    job = run_until_training(output_dir=tmp_path)
    assert (job.train_ids == np.arange(N_TRAIN)).all()
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


def read_changed_labels(path):
    rows = np.loadtxt(path, dtype=np.int64, ndmin=2)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def test_pixel_then_label_noise_after_a_removal(run_until_training, cifar10, tmp_path):
    _, arrays, _ = cifar10
    sorted_ids = np.random.RandomState(5).permutation(N_TRAIN)
    write_sorting_file(tmp_path, "order", sorted_ids)
    out = tmp_path / "out"
    job = run_until_training("--input_dir", tmp_path, "--sorting_file", "order", "--remove_n", 50,
                             "--keep_lowest_n", 20, "--noise_percent_pixels", 10,
                             "--noise_std_pixels", 2, "--noise_percent_labels", 30,
                             output_dir=out)
    ids = np.setdiff1d(np.arange(N_TRAIN), sorted_ids[20:70])
    assert (job.train_ids == ids).all()

    # SPEC's order of numpy draws after seeding: pixel noise, then label noise.
    np.random.seed(1)
    expected_x = add_pixel_noise(arrays["train_x"][ids], 10, 2.0)
    expected_y, positions, _, _ = add_label_noise(arrays["train_y"][ids], 30)
    assert torch.equal(job.train_x, torch.from_numpy(expected_x))
    assert torch.equal(job.train_y, torch.from_numpy(expected_y))
    positions_changed, _ = changed_positions(arrays["train_x"][ids], job.train_x.numpy())
    assert (positions_changed <= 102).all()

    fname = os.path.basename(job.paths.stats)[:-len("__stats_dict.pkl")]
    file_ids, true, new = read_changed_labels(out / (fname + "_changed_labels.txt"))
    assert len(file_ids) == int(30 * len(ids) / 100) == 45
    assert (file_ids == ids[positions]).all()             # original ids, not positions
    assert not (file_ids == positions).all()
    assert (true == arrays["train_y"][file_ids]).all() and (new != true).all()
    assert np.isin(new, np.unique(arrays["train_y"][ids])).all()
    trained = dict(zip(job.train_ids.tolist(), job.train_y.tolist()))
    assert [trained[i] for i in file_ids.tolist()] == new.tolist()   # what training uses
    flipped = set(file_ids.tolist())
    assert all(trained[i] == arrays["train_y"][i] for i in ids.tolist() if i not in flipped)


def test_no_label_noise_writes_no_changed_labels_file(run_until_training, tmp_path):
    run_until_training(output_dir=tmp_path)
    assert not any(name.endswith("_changed_labels.txt") for name in os.listdir(tmp_path))


def test_remove_subsample_trains_the_documented_ids(run_until_training, cifar10, tmp_path):
    _, arrays, _ = cifar10
    sorted_ids = np.random.RandomState(9).permutation(N_TRAIN)[:180]   # a partial sorting file
    write_sorting_file(tmp_path, "order", sorted_ids)
    job = run_until_training("--input_dir", tmp_path, "--sorting_file", "order", "--keep_lowest_n",
                             60, "--remove_subsample", 20, "--remove_n", 7, output_dir=tmp_path)
    np.random.seed(1)
    lowest = sorted_ids[:60]
    expected = np.concatenate([lowest[np.random.permutation(60)[:40]], sorted_ids[60:]])
    assert (job.train_ids == expected).all()                            # remove_n unused here
    assert torch.equal(job.train_x, torch.from_numpy(arrays["train_x"][expected]))
    assert torch.equal(job.train_y, torch.from_numpy(arrays["train_y"][expected]))
    assert "__remove_subsample_20__" in os.path.basename(job.paths.stats)


@pytest.mark.parametrize("flags, message", [
    (["--noise_percent_labels", "101"], "--noise_percent_labels is 101"),
    (["--noise_percent_pixels", "-1"], "--noise_percent_pixels is -1"),
    (["--noise_std_pixels", "-0.5"], "--noise_std_pixels is -0.5"),
    (["--n_holes", "-1"], "--n_holes is -1"),
    (["--sorting_file", "x", "--keep_lowest_n", "5", "--remove_subsample", "6"],
     "--remove_subsample 6 is larger than --keep_lowest_n 5"),
    (["--remove_n", "-3"], "--remove_n is -3"),
    (["--epochs", "0"], "--epochs is 0"),
])
def test_bad_flags_are_refused_before_anything_happens(flags, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        run_cifar.main(["--output_dir", str(out), "--data_dir", str(tmp_path / "nodata"), *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not out.exists() and not (tmp_path / "nodata").exists()


@pytest.mark.parametrize("flag, value", [("--model", "vgg"), ("--optimizer", "rmsprop"),
                                         ("--dataset", "svhn")])
def test_unknown_names_are_refused(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        run_cifar.main(["--output_dir", str(tmp_path / "out"), flag, value])
    assert stop.value.code == 2
    assert f"invalid choice: '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_both_no_cuda_spellings_parse():
    assert run_cifar.parse_args(["--output_dir", "x", "--no-cuda"]).no_cuda
    assert run_cifar.parse_args(["--output_dir", "x", "--no_cuda"]).no_cuda
    args = run_cifar.parse_args(["--output_dir", "x"])
    assert not args.no_cuda and not args.amp and not args.channels_last
    assert args.noise_std_pixels == 0 and isinstance(args.noise_std_pixels, int)
    assert (args.dataset, args.model, args.batch_size, args.epochs, args.learning_rate,
            args.n_holes, args.length, args.optimizer, args.input_dir, args.data_dir) == \
        ("cifar10", "resnet18", 128, 200, 0.1, 1, 16, "sgd", "cifar10_results/", "/tmp/data")


def test_remove_subsample_without_sorting_file_exits_with_one_line(tmp_path):
    result = subprocess.run(
        [PYTHON, str(REPO / "run_cifar.py"), "--remove_subsample", "5", "--keep_lowest_n", "10",
         "--output_dir", str(tmp_path / "out")],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--remove_subsample needs a --sorting_file" in result.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- training runs

def test_amp_and_channels_last_train_on_cpu(run_until_training, tmp_path):
    job = run_until_training("--amp", "--channels_last", "--data_augmentation", "--cutout",
                             "--epochs", 1, "--batch_size", 8, output_dir=tmp_path)
    assert job.amp and job.config["amp"] is True
    assert job.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert job.prepare_train(job.train_x[:2]).is_contiguous(memory_format=torch.channels_last)
    small = dataclasses.replace(job, train_x=job.train_x[:16], train_y=job.train_y[:16],
                                train_ids=job.train_ids[:16], test_x=job.test_x[:8],
                                test_y=job.test_y[:8])
    train_loop.run_training(small)
    with open(small.paths.stats, "rb") as handle:
        stats = pickle.load(handle)
    assert sorted(k for k in stats if isinstance(k, int)) == job.train_ids[:16].tolist()
    assert len(stats["train"][1]) == 2 and len(stats["test"][1]) == 1


def test_end_to_end_run_writes_the_original_files(cifar10, tmp_path):
    root, arrays, checksums = cifar10
    wrapper = write_wrapper(tmp_path, checksums)
    out = tmp_path / "results"
    base = [PYTHON, str(wrapper), "--data_dir", str(root), "--output_dir", str(out),
            "--data_augmentation", "--cutout", "--batch_size", "50", "--threads", "2", "--no-cuda"]
    result = subprocess.run(base + ["--epochs", "2"], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    stats_path = out / (E2E_FNAME + "__stats_dict.pkl")
    with open(stats_path, "rb") as handle:
        stats = pickle.load(handle)
    assert set(stats) == set(range(N_TRAIN)) | {"train", "test"}
    for example in range(N_TRAIN):
        losses, accs, margins = stats[example]
        assert len(losses) == len(accs) == len(margins) == 2
        assert set(accs) <= {0, 1} and all(isinstance(v, float) for v in losses + margins)
    assert stats["train"][0] == [] and len(stats["train"][1]) == 2 * (N_TRAIN // 50)
    assert stats["test"][0] == [] and len(stats["test"][1]) == 2

    best = (out / (E2E_FNAME + "__best_acc.txt")).read_text()
    assert best == f"train test \n{max(stats['train'][1])} {max(stats['test'][1])}"

    checkpoint = torch.load(out / "checkpoint" / "cifar10" / (E2E_FNAME + ".t7"),
                            weights_only=True)
    assert set(checkpoint) == {"acc", "epoch", "net"}
    assert checkpoint["acc"] == max(stats["test"][1]) > 0
    assert checkpoint["epoch"] == stats["test"][1].index(checkpoint["acc"])
    ResNet18(10).load_state_dict(checkpoint["net"])
    assert all(name.startswith(E2E_FNAME) for name in os.listdir(out) if name != "checkpoint")
    assert not (out / (E2E_FNAME + "_changed_labels.txt")).exists()

    # --resume with a different result-relevant flag is refused; on the finished run it is a
    # no-op that says so.
    refused = subprocess.run(base + ["--epochs", "2", "--resume", "--learning_rate", "0.05"],
                             cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--learning_rate is 0.05" in refused.stderr
    assert pickle.loads(stats_path.read_bytes()) == stats
