"""plot_figures.py first_learning, margin, seeds, epoch_budget, cross_arch (docs/analyses.md):
every number they print against a plain loop over each example's presentation lists, on
small stats files written in the training scripts' layout; the refusals; and (slow) all five
on real 2-epoch runs of the bundled digits.

The correlations of the oracles are scipy's; the forgetting count is tests/oracles.py's.
"""
import itertools
import os
import pickle
import statistics

import numpy as np
import pytest
from scipy import stats as scipy_stats

import plot_figures
import run_mnist
from forgetting.analysis import correlation, stat_figures
from forgetting.analysis.measured import parse_measured
from forgetting.analysis.stability import half_splits
from helpers import assert_one_line_error, call_main, mnist_fname
from oracles import oracle_forgetting

N, P = 30, 10  # examples, presentations per run
IDS = [7 + 3 * i for i in range(N)]  # not 0..n-1, and written in shuffled key order


def make_runs(seeds, rng_seed=0):
    """{seed: {id: (accs, margins)}}: each example has its own chance of being right, shared
    by the runs (so runs agree, as real seeds do); the first is never right, the second always,
    the third never in the first run only."""
    rng = np.random.RandomState(rng_seed)
    chance = rng.uniform(0.1, 0.95, N)
    runs = {}
    for r, seed in enumerate(seeds):
        run = {}
        for i, example_id in enumerate(IDS):
            accs = [int(v) for v in rng.random_sample(P) < chance[i]]
            if i == 0 or (i == 2 and r == 0):
                accs = [0] * P
            if i == 1:
                accs = [1] * P
            # the label's output minus the best other: >= 0 when right, < 0 when wrong
            margins = [float(abs(m)) if a else -float(abs(m)) - 1e-3
                       for a, m in zip(accs, rng.normal(size=P))]
            run[example_id] = (accs, margins)
        runs[seed] = run
    return runs


def write_runs(directory, runs, dataset="mnist_5k"):
    """The runs as the training scripts' stats pickles ({id: [losses, accs, margins]})."""
    os.makedirs(directory, exist_ok=True)
    for seed, run in runs.items():
        keys = list(run)
        np.random.RandomState(seed).shuffle(keys)
        stats = {k: [[0.5] * P, list(run[k][0]), list(run[k][1])] for k in keys}
        stats.update({"train": [[], [50.0]], "test": [[], [50.0] * P]})
        name = mnist_fname(dataset=dataset, seed=seed) + "__stats_dict.pkl"
        with open(os.path.join(directory, name), "wb") as handle:
            pickle.dump(stats, handle)
    return str(directory)


@pytest.fixture
def drawn(monkeypatch):
    """What the subcommands handed to stat_figures: {function name: (args, kwargs)}."""
    calls = {}
    for name in ("histogram2d_figure", "seeds_figure", "curves_figure"):
        real = getattr(stat_figures, name)

        def spy(*args, _name=name, _real=real, **kwargs):
            calls[_name] = (args, kwargs)
            return _real(*args, **kwargs)

        monkeypatch.setattr(stat_figures, name, spy)
    return calls


def figure(tmp_path, command, *args):
    """Run ``plot_figures.py command args`` in this process: (measured numbers, stdout)."""
    out = tmp_path / "figs" / f"{command}.png"
    code, stdout, err = call_main(plot_figures.main, [command, *args, "--output", out])
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return parse_measured(stdout), stdout


def near(value):
    """A measured line holds 4 significant digits."""
    return pytest.approx(value, rel=1e-3, abs=1e-4)


def count(runs, example_id, epochs=P):
    return sum(oracle_forgetting(run[example_id][0], epochs) for run in runs.values())


# ------------------------------------------------------------------------ the oracles' loops

def oracle_first_learned(accs, epochs=P):
    """1-based presentation of the first 1 in the first ``epochs``, None if none."""
    for t, acc in enumerate(accs[:epochs]):
        if acc == 1:
            return t + 1
    return None


def oracle_event_margins(accs, margins, epochs=P):
    """The margins at the presentations misclassified right after a correct one."""
    found = []
    for t in range(1, min(epochs, len(accs))):
        if accs[t - 1] == 1 and accs[t] == 0:
            found.append(margins[t])
    return found


# ----------------------------------------------------------------------------------- tests

def test_correlations_match_scipy():
    rng = np.random.RandomState(1)
    x, y = rng.randint(0, 5, 50), rng.randint(0, 3, 50) + rng.random_sample(50).round(1)
    assert correlation.average_ranks(x) == pytest.approx(scipy_stats.rankdata(x))
    assert correlation.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y)[0])
    assert correlation.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0])
    assert np.isnan(correlation.pearson([1, 1, 1], [1, 2, 3]))  # constant: undefined
    assert correlation.precision_recall([1, 1, 0, 0], [1, 0, 1, 1]) == (0.5, 1 / 3)
    assert all(np.isnan(v) for v in correlation.precision_recall([0, 0], [0, 0]))


def test_first_learning_matches_the_loop(tmp_path, drawn):
    runs = make_runs([1, 2, 3])
    measured, stdout = figure(tmp_path, "first_learning", "--input_dir",
                              write_runs(tmp_path / "runs", runs), "--epochs", P)
    xs, ys = [], []
    for example_id in IDS:
        firsts = [oracle_first_learned(run[example_id][0]) for run in runs.values()]
        if None not in firsts:  # never learned in some run: no first learning event, left out
            xs.append(statistics.fmean(firsts))
            ys.append(count(runs, example_id))
    assert len(xs) == N - 2
    assert f"{N - 2} of {N} examples learned in every run; 2 never learned" in stdout
    assert measured == {"spearman_first_learning": near(scipy_stats.spearmanr(xs, ys)[0])}
    (x, y, *_), _ = drawn["histogram2d_figure"]
    assert list(x) == pytest.approx(xs) and list(y) == ys


def test_margin_matches_the_loop(tmp_path, drawn):
    runs = make_runs([1, 2, 3])
    measured, stdout = figure(tmp_path, "margin", "--input_dir",
                              write_runs(tmp_path / "runs", runs), "--epochs", P)
    counts, margins = [], []
    for example_id in IDS:
        pooled = [m for run in runs.values() for m in oracle_event_margins(*run[example_id])]
        if pooled:  # without a forgetting event there is no misclassification margin
            counts.append(len(pooled))  # the events, not the never-learned convention
            margins.append(statistics.fmean(pooled))
    assert max(margins) < 0 and len(counts) < N - 1  # the never/always right ones are out
    assert f"{len(counts)} of {N} examples forgotten at least once" in stdout
    assert measured == {"spearman_margin": near(scipy_stats.spearmanr(counts, margins)[0])}
    (x, y, *_), _ = drawn["histogram2d_figure"]
    assert list(x) == counts and list(y) == pytest.approx(margins)


def test_margin_leaves_out_a_margin_that_is_not_finite(tmp_path):
    runs = make_runs([1])
    forgotten = [i for i in IDS if oracle_event_margins(*runs[1][i])]
    accs, margins = runs[1][forgotten[0]]
    runs[1][forgotten[0]] = (accs, [float("nan")] * P)  # as a diverged run records them
    measured, stdout = figure(tmp_path, "margin", "--input_dir",
                              write_runs(tmp_path / "runs", runs), "--epochs", P,
                              "--include_diverged")
    assert f"{len(forgotten) - 1} of {N} examples forgotten at least once" in stdout
    assert "and 1 whose margin is not finite (a diverged run) left out" in stdout
    assert not np.isnan(measured["spearman_margin"])


@pytest.mark.parametrize("n_runs", [4, 5])
def test_seeds_match_the_loop(tmp_path, drawn, n_runs):
    runs = make_runs(range(1, n_runs + 1))
    measured, stdout = figure(tmp_path, "seeds", "--input_dir",
                              write_runs(tmp_path / "runs", runs), "--epochs", P)
    per_run = [[oracle_forgetting(run[i][0], P) for i in IDS] for run in runs.values()]
    expected = {}
    for name, corr in (("pearson", scipy_stats.pearsonr), ("spearman", scipy_stats.spearmanr)):
        pairs = [corr(per_run[a], per_run[b])[0]
                 for a, b in itertools.combinations(range(n_runs), 2)]
        expected[f"{name}_pairwise"] = near(statistics.fmean(pairs))
        halves = []
        for first in itertools.combinations(range(n_runs), n_runs // 2):
            if n_runs % 2 == 0 and 0 not in first:
                continue  # the mirror image of a split already counted
            sums = [[sum(per_run[r][i] for r in range(n_runs) if (r in first) == side)
                     for i in range(N)] for side in (True, False)]
            halves.append(corr(*sums)[0])
        expected[f"{name}_split_half"] = near(statistics.fmean(halves))
    assert measured == expected
    assert f"mean over {len(halves)} splits" in stdout
    (matrix, labels, _, _), _ = drawn["seeds_figure"]
    assert labels == [f"seed {s}" for s in range(1, n_runs + 1)]
    assert matrix[0, 1] == pytest.approx(scipy_stats.pearsonr(per_run[0], per_run[1])[0])


def test_histogram_bins_hold_equal_shares_of_a_grid_of_means():
    """Means over 3 runs of presentations 1..200 lie on a grid of 1/3: every grid point falls
    inside a bin (none on an edge, which striped the figure) and every bin holds as many."""
    grid = np.arange(3, 601) / 3
    edges = stat_figures.bin_edges(grid, step=1 / 3)
    assert len(edges) - 1 <= stat_figures.MAX_BINS
    assert not np.isin(np.round(grid, 9), np.round(edges, 9)).any()
    per_bin = np.histogram(grid, bins=edges)[0]
    assert per_bin[:-1].tolist() == [per_bin[0]] * (len(per_bin) - 1) and per_bin[-1] <= per_bin[0]
    assert stat_figures.bin_edges(np.array([0, 1, 2, 5])).tolist() == [-0.5, 0.5, 1.5, 2.5, 3.5,
                                                                       4.5, 5.5]


def test_split_halves_are_each_split_once_up_to_a_cap():
    assert half_splits(4) == [(0, 1), (0, 2), (0, 3)]
    assert len(half_splits(10)) == 126  # the paper's 10 seeds: every split
    many = half_splits(12)
    assert len(many) == 128 and len(set(many)) == 128 and all(len(s) == 6 for s in many)


def test_seeds_below_four_runs_measure_pairwise_only(tmp_path):
    runs = make_runs([1, 2, 3])
    measured, stdout = figure(tmp_path, "seeds", "--input_dir",
                              write_runs(tmp_path / "runs", runs), "--epochs", P)
    assert set(measured) == {"pearson_pairwise", "spearman_pairwise"}
    assert "split-half: needs at least 4 runs, the selection holds 3; not measured" in stdout


def test_epoch_budget_matches_the_loop(tmp_path, drawn):
    runs = make_runs([1, 2])
    budgets = [1, 4, P]
    measured, _ = figure(tmp_path, "epoch_budget", "--input_dir",
                         write_runs(tmp_path / "runs", runs), "--epochs", P,
                         "--budgets", 4, P, 1, 4)
    full = [count(runs, i) for i in IDS]
    expected = {}
    for n in budgets:
        after = [count(runs, i, n) for i in IDS]
        retrieved = {i for i, c in zip(IDS, after) if c == 0}
        relevant = {i for i, c in zip(IDS, full) if c == 0}
        expected[f"spearman@{n}"] = near(scipy_stats.spearmanr(after, full)[0])
        expected[f"pearson@{n}"] = near(scipy_stats.pearsonr(after, full)[0])
        expected[f"precision@{n}"] = near(len(retrieved & relevant) / len(retrieved))
        expected[f"recall@{n}"] = near(len(retrieved & relevant) / len(relevant))
    assert measured == expected
    (x, curves, *_), _ = drawn["curves_figure"]
    assert list(x) == budgets and len(curves) == 4


def test_cross_arch_matches_the_loop(tmp_path, drawn):
    candidate, reference = make_runs([1, 2], rng_seed=0), make_runs([3, 4], rng_seed=5)
    cand_dir = write_runs(tmp_path / "small", candidate)
    ref_dir = write_runs(tmp_path / "big", reference, dataset="permuted_mnist_5k")
    measured, stdout = figure(tmp_path, "cross_arch", "--input_dir", cand_dir, "--epochs", P,
                              "--reference_dir", ref_dir, "--reference_args", "seed", 4,
                              "--reference_epochs", 6)
    relevant = {i for i in IDS if oracle_forgetting(reference[4][i][0], 6) == 0}
    expected = {}
    for n in range(1, P + 1):  # the default: 10 points up to --epochs
        retrieved = {i for i in IDS if count(candidate, i, n) == 0}
        both = len(retrieved & relevant)
        expected[f"precision@{n}"] = near(both / len(retrieved) if retrieved else float("nan"))
        expected[f"recall@{n}"] = near(both / len(relevant))
    expected["precision"], expected["recall"] = expected[f"precision@{P}"], expected[f"recall@{P}"]
    assert measured.keys() == expected.keys()
    for key, value in measured.items():
        assert value == expected[key] or (np.isnan(value) and np.isnan(expected[key].expected))
    assert "skipping 1 stats file(s) that do not match --reference_args seed 4" in stdout


@pytest.mark.parametrize("command, extra, needles", [
    ("seeds", ["--input_fname_args", "seed", "1"], ["seeds compares runs", "holds 1"]),
    ("epoch_budget", ["--budgets", 11], ["--budgets 11", "from 1 to 10"]),
    ("epoch_budget", ["--budgets", 0], ["--budgets 0"]),
    ("cross_arch", ["--reference_dir", "{missing}"], ["reference runs: --reference_dir"]),
    ("cross_arch", ["--reference_dir", "{other}"], ["reference runs:", "--reference_epochs 1"]),
    ("cross_arch", ["--reference_dir", "{other}", "--reference_epochs", 1], ["example ids differ"]),
    ("margin", ["--input_fname_args", "seed"], ["name/value pairs"]),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, command, extra, needles):
    runs_dir = write_runs(tmp_path / "runs", make_runs([1, 2]))
    other = tmp_path / "other"
    other.mkdir()
    with open(other / (mnist_fname(seed=9) + "__stats_dict.pkl"), "wb") as handle:
        pickle.dump({5: [[0.1], [1], [0.2]]}, handle)  # other example ids
    extra = [str(a).format(missing=tmp_path / "missing", other=other) for a in extra]
    code, stdout, err = call_main(plot_figures.main, [
        command, "--input_dir", runs_dir, "--epochs", P, *extra,
        "--output", tmp_path / "figs" / "f.png"])
    assert_one_line_error(code, err, *needles, out=stdout)
    assert not (tmp_path / "figs").exists()


@pytest.mark.slow
def test_all_five_on_real_runs_of_the_digits(tmp_path):
    """Two 2-epoch runs of run_mnist.py on the bundled digits (a third, of another seed, as
    the reference runs): every subcommand writes its figure and its measured lines."""
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    for seed, out in ((1, runs), (2, runs), (3, ref)):
        code, _, err = call_main(run_mnist.main, ["--dataset", "mnist_5k", "--epochs", 2,
                                                  "--batch_size", 128, "--seed", seed,
                                                  "--output_dir", out])
        assert code == 0, err
    expected = {
        "first_learning": ([], {"spearman_first_learning"}),
        "margin": ([], {"spearman_margin"}),
        "seeds": ([], {"pearson_pairwise", "spearman_pairwise"}),
        "epoch_budget": (["--budgets", 1, 2], {f"{k}@{n}" for k in ("spearman", "pearson",
                                                                   "precision", "recall")
                                               for n in (1, 2)}),
        "cross_arch": (["--reference_dir", ref],
                       {"precision", "recall", "precision@1", "recall@1", "precision@2",
                        "recall@2"}),
    }
    for command, (extra, keys) in expected.items():
        measured, _ = figure(tmp_path, command, "--input_dir", runs, *extra)
        assert set(measured) == keys, command
        assert all(-1 <= v <= 1 for v in measured.values() if not np.isnan(v)), measured
