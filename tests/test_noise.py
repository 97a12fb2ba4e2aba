"""Label and pixel noise of both training scripts (docs/training.md#noise): the counts, the
draws (the original's numpy stream for labels), the clipping, both applied after a removal by
run_cifar.py with the changed-labels file, pixel noise on the digits of run_mnist.py, and a
saved run rebuilt with its noise for el2n/grand."""
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from forgetting.data.noise import add_label_noise, add_pixel_noise
from forgetting.errors import UsageError
from helpers import dump_pickle
from pickles import sorting_dict


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


# ----------------------------------------------------------------------------- through the CLI

def read_changed_labels(path):
    rows = np.loadtxt(path, dtype=np.int64, ndmin=2)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def test_pixel_then_label_noise_after_a_removal(run_until_training, cifar10, tmp_path):
    _, arrays, _ = cifar10
    n_train = len(arrays["train_y"])
    sorted_ids = np.random.RandomState(5).permutation(n_train)
    dump_pickle(tmp_path / "order.pkl", sorting_dict(sorted_ids))
    out = tmp_path / "out"
    job = run_until_training("--input_dir", tmp_path, "--sorting_file", "order", "--remove_n", 50,
                             "--keep_lowest_n", 20, "--noise_percent_pixels", 10,
                             "--noise_std_pixels", 2, "--noise_percent_labels", 30,
                             output_dir=out)
    ids = np.setdiff1d(np.arange(n_train), sorted_ids[20:70])
    assert (job.train_ids == ids).all()

    # The order of numpy draws after seeding (docs/training.md#seeding): pixel noise, then label noise.
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


# ----------------------------------------------------------------------------- run_mnist.py

@pytest.fixture
def mnist_job(monkeypatch, tmp_path):
    """``job(*flags)`` -> the TrainingJob run_mnist.main builds on mnist_5k, untrained."""
    import run_mnist

    jobs = []
    monkeypatch.setattr(run_mnist, "run_job", jobs.append)

    def job(*flags):
        run_mnist.main(["--dataset", "mnist_5k", "--no_cuda", "--threads", "1",
                        "--output_dir", str(tmp_path / "out"), *map(str, flags)])
        return jobs.pop()

    return job


def test_mnist_pixel_noise_changes_only_training_images(mnist_job):
    """The CIFAR rule on the uint8 digits: floor(p * 28 * 28 / 100) positions per image, drawn
    after the selection (none here), then the labels; the test digits stay clean."""
    from forgetting.data.datasets import load_mnist_5k

    clean = load_mnist_5k()
    job = mnist_job("--noise_percent_pixels", 10, "--noise_std_pixels", 5)
    np.random.seed(1)
    expected = add_pixel_noise(clean.train_x.numpy(), 10, 5.0)
    assert torch.equal(job.train_x, torch.from_numpy(expected))
    assert torch.equal(job.train_y, clean.train_y)
    assert torch.equal(job.test_x, clean.test_x) and torch.equal(job.test_y, clean.test_y)
    positions, _ = changed_positions(clean.train_x.numpy(), job.train_x.numpy())
    assert positions.max() == 78 and positions.min() > 0   # 10% of 784; ink at 255 may stay 255
    assert os.path.basename(job.paths.stats) == (
        "dataset_mnist_5k__no_dropout_False__seed_1__sorting_file_none__remove_n_0__keep_lowest_n_0"
        "__noise_percent_pixels_10__noise_std_pixels_5.0__stats_dict.pkl")
    assert job.record["flags"]["noise_percent_pixels"] == 10
    assert job.record["flags"]["model"] == "mnist_net"


def test_a_saved_mnist_run_is_rebuilt_with_its_noise(mnist_job, tmp_path):
    """The weights file of a run with pixel and label noise: score_examples.py's el2n/grand
    rebuild exactly the images and labels the run trained on (the generator state is saved)."""
    from forgetting.files.weights import write_weights
    from forgetting.scores.saved_run import DatasetCache, load_scoring_run

    job = mnist_job("--dataset", "permuted_mnist_5k", "--keep_lowest_n", -1, "--remove_n", 1000,
                    "--noise_percent_pixels", 30, "--noise_std_pixels", 40,
                    "--noise_percent_labels", 25, "--save_weights_at", 0)
    path = tmp_path / "w.pt"
    write_weights(path, 0, {k: v.cpu() for k, v in job.model.state_dict().items()},
                  job.run_description)
    run = load_scoring_run(path, torch.device("cpu"), DatasetCache(None))
    assert (run.ids == job.train_ids).all() and len(run.ids) == 3000
    assert torch.equal(run.images, job.train_x) and torch.equal(run.labels, job.train_y)
    assert job.run_description["pixel_noise"] == (30, 40.0)
    assert job.run_description["label_noise_percent"] == 25
