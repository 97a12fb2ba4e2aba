"""--save_weights_at on run_mnist.py: the files, what they hold, and resume safety (a resumed
run neither loses nor rewrites them). Real runs on 300 of the bundled digits."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # run_mnist.py subprocesses

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "dataset_mnist_5k__no_dropout_True__seed_1__sorting_file_none__remove_n_3700__keep_lowest_n_-1"
FLAGS = ["--dataset", "mnist_5k", "--no_dropout", "--remove_n", 3700, "--keep_lowest_n", -1,
         "--threads", 1, "--batch_size", 50]


def train(out, *args):
    res = subprocess.run([sys.executable, os.path.join(REPO, "run_mnist.py"), *map(str, FLAGS),
                          "--output_dir", str(out), *map(str, args)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def weights(out, epoch):
    return out / f"{NAME}__weights_epoch_{epoch}.pt"


def stamp(path):
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 3-epoch run saving its weights at 0, 1, 2 and 3."""
    out = tmp_path_factory.mktemp("weights_reference")
    train(out, "--epochs", 3, "--save_weights_at", 0, 1, 2, 3)
    return out


def test_the_files_hold_what_scoring_needs(reference):
    from forgetting.data.datasets import load_mnist_5k
    from models import MnistNet

    assert sorted(p.name for p in reference.glob("*__weights_epoch_*")) == [
        f"{NAME}__weights_epoch_{e}.pt" for e in range(4)]
    record = torch.load(weights(reference, 0), weights_only=True)
    assert record["epoch"] == 0 and record["model"] == "mnist_net"
    assert record["model_options"] == {"dropout": False} and record["dataset"] == "mnist_5k"
    np.random.seed(1)
    assert record["train_ids"].tolist() == np.random.permutation(4000)[:300].tolist()  # training order
    labels = load_mnist_5k().train_y
    assert torch.equal(record["train_labels"], labels[record["train_ids"]])
    assert record["permutation"] is None and record["pixel_noise"] == (0, 0.0)
    torch.manual_seed(1)
    initial = MnistNet(dropout=False).state_dict()  # epoch 0 = before the first step
    assert all(torch.equal(record["state_dict"][k], v) for k, v in initial.items())
    final = torch.load(weights(reference, 3), weights_only=True)["state_dict"]
    state = torch.load(reference / f"{NAME}__resume_state.pt", weights_only=True)
    assert all(torch.equal(final[k], v) for k, v in state["model"].items())
    with open(reference / f"{NAME}__stats_dict.pkl", "rb") as handle:
        stats = pickle.load(handle)
    assert sorted(k for k in stats if not isinstance(k, str)) == sorted(record["train_ids"].tolist())


def test_a_resumed_run_neither_loses_nor_rewrites_them(reference, tmp_path):
    train(tmp_path, "--epochs", 1, "--save_weights_at", 0, 1)
    before = {e: stamp(weights(tmp_path, e)) for e in (0, 1)}
    train(tmp_path, "--epochs", 3, "--resume", "--save_weights_at", 0, 1, 3)
    assert {e: stamp(weights(tmp_path, e)) for e in (0, 1)} == before
    assert not weights(tmp_path, 2).exists()
    for e in (0, 1, 3):
        assert weights(tmp_path, e).read_bytes() == weights(reference, e).read_bytes()


def test_resuming_a_run_saved_without_the_flag(reference, tmp_path):
    """Its last finished epoch comes from the resume state; an epoch already behind is named."""
    train(tmp_path, "--epochs", 1)
    said = train(tmp_path, "--epochs", 3, "--resume", "--save_weights_at", 0, 1, 2)
    assert "cannot save the weights of epoch 0" in said
    assert not weights(tmp_path, 0).exists()
    for e in (1, 2):
        assert weights(tmp_path, e).read_bytes() == weights(reference, e).read_bytes()


def test_a_fresh_run_moves_an_earlier_runs_weights_aside(tmp_path):
    train(tmp_path, "--epochs", 1, "--save_weights_at", 0, 1)
    said = train(tmp_path, "--epochs", 1)
    assert "moved the earlier run's 7 files to" in said
    assert not list(tmp_path.glob("*__weights_epoch_*"))  # they describe the run replaced
    assert len(list(tmp_path.glob("replaced/*/*/*__weights_epoch_*"))) == 2


def test_an_epoch_outside_the_run_is_refused(tmp_path):
    res = subprocess.run([sys.executable, os.path.join(REPO, "run_mnist.py"), *map(str, FLAGS),
                          "--output_dir", str(tmp_path / "out"), "--epochs", "2", "--save_weights_at", "3"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: --save_weights_at 3 is not an epoch of this run; give values from 0 (before the "
        "first step) to 2, its last epoch"]
    assert not (tmp_path / "out").exists()


def test_cifar_weights_carry_the_noisy_labels_and_score_with_them(tiny_cifar, tmp_path, capsys):
    """run_cifar.py with label noise: the file holds the labels trained on, and el2n uses them."""
    import torch.nn.functional as F

    import score_examples
    from cifar_fixtures import call_run_cifar, patch_checksums
    from helpers import CIFAR_FNAME, CIFAR_RUN
    from models import ResNet18

    out = tmp_path / "out"
    code, stdout, stderr = call_run_cifar(tiny_cifar, [*CIFAR_RUN, "--epochs", 1, "--save_weights_at", 1,
                                                       "--output_dir", out])
    assert code == 0, stdout + stderr
    record = torch.load(out / f"{CIFAR_FNAME}__weights_epoch_1.pt", weights_only=True)
    assert record["model"] == "resnet18" and record["model_options"] == {"num_classes": 10}
    assert record["label_noise_percent"] == 20
    true = torch.as_tensor(tiny_cifar.arrays["train_y"])[record["train_ids"]]
    flipped = {int(line.split()[0]): int(line.split()[2])
               for line in (out / f"{CIFAR_FNAME}_changed_labels.txt").read_text().splitlines()}
    assert len(flipped) == 20
    expected = [flipped.get(i, int(y)) for i, y in zip(record["train_ids"].tolist(), true.tolist())]
    assert record["train_labels"].tolist() == expected

    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_checksums(monkeypatch, tiny_cifar.checksums)
        with _no_exit():
            score_examples.main(["--score", "el2n", "--weights_epoch", "1", "--input_dir", str(out),
                                 "--data_dir", tiny_cifar.data_dir, "--device", "cpu",
                                 "--output_dir", str(tmp_path), "--output_name", "el2n"])
    with open(tmp_path / "el2n.pkl", "rb") as handle:
        written = pickle.load(handle)
    model = ResNet18(10)
    model.load_state_dict(record["state_dict"])
    model.eval()
    mean = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1) / 255
    std = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1) / 255
    images = torch.as_tensor(tiny_cifar.arrays["train_x"])  # (N, 3, 32, 32)
    loop = {}
    with torch.no_grad():
        for i, y in zip(record["train_ids"].tolist(), expected):
            probs = model((images[i:i + 1].float() / 255 - mean) / std).softmax(dim=1)[0]
            loop[i] = float((probs - F.one_hot(torch.tensor(y), 10).float()).norm())
    got = dict(zip(written["indices"].tolist(), written["el2n"].tolist()))
    assert got.keys() == loop.keys()
    np.testing.assert_allclose([got[i] for i in loop], list(loop.values()), rtol=1e-4, atol=1e-6)


class _no_exit:
    """score_examples.main returns normally on success; a SystemExit here is a failure."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is SystemExit:
            raise AssertionError(f"score_examples exited with {value.code}")
        return False
