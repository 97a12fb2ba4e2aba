"""Every tool after training works on runs of run_images.py (your own image folder).

300 bundled digits exported as a PNG folder (``train/<label>/digit_<original id>.png``, so a
file's name says which digit it is), two seeds of 3 epochs with their weights saved, then
what a user runs next: the ordering over both seeds, every score of score_examples.py (el2n
and grand rebuild the data from the weights file's description), a removal run and
collect_results.py, and every figure of plot_figures.py, the gallery showing the user's own
images through the saved listing. The scripts' ``main`` run in this process.
"""
import csv
import os

import numpy as np
import pytest

import collect_results
import order_examples_by_forgetting
import plot_figures
import run_images
import score_examples
from forgetting.analysis import gallery
from forgetting.analysis.measured import parse_measured
from forgetting.data.datasets import load_mnist_5k
from forgetting.data.images import listed_example_images
from forgetting.scores.catalog import SCORES
from helpers import assert_one_line_error, call_main, load_pickle, snapshot

TRAIN_IDS = np.arange(300)               # a fixed shuffle of the digits: every class
TEST_IDS = np.arange(0, 1000, 10)        # the test digits are sorted by label: every 10th
NAME = "dataset_digits__model_mlp__seed_{seed}__sorting_file_{sorting}__remove_n_{n}__" \
       "keep_lowest_n_{keep}__recipe_mnist"


def write_pngs(root, images, labels, names):
    from PIL import Image

    for image, label, name in zip(images, labels, names):
        os.makedirs(root / str(label), exist_ok=True)
        Image.fromarray(image).save(root / str(label) / name)


def ok(main, argv):
    code, out, err = call_main(main, argv)
    assert code == 0, (out, err)
    return out


def train(folder, out_dir, *flags):
    return ok(run_images.main, ["--data_dir", folder, "--model", "mlp", "--recipe", "mnist",
                                "--epochs", "3", "--output_dir", out_dir, "--threads", "1",
                                "--progress_every", "0", "--no_cuda", *flags])


def read_listing(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def original_id(path):
    """The bundled digit a listing path names (``train/<label>/digit_<id>.png``)."""
    return int(path.rsplit("digit_", 1)[1][:-len(".png")])


def gallery_oracle(ids, counts, k):
    """Plain loops: the most forgotten (count > 0) by count descending then id ascending, and
    the unforgettable by ascending id."""
    forgotten = [i for _, i in sorted((-c, i) for i, c in zip(ids, counts) if c > 0)][:k]
    return forgotten, sorted(i for i, c in zip(ids, counts) if c == 0)[:k]


def measured(argv):
    out = ok(plot_figures.main, argv)
    assert out.splitlines()[-1] == f"wrote {argv[argv.index('--output') + 1]}"
    return parse_measured(out)


@pytest.fixture(scope="module")
def digits():
    return load_mnist_5k()


@pytest.mark.slow
def test_every_tool_after_training_on_an_image_folder(digits, tmp_path):
    folder, runs, sorted_dir, figs = (tmp_path / "digits", tmp_path / "runs",
                                      tmp_path / "sorted", tmp_path / "figs")
    write_pngs(folder / "train", digits.train_x[TRAIN_IDS, 0].numpy(),
               digits.train_y[TRAIN_IDS].tolist(), [f"digit_{i:04d}.png" for i in TRAIN_IDS])
    write_pngs(folder / "test", digits.test_x[TEST_IDS, 0].numpy(),
               digits.test_y[TEST_IDS].tolist(), [f"test_{i:04d}.png" for i in TEST_IDS])
    for seed in (1, 2):
        train(folder, runs, "--seed", seed, "--save_weights_at", "3")
    full = NAME.format(seed=1, sorting="none", n=0, keep=0)
    examples = runs / f"{full}__examples.tsv"
    listing = read_listing(examples)
    listed_ids = [int(row["id"]) for row in listing]
    assert listed_ids == list(range(300))

    # the ordering, both seeds summed: the listing's ids, each once
    out = ok(order_examples_by_forgetting.main,
             ["--input_dir", runs, "--input_fname_args", "dataset", "digits", "recipe", "mnist",
              "--output_dir", sorted_dir, "--output_name", "digits"])
    assert out.count("including file: dataset_digits__") == 2
    ordering = load_pickle(sorted_dir / "digits.pkl")
    ids, counts = ordering["indices"], ordering["forgetting counts"]
    assert sorted(ids.tolist()) == listed_ids

    # every score, el2n and grand from the saved weights and the folder named in them
    for name, score in SCORES.items():
        ok(score_examples.main, ["--score", name, "--input_dir", runs, "--weights_epoch", "3",
                                 "--device", "cpu", "--output_dir", tmp_path / "scores",
                                 "--output_name", name])
        scored = load_pickle(tmp_path / "scores" / f"{name}.pkl")
        assert sorted(scored["indices"].tolist()) == listed_ids, name
        assert np.isfinite(np.asarray(scored[score.key], dtype=float)).all(), name

    # removal runs (the easiest 100 removed; 100 at random), the table, the removal figure
    for keep in ("0", "-1"):
        train(folder, runs, "--input_dir", sorted_dir, "--sorting_file", "digits",
              "--remove_n", "100", "--keep_lowest_n", keep)
    kept = load_pickle(runs / (NAME.format(seed=1, sorting="digits", n=100, keep=0)
                               + "__stats_dict.pkl"))
    assert sorted(k for k in kept if k not in ("train", "test")) == sorted(ids[100:].tolist())
    ok(collect_results.main, ["--input_dir", runs, "--output", tmp_path / "results.csv"])
    with open(tmp_path / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted((r["seed"], r["sorting_file"], r["keep_lowest_n"], r["n_train"], r["finished"])
                  for r in table) == [("1", "digits", "-1", "200", "True"),
                                      ("1", "digits", "0", "200", "True"),
                                      ("1", "none", "0", "300", "True"),
                                      ("2", "none", "0", "300", "True")]
    assert {(r["dataset"], r["model"], r["recipe"]) for r in table} == {("digits", "mlp", "mnist")}
    found = measured(["removal", "--results", tmp_path / "results.csv", "--output",
                      figs / "removal.png"])
    assert set(found) == {"test_acc[selected@33]", "test_acc[random@33]", "removable_percent"}

    # the figures over the two full runs
    found = measured(["histogram", "--sorting_file", sorted_dir / "digits.pkl", "--output",
                      figs / "histogram.png"])
    assert found["unforgettable_percent[digits]"] == pytest.approx(
        100 * np.mean(counts == 0), abs=0.01)
    full_runs = ["--input_dir", runs, "--input_fname_args", "dataset", "digits", "remove_n", "0"]
    for figure, keys in (("datamap", set()), ("first_learning", {"spearman_first_learning"}),
                         ("margin", {"spearman_margin"}),
                         ("seeds", {"pearson_pairwise", "spearman_pairwise"}),
                         ("epoch_budget", {f"{k}@{n}" for n in (1, 2) for k in
                                           ("spearman", "pearson", "precision", "recall")})):
        extra = ["--budgets", "1", "2"] if figure == "epoch_budget" else []
        assert set(measured([figure, *full_runs, *extra, "--output", figs / f"{figure}.png"])) \
            == keys, figure

    # the gallery: the chosen ids, shown as the files the listing names
    shown_figures, draw = [], gallery.gallery_figure

    def keep(*args, **kwargs):
        shown_figures.append(draw(*args, **kwargs))
        return shown_figures[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gallery, "gallery_figure", keep)
        measured(["gallery", "--sorting_file", sorted_dir / "digits.pkl", "--examples", examples,
                  "--k", "4", "--output", figs / "gallery.png"])
    forgotten, zero = gallery_oracle(ids.tolist(), counts.tolist(), 4)
    count_of = dict(zip(ids.tolist(), counts.tolist()))
    axes = [ax for ax in shown_figures[0].axes if ax.images]
    assert len(axes) == len(forgotten) + len(zero) == 8
    for ax, i in zip(axes, forgotten + zero):
        row = listing[i]
        original = original_id(row["path"])
        assert np.array_equal(ax.images[0].get_array(), digits.train_x[original, 0].numpy())
        assert ax.get_title() == f"{row['class']}\n{count_of[i]} events\ndigit_{original:04d}.png"
    measured(["gallery", "--sorting_file", sorted_dir / "digits.pkl", "--examples", examples,
              "--k", "2", "--per_class", "--output", figs / "per_class.png"])
    # ... and the public function against the listing read plainly
    chosen = [int(i) for i in ids[[0, 7, 299, 150]]]
    found = listed_example_images(examples, chosen)
    assert found.paths == [listing[i]["path"] for i in chosen]
    assert found.labels.tolist() == [int(listing[i]["label"]) for i in chosen]
    assert np.array_equal(found.images,
                          digits.train_x[[original_id(listing[i]["path"]) for i in chosen], 0])
    assert (found.class_names, found.dataset) == ([str(c) for c in range(10)], "digits")
    assert sorted(os.listdir(figs)) == sorted(
        f"{f}.png" for f in ("removal", "histogram", "datamap", "first_learning", "margin",
                             "seeds", "epoch_budget", "gallery", "per_class"))

    # a file added since the runs: their ids may name other images now, refused in one line
    write_pngs(folder / "train", digits.train_x[[3999], 0].numpy(), [0], ["digit_0000a.png"])
    before = snapshot(figs)
    code, out, err = call_main(plot_figures.main, [
        "gallery", "--sorting_file", sorted_dir / "digits.pkl", "--examples", examples,
        "--output", figs / "changed.png"])
    assert_one_line_error(code, err, "changed since the run", str(folder), out=out)
    assert snapshot(figs) == before


@pytest.mark.slow
def test_gallery_refuses_feature_vectors_and_what_is_no_listing(tmp_path):
    """A run on feature vectors has no images: the gallery says so in one line; so for a file
    that is not a run's examples listing, and for one whose run record is gone."""
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "vectors.npz", x_train=rng.normal(size=(40, 3)), y_train=np.arange(40) % 2,
             x_test=rng.normal(size=(10, 3)), y_test=np.arange(10) % 2)
    ok(run_images.main, ["--npz", tmp_path / "vectors.npz", "--model", "mlp", "--epochs", "1",
                         "--output_dir", tmp_path / "runs", "--threads", "1",
                         "--progress_every", "0", "--no_cuda"])
    ok(order_examples_by_forgetting.main, ["--input_dir", tmp_path / "runs", "--output_dir",
                                           tmp_path, "--output_name", "sorted", "--epochs", "1"])
    name = "dataset_vectors__model_mlp__seed_1__sorting_file_none__remove_n_0__keep_lowest_n_0"
    listing = tmp_path / "runs" / f"{name}__examples.tsv"
    copy = tmp_path / f"{name}__examples.tsv"         # no run record beside it
    copy.write_bytes(listing.read_bytes())
    for examples, needles in ((listing, ["feature vectors", "no images"]),
                              (tmp_path / "sorted.pkl", ["__examples.tsv", "run_images.py"]),
                              (copy, ["__run.json", "beside the listing"])):
        code, out, err = call_main(plot_figures.main, [
            "gallery", "--sorting_file", tmp_path / "sorted.pkl", "--examples", examples,
            "--output", tmp_path / "g.png"])
        assert_one_line_error(code, err, *needles, out=out)
    assert not (tmp_path / "g.png").exists()
