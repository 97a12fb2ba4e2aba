"""plot_figures.py histogram / removal / window / noise / gallery: the measured lines and the
drawn points equal plain loops over the synthetic inputs (sorting files, changed-labels files
and results tables written in their real formats), and bad input is one line, exit 2, no file."""
import os
import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr

import plot_figures
from forgetting.analysis import counts as count_stats
from forgetting.analysis.measured import parse_measured
from forgetting.analysis.results import collect
from forgetting.data.noise import changed_labels_text
from helpers import assert_one_line_error, call_main
from run_files import mnist_fname, write_run

SEEDS = (1, 2, 3)
# Two made-up data sets of different sizes: removal sweeps at 0/25/50/75 % of each.
SIZES = {"mnist": 40, "permuted_mnist": 60}


def accuracy(dataset, seed, remove_n, keep):
    """A made-up final accuracy that differs by every flag; selected removal costs less than
    random removal, and a window costs less the later it starts."""
    base = 90.0 if dataset == "mnist" else 80.0
    if keep < 0:
        return base - 0.3 * remove_n + 0.2 * seed
    return base - 0.04 * remove_n - 0.05 * keep + 0.2 * seed + 0.01 * remove_n * (keep == 0)


def write_sorting_file(path, ids, counts):
    with open(path, "wb") as handle:
        pickle.dump({"indices": np.asarray(ids, np.int64),
                     "forgetting counts": np.asarray(counts, np.int64)}, handle)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """{dataset: results CSV} (collect_results.py's format) of two removal sweeps: full-set
    runs, selected and random removal of 0/25/50/75 %, windows of N/4 at starts 0/25/50/75 %
    (mnist only), and an unfinished run that must not count."""
    out = {}
    for dataset, n in SIZES.items():
        runs = tmp_path_factory.mktemp(dataset)
        quarter = n // 4
        for seed in SEEDS:
            write_run(runs, mnist_fname(dataset=dataset, seed=seed),
                      [50.0, accuracy(dataset, seed, 0, 0)], n_train=n)
            for remove_n in (0, quarter, 2 * quarter, 3 * quarter):
                for keep in (0, -1):
                    write_run(runs, mnist_fname(dataset=dataset, seed=seed, sorting_file="sorted",
                                                remove_n=remove_n, keep_lowest_n=keep),
                              [50.0, accuracy(dataset, seed, remove_n, keep)], n_train=n - remove_n)
            if dataset == "mnist":
                for keep in (quarter, 2 * quarter, 3 * quarter):
                    write_run(runs, mnist_fname(dataset=dataset, seed=seed, sorting_file="sorted",
                                                remove_n=quarter, keep_lowest_n=keep),
                              [50.0, accuracy(dataset, seed, quarter, keep)], n_train=n - quarter)
        write_run(runs, mnist_fname(dataset=dataset, seed=4, sorting_file="sorted", remove_n=quarter),
                  [1.0], n_train=n - quarter)
        csv = runs / "results.csv"
        csv.write_text(collect(str(runs), epochs=2).to_csv(index=False))  # as collect_results.py
        out[dataset] = csv
    return out


@pytest.fixture(scope="module")
def sorting_dir(tmp_path_factory):
    """Sorting files: ``sorted.pkl`` (mnist's 40 examples), ``noisy``/``clean`` (200 examples,
    ids shuffled), and five pixel-noise series."""
    out = tmp_path_factory.mktemp("sorting")
    rng = np.random.default_rng(5)
    write_sorting_file(out / "sorted.pkl", rng.permutation(40),
                       np.sort(np.minimum(rng.geometric(0.4, 40) - 1, 9)))
    for name in ("noisy", "clean"):
        counts = np.sort(rng.integers(0, 12, 200) * rng.integers(0, 2, 200))
        write_sorting_file(out / f"{name}.pkl", rng.permutation(200), counts)
    for std in range(5):
        counts = np.sort(np.minimum(rng.geometric(0.5 - 0.08 * std, 300) - 1, 40))
        write_sorting_file(out / f"pixels_std_{std}.pkl", np.arange(300), counts)
    return out


def loaded(path):
    with open(path, "rb") as handle:
        content = pickle.load(handle)
    return content["indices"], content["forgetting counts"]


def measured_of(argv):
    """(measured values, stdout) of ``plot_figures.main(argv)``, which must succeed."""
    code, out, err = call_main(plot_figures.main, argv)
    assert code == 0, err
    assert out.splitlines()[-1].startswith("wrote ")
    assert all(line.startswith("measured: ") for line in out.splitlines()[:-1]), out
    return parse_measured(out), out


# ----------------------------------------------------------------------------- histogram

def test_histogram_prints_each_series_percent_and_mean_and_draws_five_as_lines(sorting_dir, tmp_path):
    paths = [sorting_dir / f"pixels_std_{std}.pkl" for std in range(5)]
    labels = [f"std_{std}" for std in range(5)]
    found, _ = measured_of(["histogram", "--sorting_file", *paths, "--labels", *labels,
                            "--output", tmp_path / "pixels.png"])
    expected = {}
    for label, path in zip(labels, paths):
        counts = loaded(path)[1].tolist()
        zero = 0
        for c in counts:
            zero += c == 0
        expected[f"unforgettable_percent[{label}]"] = float(f"{100 * zero / len(counts):.4g}")
        expected[f"mean_count[{label}]"] = float(f"{sum(counts) / len(counts):.4g}")
    assert found == expected
    fig = plot_figures.figures.histogram_figure(
        [(label, loaded(path)[1]) for label, path in zip(labels, paths)], max_events=30)
    ax = fig.axes[0]
    assert not ax.patches and len(ax.get_lines()) == 5    # five series: lines, not thin bars
    for line, path in zip(ax.get_lines(), paths):
        counts = loaded(path)[1]
        assert list(line.get_ydata()) == pytest.approx(
            [np.mean(counts == k) for k in range(30)] + [np.mean(counts >= 30)])


def test_histogram_labels_default_to_the_file_names(sorting_dir, tmp_path):
    found, _ = measured_of(["histogram", "--sorting_file", sorting_dir / "sorted.pkl",
                            "--output", tmp_path / "h.png"])
    assert set(found) == {"unforgettable_percent[sorted]", "mean_count[sorted]"}


# ----------------------------------------------------------------------------- removal

def removal_oracle(dataset, suffix=""):
    """The measured values of one table, from plain loops over the accuracies written."""
    n = SIZES[dataset]
    full = [accuracy(dataset, s, 0, k) for s in SEEDS for k in (0, 0, -1)]
    full_mean = sum(full) / len(full)
    expected, removable = {}, 0.0
    for remove_n in (0, n // 4, n // 2, 3 * n // 4):
        p = round(100 * remove_n / n)
        for which, keep in (("selected", 0), ("random", -1)):
            accs = [accuracy(dataset, s, remove_n, keep) for s in SEEDS]
            mean = sum(accs) / len(accs)
            expected[f"test_acc[{which}@{p}]{suffix}"] = float(f"{mean:.4g}")
            if which == "selected" and mean >= full_mean - 0.5:
                removable = max(removable, 100 * remove_n / n)
    expected[f"removable_percent{suffix}"] = removable
    return expected, full_mean


def test_removal_of_one_table_prints_mean_accuracies_and_the_removable_percent(tables, tmp_path):
    found, _ = measured_of(["removal", "--results", tables["mnist"], "--output", tmp_path / "r.png"])
    expected, _ = removal_oracle("mnist")
    assert found == expected
    assert 0 < found["removable_percent"] < 75        # the rule cuts somewhere inside


def test_removal_overlays_tables_as_error_increase_over_each_full_set(tables, tmp_path):
    argv = ["removal", "--results", tables["mnist"], tables["permuted_mnist"],
            "--output", tmp_path / "fig6.png"]
    found, _ = measured_of(argv)
    for dataset in SIZES:
        assert {k: v for k, v in found.items() if k.endswith(f"[{dataset}]")} == \
            removal_oracle(dataset, f"[{dataset}]")[0]
    found, _ = measured_of(argv[:4] + ["--labels", "digits", "permuted"] + argv[4:])
    assert "removable_percent[digits]" in found and "removable_percent[permuted]" in found

    from forgetting.analysis import figures
    fig = figures.removal_figure([(d, collect(os.path.dirname(tables[d]), epochs=2)) for d in SIZES])
    ax = fig.axes[0]
    assert ax.get_ylabel() == "test error increase over the full set (points)"
    for dataset, n in SIZES.items():
        _, full_mean = removal_oracle(dataset)
        for which, keep in (("selected", 0), ("random", -1)):
            line, = [l for l in ax.get_lines() if l.get_label().startswith(f"{dataset}: {which}")]
            removed = (0, n // 4, n // 2, 3 * n // 4)
            assert list(line.get_xdata()) == pytest.approx([100 * r / n for r in removed])
            assert list(line.get_ydata()) == pytest.approx(
                [full_mean - np.mean([accuracy(dataset, s, r, keep) for s in SEEDS])
                 for r in removed])
    colours = {l.get_color() for l in ax.get_lines() if l.get_label().startswith("mnist:")}
    assert len(colours) == 1                          # one colour per data set
    assert colours != {l.get_color() for l in ax.get_lines()
                       if l.get_label().startswith("permuted_mnist:")}


def test_error_increase_for_one_table(tables):
    from forgetting.analysis import figures
    ax = figures.removal_figure(collect(os.path.dirname(tables["mnist"]), epochs=2),
                                error_increase=True).axes[0]
    _, full_mean = removal_oracle("mnist")
    line, = [l for l in ax.get_lines() if l.get_label().startswith("selected")]
    assert line.get_ydata()[-1] == pytest.approx(
        full_mean - np.mean([accuracy("mnist", s, 30, 0) for s in SEEDS]))


# ----------------------------------------------------------------------------- window

def test_window_x_is_each_windows_mean_count_and_spearman_is_printed(tables, sorting_dir, tmp_path):
    sorting = sorting_dir / "sorted.pkl"
    found, _ = measured_of(["window", "--results", tables["mnist"], "--remove_n", 10,
                            "--sorting_file", sorting, "--output", tmp_path / "w.png"])
    counts = loaded(sorting)[1].tolist()
    starts = (0, 10, 20, 30)
    window_means = [sum(counts[s:s + 10]) / 10 for s in starts]
    accs = [sum(accuracy("mnist", seed, 10, s) for seed in SEEDS) / 3 for s in starts]
    assert found == {"spearman_window": float(f"{spearmanr(window_means, accs)[0]:.4g}")}

    from forgetting.analysis import figures
    frame = collect(os.path.dirname(tables["mnist"]), epochs=2)
    ax = figures.window_figure(frame, 10, np.array(counts), "sorted").axes[0]
    line, = [l for l in ax.get_lines() if l.get_label().startswith("window in sorted")]
    assert list(line.get_xdata()) == pytest.approx(window_means)
    assert list(line.get_ydata()) == pytest.approx(accs)
    assert ax.get_xlabel().startswith("mean forgetting count of the removed examples")


def test_window_means_of_the_fast_path_equal_a_plain_loop():
    rng = np.random.default_rng(1)
    counts = np.sort(rng.integers(0, 50, 1000))
    starts = rng.integers(0, 900, 30)
    fast = count_stats.window_mean_counts(counts, starts, 100)
    assert list(fast) == pytest.approx([sum(counts[s:s + 100].tolist()) / 100 for s in starts])


# ----------------------------------------------------------------------------- noise

@pytest.fixture(scope="module")
def changed_labels(sorting_dir):
    """The changed-labels file of 40 flips among the noisy run's 200 ids (the real writer)."""
    rng = np.random.default_rng(7)
    ids = rng.choice(200, 40, replace=False)
    old = rng.integers(0, 10, 40)
    new = (old + rng.integers(1, 10, 40)) % 10
    path = sorting_dir / "noisy_changed_labels.txt"
    path.write_text(changed_labels_text(ids, old, new))
    return path, ids


def test_noise_splits_flipped_and_unchanged_examples(sorting_dir, changed_labels, tmp_path):
    path, flipped = changed_labels
    found, _ = measured_of(["noise", "--sorting_file", sorting_dir / "noisy.pkl",
                            "--changed_labels", path, "--before", sorting_dir / "clean.pkl",
                            "--output", tmp_path / "fig3.png"])
    count = dict(zip(*(a.tolist() for a in loaded(sorting_dir / "noisy.pkl"))))
    before = dict(zip(*(a.tolist() for a in loaded(sorting_dir / "clean.pkl"))))
    noisy = [count[i] for i in flipped.tolist()]
    clean = [c for i, c in count.items() if i not in set(flipped.tolist())]
    assert len(noisy) == 40 and len(clean) == 160

    def rounded(x):
        return float(f"{x:.4g}")

    assert found == {
        "noisy_unforgettable_percent": rounded(100 * sum(c == 0 for c in noisy) / len(noisy)),
        "clean_unforgettable_percent": rounded(100 * sum(c == 0 for c in clean) / len(clean)),
        "noisy_mean_count": rounded(sum(noisy) / len(noisy)),
        "clean_mean_count": rounded(sum(clean) / len(clean)),
        "noisy_mean_count_before": rounded(sum(before[i] for i in flipped.tolist()) / 40),
    }
    found, _ = measured_of(["noise", "--sorting_file", sorting_dir / "noisy.pkl",
                            "--changed_labels", path, "--output", tmp_path / "left.png"])
    assert "noisy_mean_count_before" not in found and len(found) == 4


# ----------------------------------------------------------------------------- gallery

def gallery_oracle(ids, counts, labels, k):
    """Plain loops: most forgotten (count > 0) by count descending then id ascending; the
    unforgettable by ascending id."""
    pairs = sorted(((-c, i) for i, c in zip(ids, counts) if c > 0))
    forgotten = [i for _, i in pairs[:k]]
    zero = sorted(i for i, c in zip(ids, counts) if c == 0)[:k]
    return forgotten, zero


def test_gallery_ids_equal_a_plain_loop_overall_and_per_class():
    rng = np.random.default_rng(3)
    ids = rng.permutation(500)
    counts = rng.integers(0, 4, 500)                  # many ties
    labels = rng.integers(0, 5, 500)
    forgotten, zero = count_stats.gallery_ids(ids, counts, labels, 7)
    assert (forgotten.tolist(), zero.tolist()) == gallery_oracle(ids.tolist(), counts.tolist(),
                                                                 labels.tolist(), 7)
    forgotten, zero = count_stats.gallery_ids(ids, counts, labels, 7, per_class=True)
    for label in range(5):
        mine = labels == label
        assert (forgotten[label].tolist(), zero[label].tolist()) == gallery_oracle(
            ids[mine].tolist(), counts[mine].tolist(), None, 7)


@pytest.fixture(scope="module")
def digits():
    from forgetting.data.datasets import load_mnist_5k
    return load_mnist_5k()


def test_gallery_shows_the_chosen_digits_with_label_and_count(digits, tmp_path):
    rng = np.random.default_rng(9)
    ids = rng.permutation(4000)
    counts = rng.integers(0, 6, 4000) * rng.integers(0, 2, 4000)
    sorting = write_sorting_file(tmp_path / "digits.pkl", ids, counts)
    from forgetting.analysis import gallery

    figures_made = []
    original = gallery.gallery_figure

    def keep(*args, **kwargs):
        figures_made.append(original(*args, **kwargs))
        return figures_made[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gallery, "gallery_figure", keep)
        found, _ = measured_of(["gallery", "--sorting_file", sorting, "--dataset", "mnist_5k",
                                "--k", 4, "--output", tmp_path / "g.png"])
    assert found == {}
    forgotten, zero = gallery_oracle(ids.tolist(), counts.tolist(), None, 4)
    count = dict(zip(ids.tolist(), counts.tolist()))
    shown = [ax for ax in figures_made[0].axes if ax.images]
    assert len(shown) == 8
    for ax, i in zip(shown, forgotten + zero):
        assert np.array_equal(ax.images[0].get_array(), digits.train_x[i, 0].numpy())
        assert ax.get_title() == f"label {int(digits.train_y[i])}\n{count[i]} events"


def test_gallery_per_class_draws_one_row_per_digit(digits, tmp_path):
    rng = np.random.default_rng(2)
    ids = np.arange(4000)
    counts = rng.integers(0, 3, 4000)
    sorting = write_sorting_file(tmp_path / "digits.pkl", ids, counts)
    from forgetting.analysis import gallery

    rows = []
    original = gallery.per_class_gallery_figure

    def keep(found_rows, *args, **kwargs):
        rows.extend(found_rows)
        return original(found_rows, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gallery, "per_class_gallery_figure", keep)
        measured_of(["gallery", "--sorting_file", sorting, "--dataset", "mnist_5k", "--k", 1,
                     "--per_class", "--output", tmp_path / "g.png"])
    labels = digits.train_y.numpy()
    assert [label for label, _, _ in rows] == list(range(10))
    for label, forgotten, zero in rows:
        mine = labels == label
        (top,), (first_zero,) = gallery_oracle(ids[mine].tolist(), counts[mine].tolist(), None, 1)
        assert np.array_equal(forgotten[0][0], digits.train_x[top, 0].numpy())
        assert forgotten[0][1] == counts[top] == 2
        assert np.array_equal(zero[0][0], digits.train_x[first_zero, 0].numpy())


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, needle", [
    (["histogram", "--sorting_file", "{sorted}", "{noisy}", "--labels", "a"],
     "--labels gives 1 label(s) for 2 sorting file(s)"),
    (["histogram", "--sorting_file", "{sorted}", "--labels", "a b"], "without spaces"),
    (["histogram", "--sorting_file", "{sorted}", "{sorted}"], "give distinct --labels"),
    (["removal", "--results", "{mnist}", "{permuted}", "--labels", "a", "b", "c"],
     "--labels gives 3 label(s) for 2 table(s)"),
    (["removal", "--results", "{mnist}", "{nofull}"],
     "no finished run trains on the full training set"),
    (["window", "--results", "{mnist}", "--remove_n", "10", "--sorting_file", "{noisy}"],
     "removed by sorting file sorted, but --sorting_file is"),
    (["noise", "--sorting_file", "{noisy}", "--changed_labels", "{missing}"], "does not exist"),
    (["noise", "--sorting_file", "{noisy}", "--changed_labels", "{badline}"], "line 2"),
    (["noise", "--sorting_file", "{sorted}", "--changed_labels", "{changed}"],
     "holds no count for"),
    (["noise", "--sorting_file", "{noisy}", "--changed_labels", "{empty}"], "no flipped example"),
    (["gallery", "--sorting_file", "{noisy}", "--dataset", "svhn"], "--dataset svhn"),
    (["gallery", "--sorting_file", "{noisy}", "--dataset", "mnist_5k", "--k", "0"], "--k"),
    (["gallery", "--sorting_file", "{noisy}", "--dataset", "cifar100", "--per_class"],
     "cifar100 has 100"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(args, needle, tables, sorting_dir,
                                                  changed_labels, tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "bad_changed_labels.txt"
    bad.write_text("3 1 2\n4 one 2\n")
    empty = tmp_path / "in" / "empty_changed_labels.txt"
    empty.write_text("")
    nofull = tmp_path / "in" / "nofull.csv"
    import pandas as pd
    frame = pd.read_csv(tables["permuted_mnist"])
    frame[frame["remove_n"] > 0].to_csv(nofull, index=False)
    names = dict(sorted=sorting_dir / "sorted.pkl", noisy=sorting_dir / "noisy.pkl",
                 mnist=tables["mnist"], permuted=tables["permuted_mnist"], nofull=nofull,
                 missing=tmp_path / "missing.txt", badline=bad, empty=empty,
                 changed=changed_labels[0])
    monkeypatch.chdir(tmp_path)
    code, stdout, err = call_main(plot_figures.main,
                                  [a.format(**names) for a in args] + ["--output", "f.png"])
    assert_one_line_error(code, err, needle)
    assert sorted(os.listdir(tmp_path)) == ["in"]
