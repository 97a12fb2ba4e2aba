"""order_examples_by_forgetting.py (docs/scores.md) on hand-worked runs: the counts,
the MLI file, the name filter and every stats-file layout users have.

The first test runs the script as users do, ``python order_examples_by_forgetting.py ...`` in
a child process; the others call its ``main(argv)`` in this process (the same code, without
an interpreter start each). Its refusals are in tests/test_bad_input.py.
"""
import pickle

import numpy as np
import pytest

import order_examples_by_forgetting
from helpers import assert_one_line_error, call_main, load_pickle, run_script
from oracles import oracle_forgetting, oracle_mli, oracle_tie_order
from pickles import STATS_NUMPY1_P2, stats_dict, to_numpy1_layout

# Two hand-worked runs of four examples, five presentations each: (accs, losses).
RUN_SEED_1 = {
    0: ([1, 0, 1, 0, 1], [1.0, 2.0, 0.5, 3.0, 1.0]),  # 2 events; MLI 2.5
    1: ([0, 0, 0, 0, 0], [5.0, 5.0, 5.0, 5.0, 5.0]),  # never learned; MLI 0
    2: ([1, 1, 1, 1, 1], [4.0, 3.0, 2.0, 1.0, 0.5]),  # 0 events; MLI -0.5
    3: ([0, 1, 1, 1, 0], [2.0, 1.0, 1.0, 1.0, 1.5]),  # 1 event; MLI 0.5
}
RUN_SEED_2 = {
    0: ([1, 1, 1, 1, 1], [1.0, 0.5, 0.4, 0.3, 0.2]),  # 0; MLI -0.1
    1: ([0, 0, 0, 0, 1], [3.0, 4.0, 2.0, 2.0, 1.0]),  # learned last: 0 events; MLI 1.0
    2: ([1, 1, 1, 1, 1], [1.0, 1.0, 1.0, 1.0, 1.0]),  # 0; MLI 0
    3: ([1, 0, 1, 1, 1], [0.5, 1.5, 0.5, 0.5, 0.5]),  # 1; MLI 1.0
}
MNIST_ARGS = ["dataset", "mnist", "no_dropout", "True", "sorting_file", "none", "remove_n", "0", "keep_lowest_n", "0"]


def stats_name(seed, dataset="mnist"):
    return (f"dataset_{dataset}__no_dropout_True__seed_{seed}__sorting_file_none__remove_n_0__"
            f"keep_lowest_n_0__stats_dict.pkl")


def write_stats(directory, name, run, key=np.int64, protocol=2, numpy1=False):
    directory.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(stats_dict(run, key), protocol=protocol)
    if numpy1:
        data = to_numpy1_layout(data)
    (directory / name).write_bytes(data)
    return directory / name


def order(*args):
    """``main(argv)`` in this process: (exit code, stdout, stderr)."""
    return call_main(order_examples_by_forgetting.main, args)


@pytest.fixture
def two_runs(tmp_path):
    inputs = tmp_path / "results"
    write_stats(inputs, stats_name(1), RUN_SEED_1, protocol=2, numpy1=True)  # as the original wrote them
    write_stats(inputs / "more", stats_name(2), RUN_SEED_2, key=int, protocol=5)  # as we write them
    (inputs / "notes.txt").write_text("not a stats file")
    return inputs


@pytest.mark.slow
def test_counts_summed_over_runs_ties_by_id(two_runs, tmp_path):
    out = tmp_path / "sorted"
    argv = ["--input_dir", two_runs, "--input_fname_args", *MNIST_ARGS, "--output_dir", out,
            "--output_name", "mnist_sorted", "--epochs", 5]
    result = run_script("order_examples_by_forgetting.py", *argv, must_succeed=True)
    assert f"including file: {stats_name(1)}" in result.stdout
    assert f"including file: {stats_name(2)}" in result.stdout
    assert "notes.txt" not in result.stdout  # only *stats_dict.pkl files get a line
    assert "Number of unforgettable examples: 1" in result.stdout.splitlines()
    sorting = load_pickle(out / "mnist_sorted.pkl")
    assert set(sorting) == {"indices", "forgetting counts"}
    # totals: id 0 -> 2 + 0, id 1 -> 5 (never learned, run 1) + 0, id 2 -> 0, id 3 -> 1 + 1
    assert sorting["indices"].dtype == np.int64 and sorting["forgetting counts"].dtype == np.int64
    assert sorting["indices"].tolist() == [2, 0, 3, 1]  # 0 and 3 tie at 2: ascending id
    assert sorting["forgetting counts"].tolist() == [0, 2, 2, 5]


def test_never_learned_counts_the_epochs_flag(two_runs, tmp_path):
    code, _, stderr = order("--input_dir", two_runs, "--output_dir", tmp_path, "--output_name", "x.pkl",
                            "--epochs", 5)
    assert code == 0, stderr
    sorting = load_pickle(tmp_path / "x.pkl")  # '.pkl' not doubled
    assert dict(zip(sorting["indices"].tolist(), sorting["forgetting counts"].tolist())) == {0: 2, 1: 5, 2: 0, 3: 2}


def test_more_epochs_than_a_uniform_run_holds_is_refused(two_runs, tmp_path):
    """Issue 20, item 7: --epochs 200 over runs of five presentations used to count a never
    learned example 200 times; now refused, naming both numbers."""
    code, stdout, stderr = order("--input_dir", two_runs, "--output_dir", tmp_path, "--output_name", "x",
                                 "--epochs", 200)
    assert_one_line_error(code, stderr, "--epochs 200 asks for more presentations than the run holds "
                          "(5 per example); give --epochs 5 or less", stats_name(1), out=stdout)
    assert not (tmp_path / "x.pkl").exists()


def test_epochs_truncates_presentations(two_runs, tmp_path):
    code, _, stderr = order("--input_dir", two_runs, "--output_dir", tmp_path, "--output_name", "x",
                            "--epochs", 3)
    assert code == 0, stderr
    sorting = load_pickle(tmp_path / "x.pkl")
    # first 3 presentations: run 1 -> [1, 3, 0, 0], run 2 -> [0, 3, 0, 1]
    assert sorting["indices"].tolist() == [2, 0, 3, 1]
    assert sorting["forgetting counts"].tolist() == [0, 1, 1, 6]


def test_mli_file_and_removal_hint(two_runs, tmp_path):
    out, mli_dir = tmp_path / "out", tmp_path / "mli"
    code, stdout, stderr = order("--input_dir", two_runs, "--input_fname_args", "dataset", "mnist",
                                 "--output_dir", out, "--output_name", "mnist_sorted.pkl",
                                 "--output_dir_MLI", mli_dir, "--epochs", 5)
    assert code == 0, stderr
    mli = load_pickle(mli_dir / "mnist_sorted_MLI.pkl")
    assert set(mli) == {"indices", "max loss increase"}
    # means over the two runs: id 0 (2.5 - 0.1) / 2, id 1 (0 + 1) / 2, id 2 (-0.5 + 0) / 2, id 3 (0.5 + 1) / 2
    assert mli["indices"].tolist() == [2, 1, 3, 0]
    assert mli["max loss increase"].dtype == np.float64
    np.testing.assert_allclose(mli["max loss increase"], [-0.25, 0.5, 0.75, 1.2])
    assert f"--input_dir {mli_dir} --sorting_file mnist_sorted_MLI" in stdout
    assert (out / "mnist_sorted.pkl").exists()


def test_mli_ties_by_ascending_id(tmp_path):
    run = {5: ([1, 1], [1.0, 2.0]), 2: ([1, 1], [3.0, 4.0]), 9: ([1, 1], [0.0, 0.0])}
    write_stats(tmp_path / "in", stats_name(1), run)
    code, _, stderr = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path,
                            "--output_name", "s", "--output_dir_MLI", tmp_path, "--epochs", 2)
    assert code == 0, stderr
    assert load_pickle(tmp_path / "s_MLI.pkl")["indices"].tolist() == [9, 2, 5]


@pytest.fixture
def tied_runs(tmp_path):
    """Two runs of 40 examples, three presentations: forgetting counts and MLI with many ties."""
    rng = np.random.RandomState(0)
    patterns = [[1, 1, 1], [1, 0, 1], [0, 0, 0], [0, 1, 1]]
    for seed in (1, 2):
        run = {}
        for i in rng.permutation(40):  # ids 0, 3, ..., 117, keys in scrambled order
            run[int(i) * 3] = (patterns[rng.randint(4)], [float(v) for v in rng.randint(0, 3, size=3)])
        write_stats(tmp_path / "in", stats_name(seed), run)
    return tmp_path / "in"


def per_example(runs_dir, reduce, epochs=3):
    """{id: reduce summed (forgetting) over both runs}, read with plain pickle.load."""
    totals = {}
    for seed in (1, 2):
        stats = load_pickle(runs_dir / stats_name(seed))
        for k, (losses, accs, _) in ((k, v) for k, v in stats.items() if not isinstance(k, str)):
            value = reduce(accs, losses, epochs)
            totals[int(k)] = totals.get(int(k), 0) + value
    return totals


@pytest.mark.parametrize("seed", [None, 0, 11])
def test_random_ties_are_the_seeded_shuffle(tied_runs, tmp_path, seed):
    flags = ["--ties", "random"] + ([] if seed is None else ["--ties_seed", seed])
    code, stdout, stderr = order("--input_dir", tied_runs, "--output_dir", tmp_path, "--output_name", "s",
                                 "--output_dir_MLI", tmp_path, "--epochs", 3, *flags)
    assert code == 0, stderr
    counts = per_example(tied_runs, lambda accs, losses, epochs: oracle_forgetting(accs, epochs))
    sorting = load_pickle(tmp_path / "s.pkl")
    expected = oracle_tie_order(counts, ties="random", seed=seed or 0)
    assert sorting["indices"].tolist() == expected
    assert sorting["forgetting counts"].tolist() == [counts[i] for i in expected]
    assert expected != oracle_tie_order(counts)  # the ties really moved
    mli = per_example(tied_runs, lambda accs, losses, epochs: oracle_mli(losses, epochs) / 2)
    assert load_pickle(tmp_path / "s_MLI.pkl")["indices"].tolist() == oracle_tie_order(
        mli, ties="random", seed=seed or 0)


def test_ties_id_is_the_default_file_byte_for_byte(tied_runs, tmp_path):
    for name, flags in (("default", []), ("by_id", ["--ties", "id"])):
        code, _, stderr = order("--input_dir", tied_runs, "--output_dir", tmp_path, "--output_name", name,
                                "--output_dir_MLI", tmp_path, "--epochs", 3, *flags)
        assert code == 0, stderr
    assert (tmp_path / "default.pkl").read_bytes() == (tmp_path / "by_id.pkl").read_bytes()
    assert (tmp_path / "default_MLI.pkl").read_bytes() == (tmp_path / "by_id_MLI.pkl").read_bytes()
    counts = per_example(tied_runs, lambda accs, losses, epochs: oracle_forgetting(accs, epochs))
    assert load_pickle(tmp_path / "default.pkl")["indices"].tolist() == oracle_tie_order(counts)


@pytest.mark.parametrize("flags, needles", [
    (["--ties_seed", 3], ["--ties_seed 3 only applies with --ties random"]),
    (["--ties", "id", "--ties_seed", 3], ["--ties_seed 3 only applies with --ties random"]),
    (["--ties", "random", "--ties_seed", -1], ["--ties_seed is -1", "0..4294967295"]),
])
def test_a_useless_or_bad_ties_seed_is_refused(tied_runs, tmp_path, flags, needles):
    code, stdout, stderr = order("--input_dir", tied_runs, "--output_dir", tmp_path / "out",
                                 "--output_name", "s", "--epochs", 3, *flags)
    assert_one_line_error(code, stderr, *needles, out=stdout)
    assert not (tmp_path / "out").exists()


def test_filename_filter_seed_1_is_not_seed_11(tmp_path):
    inputs = tmp_path / "in"
    write_stats(inputs, stats_name(1), RUN_SEED_1)
    write_stats(inputs, stats_name(11), RUN_SEED_2)
    write_stats(inputs, stats_name(1, dataset="permuted_mnist"), RUN_SEED_2)
    code, stdout, stderr = order("--input_dir", inputs, "--input_fname_args", "dataset", "mnist",
                                 "seed", "1", "--output_dir", tmp_path, "--output_name", "s", "--epochs", 5,
                                 "--verbose")
    assert code == 0, stderr
    assert stdout.count("including file:") == 1
    assert f"including file: {stats_name(1)}" in stdout
    assert f"skipping file: {stats_name(11)}" in stdout
    assert f"skipping file: {stats_name(1, dataset='permuted_mnist')}" in stdout
    sorting = load_pickle(tmp_path / "s.pkl")
    assert sorting["indices"].tolist() == [2, 3, 0, 1] and sorting["forgetting counts"].tolist() == [0, 1, 2, 5]


@pytest.mark.parametrize(
    "key, protocol, numpy1",
    [(np.int64, 2, True), (np.int64, 3, True), (np.int64, 5, True), (np.int64, 5, False), (int, 2, False)],
    ids=["np1-p2", "np1-p3", "np1-p5", "np2-p5", "int-p2"],
)
def test_reads_every_stats_layout(tmp_path, key, protocol, numpy1):
    write_stats(tmp_path / "in", stats_name(1), RUN_SEED_1, key=key, protocol=protocol, numpy1=numpy1)
    code, _, stderr = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path, "--output_name", "s",
                            "--epochs", 5)
    assert code == 0, stderr
    assert load_pickle(tmp_path / "s.pkl")["forgetting counts"].tolist() == [0, 1, 2, 5]


def test_reads_a_real_numpy1_stats_file(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / stats_name(1)).write_bytes(STATS_NUMPY1_P2)  # written by numpy 1.26
    code, stdout, stderr = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path,
                                 "--output_name", "s", "--epochs", 3)
    assert code == 0, stderr
    sorting = load_pickle(tmp_path / "s.pkl")  # id 0: accs [0, 1, 0] -> 1; id 1: [1, 1, 1] -> 0
    assert sorting["indices"].tolist() == [1, 0] and sorting["forgetting counts"].tolist() == [0, 1]
    assert "Number of unforgettable examples: 1" in stdout


def test_help_describes_flags_and_output():
    code, stdout, _ = order("--help")
    assert code == 0
    for flag in ("--input_dir", "--input_fname_args", "--output_dir", "--output_name", "--epochs", "--output_dir_MLI",
                 "--ties", "--ties_seed"):
        assert flag in stdout
    assert "forgetting counts" in stdout and "max loss increase" in stdout
