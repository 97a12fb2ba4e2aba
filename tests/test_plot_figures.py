"""plot_figures.py: each figure is written in the format its extension names, draws the
numbers of the runs (checked against plain loops over the table), and bad input is one
line, exit 2, no file."""
import os
import pickle

import numpy as np
import pytest

import plot_figures
from forgetting.analysis import figures
from forgetting.analysis.results import collect
from helpers import REPO, assert_one_line_error, call_main, run_script
from run_files import mnist_fname, write_run

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}
N = 40  # training examples of the made-up dataset


def plot(*args, cwd=REPO):
    return run_script("plot_figures.py", *args, cwd=cwd)


def accuracy(seed, remove_n, keep_lowest_n):
    """A made-up final accuracy that differs by every flag."""
    return 90.0 - 0.3 * remove_n * (keep_lowest_n < 0) - 0.1 * keep_lowest_n + seed


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Runs of a removal sweep (3 seeds, selected and random, remove_n 0/10/20), windows of
    10 at starts 0/10/20, the full-data runs, and one unfinished run that must not be drawn."""
    out = tmp_path_factory.mktemp("sweep")
    for seed in (1, 2, 3):
        write_run(out, mnist_fname(seed=seed), [50.0, accuracy(seed, 0, 0)], n_train=N)
        for remove_n in (0, 10, 20):
            for keep in (0, -1):
                name = mnist_fname(seed=seed, sorting_file="sorted", remove_n=remove_n,
                                   keep_lowest_n=keep)
                write_run(out, name, [50.0, accuracy(seed, remove_n, keep)], n_train=N - remove_n)
        for keep in (10, 20):
            name = mnist_fname(seed=seed, sorting_file="sorted", remove_n=10, keep_lowest_n=keep)
            write_run(out, name, [50.0, accuracy(seed, 10, keep)], n_train=N - 10)
    write_run(out, mnist_fname(seed=4, sorting_file="sorted", remove_n=10), [1.0], n_train=N - 10)
    return out


@pytest.fixture(scope="module")
def results_csv(sweep_dir, tmp_path_factory):
    csv = tmp_path_factory.mktemp("table") / "results.csv"
    run_script("collect_results.py", "--input_dir", sweep_dir, "--epochs", "2", "--output", csv,
               must_succeed=True)
    return csv


@pytest.fixture(scope="module")
def sorting_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("sorting")
    rng = np.random.default_rng(0)
    paths = []
    for name, size in (("mnist_sorted", 500), ("cifar_sorted.pkl", 300)):
        counts = np.sort(np.minimum(rng.geometric(0.3, size) - 1, 50)).astype(np.int64)
        path = out / (name if name.endswith(".pkl") else name + ".pkl")
        with open(path, "wb") as handle:
            pickle.dump({"indices": np.arange(size), "forgetting counts": counts}, handle)
        paths.append(path)
    with open(out / "scores_MLI.pkl", "wb") as handle:
        pickle.dump({"indices": np.arange(3), "max loss increase": np.zeros(3)}, handle)
    return paths


def written(path, kind):
    with open(path, "rb") as handle:
        head = handle.read()
    assert len(head) > 1000 and head.startswith(MAGIC[kind]), head[:20]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["png", "pdf", "svg"])
def test_each_figure_is_written_in_the_format_of_its_extension(
        kind, sweep_dir, results_csv, sorting_files, tmp_path):
    commands = {
        "histogram": ["--sorting_file", *sorting_files],
        "removal": ["--results", results_csv],
        "window": ["--input_dir", sweep_dir, "--epochs", 2, "--remove_n", 10],
    }
    for figure, args in commands.items():   # main in this process: no interpreter start each
        out = tmp_path / "figs" / f"{figure}.{kind}"
        code, stdout, err = call_main(plot_figures.main, [figure, *args, "--output", out])
        assert code == 0, err
        *numbers, last = stdout.splitlines()
        assert last == f"wrote {out}" and all(n.startswith("measured: ") for n in numbers)
        written(out, kind)


def series(ax, label_start):
    """(x, y) of the line whose legend label starts with ``label_start``."""
    lines = [line for line in ax.get_lines() if line.get_label().startswith(label_start)]
    assert len(lines) == 1, [line.get_label() for line in ax.get_lines()]
    return lines[0].get_xdata(), lines[0].get_ydata()


def test_removal_draws_the_mean_over_seeds_of_finished_runs(sweep_dir):
    fig = figures.removal_figure(collect(sweep_dir, epochs=2))
    ax = fig.axes[0]
    for label, keep in (("selected", 0), ("random", -1)):
        x, y = series(ax, label)
        assert list(x) == [100 * r / N for r in (0, 10, 20)]
        for remove_n, mean in zip((0, 10, 20), y):  # the plain loop (seed 4 is unfinished)
            accs = [accuracy(seed, remove_n, keep) for seed in (1, 2, 3)]
            assert mean == pytest.approx(sum(accs) / len(accs))
    _, full = series(ax, f"all {N} examples")
    assert full[0] == pytest.approx(np.mean([accuracy(s, 0, k) for s in (1, 2, 3)
                                             for k in (0, 0, -1)]))
    assert ax.get_xlabel() == f"training examples removed (% of {N})"
    assert ax.get_ylabel() == "test accuracy (%)"


def test_window_draws_each_start_and_random_as_a_band(sweep_dir):
    ax = figures.window_figure(collect(sweep_dir, epochs=2), 10).axes[0]
    x, y = series(ax, "window in sorted")
    assert list(x) == [0.0, 25.0, 50.0]
    assert list(y) == pytest.approx([np.mean([accuracy(s, 10, k) for s in (1, 2, 3)])
                                     for k in (0, 10, 20)])
    random = [accuracy(s, 10, -1) for s in (1, 2, 3)]
    band = [p for p in ax.patches if p.get_label().startswith("random removal of 10")]
    assert len(band) == 1
    low, high = band[0].get_extents().transformed(ax.transData.inverted()).get_points()[:, 1]
    assert (low, high) == pytest.approx((np.mean(random) - np.std(random, ddof=1),
                                         np.mean(random) + np.std(random, ddof=1)))


def test_histogram_fractions_and_the_unforgettable_share(sorting_files):
    counts = pickle.load(open(sorting_files[0], "rb"))["forgetting counts"]
    ax = figures.histogram_figure([("a", counts)], max_events=5).axes[0]
    heights = [p.get_height() for p in ax.patches]
    expected = [np.mean(counts == k) for k in range(5)] + [np.mean(counts >= 5)]
    assert heights == pytest.approx(expected)
    label = ax.get_legend_handles_labels()[1][0]
    assert f"{100 * np.mean(counts == 0):.1f}% unforgettable" in label
    assert "last bar: 5 or more" in ax.get_xlabel()


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (["histogram", "--sorting_file", "{mli}", "--output", "f.png"], "no 'forgetting counts'"),
    (["histogram", "--sorting_file", "{missing}", "--output", "f.png"], "missing"),
    (["histogram", "--sorting_file", "{sorted}", "--max_events", "0", "--output", "f.png"],
     "--max_events"),
    (["histogram", "--sorting_file", "{sorted}", "--output", "f.jpg"], ".png, .pdf, .svg"),
    (["removal", "--results", "{missing}", "--output", "f.png"], "does not exist"),
    (["removal", "--results", "{sorted}", "--output", "f.png"], "not a table"),
    (["removal", "--input_dir", "{runs}", "--output", "f.png"], "none of the"),
    (["removal", "--input_dir", "{runs}", "--epochs", "2", "--input_fname_args", "seed",
      "--output", "f.png"], "name/value pairs"),
    (["removal", "--results", "{csv}", "--input_fname_args", "seed", "9", "--output", "f.png"],
     "No runs found"),
    (["window", "--results", "{csv}", "--remove_n", "7", "--output", "f.png"],
     "no finished run removes a window of --remove_n 7"),
    (["window", "--results", "{csv}", "--remove_n", "20", "--output", "f.png"],
     "at one start only (--keep_lowest_n 0)"),
    (["removal", "--output", "f.png"], "one of the arguments --results --input_dir"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(args, needle, sweep_dir, results_csv,
                                                  sorting_files, tmp_path, monkeypatch):
    names = dict(mli=sorting_files[0].parent / "scores_MLI.pkl", missing=tmp_path / "missing",
                 sorted=sorting_files[0], runs=sweep_dir, csv=results_csv)
    monkeypatch.chdir(tmp_path)   # main in this process; the real process is the next test's
    code, stdout, err = call_main(plot_figures.main, [a.format(**names) for a in args])
    assert_one_line_error(code, err, needle, out=stdout)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_mixed_experiments_are_refused(tmp_path):
    for dataset in ("mnist", "mnist_5k"):
        write_run(tmp_path, mnist_fname(dataset=dataset, keep_lowest_n=-1, remove_n=5), [60.0])
    res = plot("removal", "--input_dir", tmp_path, "--epochs", 1, "--output",
               tmp_path / "f.png")
    assert res.returncode == 2 and "dataset takes mnist, mnist_5k" in res.stderr
    assert "--input_fname_args dataset VALUE" in res.stderr
    assert not (tmp_path / "f.png").exists()


def test_load_counts_refuses_counts_that_do_not_match_the_ids(tmp_path):
    """Issue 20, item 7: a sorting file with 10 counts for 4,000 ids was drawn as 10 examples."""
    from forgetting.errors import UsageError
    from forgetting.files import safe_pickle

    path = tmp_path / "sorted.pkl"
    path.write_bytes(pickle.dumps({"indices": np.arange(4000), "forgetting counts": np.zeros(10, np.int64)}))
    with pytest.raises(UsageError, match="'forgetting counts' hold 10 values for 4000 ids"):
        figures.load_counts(str(path), safe_pickle.load)
    path.write_bytes(pickle.dumps({"indices": np.arange(10), "forgetting counts": np.zeros(10, np.int64)}))
    assert figures.load_counts(str(path), safe_pickle.load).tolist() == [0] * 10
