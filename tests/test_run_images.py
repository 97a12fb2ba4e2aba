"""run_images.py: your data through the training path of run_mnist.py and run_cifar.py.

- the bundled digits as a .npz train to run_mnist.py's stats pickle, byte for byte; as a
  PNG folder they decode to the same pixels and labels, id by id through the saved listing;
- feature vectors (scikit-learn's bundled breast-cancer data) train an MLP, are scored by
  score_examples.py el2n from the weights file alone, sorted by
  order_examples_by_forgetting.py, and a removal run trains on the kept examples;
- the decoded-image cache is read by a second run and invalidated by a touched file;
- bad input is one error line, exit status 2.

The training runs call the scripts' ``main`` in this process (no interpreter start-up).
"""
import csv
import os

import numpy as np
import pytest
import torch

import order_examples_by_forgetting
import run_images
import run_mnist
import score_examples
from forgetting.data.datasets import load_mnist_5k
from forgetting.data.user_data import load_user_data, normalisation
from models import MLP
from helpers import assert_one_line_error, call_main, load_pickle, snapshot

EXACT = ["--mean", "0.1307", "--std", "0.3081"]


@pytest.fixture(scope="module")
def digits():
    return load_mnist_5k()


def save_npz(path, x_train, y_train, x_test, y_test):
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)


def write_pngs(root, images, labels, names):
    """One PNG per image (H x W or H x W x C uint8) at root/<label>/<name>.png."""
    from PIL import Image

    for image, label, name in zip(images, labels, names):
        folder = os.path.join(root, str(label))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{name}.png"))


def read_listing(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def only(directory, ending):
    found = [name for name in os.listdir(directory) if name.endswith(ending)]
    assert len(found) == 1, found
    return os.path.join(directory, found[0])


def run(main, argv, training=True):
    extra = ["--threads", "1", "--progress_every", "0"] if training else []
    code, out, err = call_main(main, [*argv, *extra])
    assert code == 0, (out, err)
    return out


@pytest.mark.slow
def test_digits_npz_train_as_run_mnist_byte_for_byte(digits, tmp_path):
    """One training path: the digits exported as Keras' mnist.npz layout (x_train N x 28 x 28
    in id order) give run_mnist.py's stats pickle, byte for byte."""
    npz = save_npz(tmp_path / "mnist_5k.npz", digits.train_x[:, 0].numpy(), digits.train_y.numpy(),
                   digits.test_x[:, 0].numpy(), digits.test_y.numpy())
    run(run_mnist.main, ["--dataset", "mnist_5k", "--no_dropout", "--epochs", "2",
                         "--output_dir", tmp_path / "mnist"])
    out = run(run_images.main, ["--npz", npz, "--model", "mnist_net", "--recipe", "mnist",
                                "--no_dropout", *EXACT, "--epochs", "2",
                                "--output_dir", tmp_path / "images"])
    name = ("dataset_mnist_5k__model_mnist_net__seed_1__sorting_file_none__remove_n_0__"
            "keep_lowest_n_0__recipe_mnist__no_dropout_True")
    assert f"writing {name}__stats_dict.pkl" in out
    with open(only(tmp_path / "mnist", "__stats_dict.pkl"), "rb") as expected, \
            open(tmp_path / "images" / f"{name}__stats_dict.pkl", "rb") as actual:
        assert actual.read() == expected.read()
    listing = read_listing(tmp_path / "images" / f"{name}__examples.tsv")
    assert [row["path"] for row in listing[:2]] == ["x_train[0]", "x_train[1]"]
    assert [int(row["label"]) for row in listing] == digits.train_y.tolist()


def test_digits_as_png_folder_decode_to_the_same_pixels_and_labels(digits, tmp_path):
    """A PNG folder of (some of) the digits: through the listing run_images.py saves, each id
    is the file of the digit it names, with its pixels and label."""
    ids = np.arange(0, 4000, 25)                      # 160 training digits, 100 test digits
    root = tmp_path / "digits"
    write_pngs(root / "train", digits.train_x[ids, 0].numpy(), digits.train_y[ids].tolist(),
               [f"digit{i}" for i in ids])
    write_pngs(root / "test", digits.test_x[:100, 0].numpy(), digits.test_y[:100].tolist(),
               [f"test{i}" for i in range(100)])
    data = load_user_data(str(root), None, say=lambda msg: None)
    assert data.shape == (1, 28, 28) and data.class_names == [str(c) for c in range(10)]
    (tmp_path / "listing.tsv").write_text(data.examples_tsv())
    listing = read_listing(tmp_path / "listing.tsv")
    assert [int(row["id"]) for row in listing] == list(range(len(ids)))
    for row in listing:
        original = int(row["path"].rsplit("digit", 1)[1][:-len(".png")])
        new_id = int(row["id"])
        assert row["path"] == f"train/{row['class']}/digit{original}.png"
        assert int(row["label"]) == digits.train_y[original] == data.train_y[new_id]
        assert np.array_equal(data.train_x[new_id].numpy(), digits.train_x[original].numpy())
    assert sorted(data.test_y.tolist()) == sorted(digits.test_y[:100].tolist())


@pytest.mark.slow
def test_feature_vectors_train_sort_and_remove(tmp_path):
    """scikit-learn's bundled breast-cancer vectors: train an MLP, sort by forgetting, then
    a removal run trains on the kept examples only."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    order = np.random.RandomState(0).permutation(len(bunch.target))
    x, y = bunch.data[order], bunch.target[order]
    npz = save_npz(tmp_path / "cancer.npz", x[:400], y[:400], x[400:], y[400:])
    out_dir = tmp_path / "runs"
    common = ["--npz", npz, "--model", "mlp", "--epochs", "3", "--output_dir", out_dir]
    run(run_images.main, [*common, "--save_weights_at", "3"])
    stats = load_pickle(only(out_dir, "__stats_dict.pkl"))
    assert sorted(k for k in stats if k not in ("train", "test")) == list(range(400))
    # score_examples.py el2n rebuilds the model and the vectors from the weights file alone
    run(score_examples.main, ["--score", "el2n", "--weights_epoch", "3", "--input_dir", out_dir,
                              "--output_dir", tmp_path / "scores", "--output_name", "el2n",
                              "--device", "cpu"], training=False)
    scored = load_pickle(tmp_path / "scores" / "el2n.pkl")
    weights = torch.load(only(out_dir, "__weights_epoch_3.pt"), weights_only=True)
    model = MLP(30, 2)
    model.load_state_dict(weights["state_dict"])
    inputs = (x[:400] - x[:400].mean(0)) / x[:400].std(0)      # the training split's own
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.tensor(inputs, dtype=torch.float32)), 1).numpy()
    expected = np.linalg.norm(probabilities - np.eye(2)[y[:400]], axis=1)
    assert np.allclose(np.asarray(scored["el2n"]), expected[np.asarray(scored["indices"])],
                       atol=1e-5)
    run(order_examples_by_forgetting.main,
        ["--input_dir", out_dir, "--output_dir", tmp_path / "sorted", "--output_name", "cancer",
         "--epochs", "3"], training=False)
    sorted_ids = load_pickle(tmp_path / "sorted" / "cancer.pkl")["indices"]
    run(run_images.main, [*common, "--sorting_file", tmp_path / "sorted" / "cancer.pkl",
                          "--remove_n", "150", "--keep_lowest_n", "0"])
    name = ("dataset_cancer__model_mlp__seed_1__sorting_file_cancer__remove_n_150__"
            "keep_lowest_n_0__stats_dict.pkl")
    kept = load_pickle(out_dir / name)
    assert sorted(k for k in kept if k not in ("train", "test")) == sorted(
        int(i) for i in sorted_ids[150:])


def test_cache_is_read_then_invalidated_by_a_touched_file(tmp_path):
    """The second load reads the cache and says so; a touched file is decoded again."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)
    write_pngs(tmp_path / "pets", images, ["cat", "dog"] * 6, [f"p{i}" for i in range(12)])
    said = []
    first = load_user_data(str(tmp_path / "pets"), None, test_fraction=0.25, say=said.append)
    second = load_user_data(str(tmp_path / "pets"), None, test_fraction=0.25, say=said.append)
    assert said[0].startswith("decoded 12 images; cached them in ")
    assert said[1].startswith("read 12 decoded images from the cache ")
    assert np.array_equal(first.train_x.numpy(), second.train_x.numpy())
    assert (len(first.train_y), len(first.test_y)) == (8, 4)
    touched = tmp_path / "pets" / "dog" / "p1.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    load_user_data(str(tmp_path / "pets"), None, test_fraction=0.25, say=said.append)
    assert said[2].startswith("decoded 12 images; cached them in ")
    assert len(os.listdir(tmp_path / "pets" / ".forgetting_cache")) == 1  # the old one is gone


def test_mixed_grayscale_and_colour_files_become_rgb(tmp_path):
    """One grayscale file among colour ones: every image is RGB, the gray one as Pillow's own
    conversion gives it; --image_size resizes files of different sizes."""
    from PIL import Image

    rng = np.random.RandomState(1)
    gray = rng.randint(0, 256, size=(5, 5), dtype=np.uint8)
    write_pngs(tmp_path / "mixed", [gray, rng.randint(0, 256, (5, 5, 3), dtype=np.uint8),
                                    rng.randint(0, 256, (9, 7, 3), dtype=np.uint8),
                                    rng.randint(0, 256, (5, 5, 3), dtype=np.uint8)],
               ["a", "a", "b", "b"], ["g", "c", "d", "e"])
    data = load_user_data(str(tmp_path / "mixed"), None, image_size=5, test_fraction=0.5,
                          split_seed=1, say=lambda msg: None)  # seed 1: a/g.png trains
    assert data.shape == (3, 5, 5)
    everything = dict(zip(data.paths, data.train_x))
    expected = np.asarray(Image.fromarray(gray).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(everything["a/g.png"].numpy(), expected)
    assert len(data.train_y) == 2 and len(data.test_y) == 2


@pytest.mark.slow
def test_resume_refuses_a_folder_whose_files_changed(tmp_path):
    """--resume continues a run on the same files; after a file was added, the ids would
    name other examples: refused in one line, the run's files untouched."""
    rng = np.random.RandomState(4)
    write_pngs(tmp_path / "pets", rng.randint(0, 256, (12, 8, 8, 3), dtype=np.uint8),
               ["cat", "dog"] * 6, [f"p{i:02d}" for i in range(12)])
    argv = ["--data_dir", tmp_path / "pets", "--model", "mlp", "--output_dir", tmp_path / "out"]
    run(run_images.main, [*argv, "--epochs", "1"])
    assert "epoch 2/2" in run(run_images.main, [*argv, "--epochs", "2", "--resume"])
    write_pngs(tmp_path / "pets", rng.randint(0, 256, (1, 8, 8, 3), dtype=np.uint8), ["cat"],
               ["p00a"])
    before = snapshot(tmp_path / "out")
    code, out, err = call_main(run_images.main, [*argv, "--epochs", "3", "--resume"])
    assert_one_line_error(code, err, "list other examples", "without --resume", out=out)
    assert snapshot(tmp_path / "out") == before


def test_normalisation_is_the_training_splits_own(tmp_path):
    """Per channel in pixel/255 (from histograms) against numpy over the float pixels; per
    feature for vectors, a constant feature divided by 1; --mean/--std as given."""
    rng = np.random.RandomState(2)
    images = rng.randint(0, 256, size=(30, 7, 6, 3), dtype=np.uint8)
    npz = save_npz(tmp_path / "imgs.npz", images, np.arange(30) % 3, images[:3], np.arange(3))
    mean, std = normalisation(load_user_data(None, npz))
    pixels = images.astype(np.float64) / 255
    assert np.allclose(mean, pixels.mean((0, 1, 2)), atol=1e-12)
    assert np.allclose(std, pixels.std((0, 1, 2)), atol=1e-12)
    vectors = np.c_[rng.normal(5, 2, size=(40, 2)), np.full(40, 3.0)]
    npz = save_npz(tmp_path / "vecs.npz", vectors, np.arange(40) % 2, vectors[:2], np.arange(2))
    data = load_user_data(None, npz)
    mean, std = normalisation(data)
    assert np.allclose(mean, vectors.mean(0), atol=1e-6)
    assert np.allclose(std, [*vectors[:, :2].std(0), 1.0], atol=1e-6)
    assert normalisation(data, [0.5], [2.0, 3.0, 4.0]) == ((0.5, 0.5, 0.5), (2.0, 3.0, 4.0))


def bad_inputs(tmp_path):
    """(name, argv, words the error must name) for the refusals."""
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "no_test.npz", x_train=np.zeros((4, 3), np.float32),
             y_train=np.zeros(4, np.int64))
    write_pngs(tmp_path / "empty", rng.randint(0, 256, (2, 6, 6), dtype=np.uint8), ["a", "a"],
               ["x", "y"])
    os.makedirs(tmp_path / "empty" / "b")
    write_pngs(tmp_path / "sizes", [np.zeros((6, 6), np.uint8)] * 2, ["a", "a"], ["x", "y"])
    write_pngs(tmp_path / "sizes", [np.zeros((7, 5), np.uint8)] * 2, ["b", "b"], ["x", "y"])
    save_npz(tmp_path / "vectors.npz", np.zeros((4, 3), np.float32), np.arange(4) % 2,
             np.zeros((2, 3), np.float32), np.arange(2))
    return [
        ("missing arrays", ["--npz", tmp_path / "no_test.npz"], ["x_test, y_test"]),
        ("empty class folder", ["--data_dir", tmp_path / "empty"], ["empty/b", "no images"]),
        ("different sizes", ["--data_dir", tmp_path / "sizes"],
         ["6x6", "5x7", "--image_size"]),
        ("unknown model", ["--npz", tmp_path / "vectors.npz", "--model", "resnet7"],
         ["--model resnet7"]),
        ("unknown torchvision model", ["--npz", tmp_path / "vectors.npz", "--model",
                                       "torchvision:nonet"], ["nonet"]),
        ("--no_dropout without mnist_net", ["--npz", tmp_path / "vectors.npz", "--model", "mlp",
                                             "--no_dropout"], ["--no_dropout", "mlp"]),
        ("shape the model cannot take", ["--npz", tmp_path / "vectors.npz", "--model",
                                         "mnist_net"], ["1 x 28 x 28"]),
    ]


def test_bad_input_is_one_line_and_touches_nothing(tmp_path):
    for name, argv, needles in bad_inputs(tmp_path):
        before = snapshot(tmp_path)
        code, out, err = call_main(run_images.main, [*argv, "--output_dir", tmp_path / "out"])
        assert_one_line_error(code, err, *needles)
        assert snapshot(tmp_path) == before, name
