"""order_examples_by_forgetting.py end to end (SPEC sections 4, 5 and 6), run as users do:
``python order_examples_by_forgetting.py ...`` in a child process."""
import os
import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = "order_examples_by_forgetting.py"

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


def stats_dict(run, key=np.int64):
    stats = {"train": [[], [25.0, 50.0]], "test": [[], [60.0]]}
    for example_id, (accs, losses) in run.items():
        stats[key(example_id)] = [list(losses), list(accs), [0.0] * len(accs)]
    return stats


def to_numpy1_layout(data):
    """numpy 2.x pickle bytes -> the numpy 1.x module paths (frames dropped: optional)."""
    frames = [pos for op, _, pos in pickletools.genops(data) if op.name == "FRAME"]
    for pos in reversed(frames):
        data = data[:pos] + data[pos + 9:]
    for module in ("multiarray", "numeric"):
        new, old = f"numpy.core.{module}".encode(), f"numpy._core.{module}".encode()
        data = data.replace(old + b"\n", new + b"\n")
        data = data.replace(b"\x8c" + bytes([len(old)]) + old, b"\x8c" + bytes([len(new)]) + new)
    return data


def write_stats(directory, name, run, key=np.int64, protocol=2, numpy1=False):
    directory.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(stats_dict(run, key), protocol=protocol)
    if numpy1:
        data = to_numpy1_layout(data)
    (directory / name).write_bytes(data)
    return directory / name


def order(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def load(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def assert_refused(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.fixture
def two_runs(tmp_path):
    inputs = tmp_path / "results"
    write_stats(inputs, stats_name(1), RUN_SEED_1, protocol=2, numpy1=True)  # as the original wrote them
    write_stats(inputs / "more", stats_name(2), RUN_SEED_2, key=int, protocol=5)  # as we write them
    (inputs / "notes.txt").write_text("not a stats file")
    return inputs


def test_counts_summed_over_runs_ties_by_id(two_runs, tmp_path):
    out = tmp_path / "sorted"
    result = order("--input_dir", two_runs, "--input_fname_args", *MNIST_ARGS, "--output_dir", out,
                   "--output_name", "mnist_sorted", "--epochs", 5)
    assert result.returncode == 0, result.stderr
    assert f"including file: {stats_name(1)}" in result.stdout
    assert f"including file: {stats_name(2)}" in result.stdout
    assert "notes.txt" not in result.stdout  # only *stats_dict.pkl files get a line
    assert "Number of unforgettable examples: 1" in result.stdout.splitlines()
    sorting = load(out / "mnist_sorted.pkl")
    assert set(sorting) == {"indices", "forgetting counts"}
    # totals: id 0 -> 2 + 0, id 1 -> 5 (never learned, run 1) + 0, id 2 -> 0, id 3 -> 1 + 1
    assert sorting["indices"].dtype == np.int64 and sorting["forgetting counts"].dtype == np.int64
    assert sorting["indices"].tolist() == [2, 0, 3, 1]  # 0 and 3 tie at 2: ascending id
    assert sorting["forgetting counts"].tolist() == [0, 2, 2, 5]


def test_never_learned_counts_the_epochs_flag(two_runs, tmp_path):
    # Default --epochs 200 with five presentations: never learned still counts 200.
    result = order("--input_dir", two_runs, "--output_dir", tmp_path, "--output_name", "x.pkl")
    assert result.returncode == 0, result.stderr
    sorting = load(tmp_path / "x.pkl")  # '.pkl' not doubled
    assert dict(zip(sorting["indices"].tolist(), sorting["forgetting counts"].tolist())) == {0: 2, 1: 200, 2: 0, 3: 2}


def test_epochs_truncates_presentations(two_runs, tmp_path):
    result = order("--input_dir", two_runs, "--output_dir", tmp_path, "--output_name", "x", "--epochs", 3)
    assert result.returncode == 0, result.stderr
    sorting = load(tmp_path / "x.pkl")
    # first 3 presentations: run 1 -> [1, 3, 0, 0], run 2 -> [0, 3, 0, 1]
    assert sorting["indices"].tolist() == [2, 0, 3, 1]
    assert sorting["forgetting counts"].tolist() == [0, 1, 1, 6]


def test_mli_file_and_removal_hint(two_runs, tmp_path):
    out, mli_dir = tmp_path / "out", tmp_path / "mli"
    result = order("--input_dir", two_runs, "--input_fname_args", "dataset", "mnist", "--output_dir", out,
                   "--output_name", "mnist_sorted.pkl", "--output_dir_MLI", mli_dir, "--epochs", 5)
    assert result.returncode == 0, result.stderr
    mli = load(mli_dir / "mnist_sorted_MLI.pkl")
    assert set(mli) == {"indices", "max loss increase"}
    # means over the two runs: id 0 (2.5 - 0.1) / 2, id 1 (0 + 1) / 2, id 2 (-0.5 + 0) / 2, id 3 (0.5 + 1) / 2
    assert mli["indices"].tolist() == [2, 1, 3, 0]
    assert mli["max loss increase"].dtype == np.float64
    np.testing.assert_allclose(mli["max loss increase"], [-0.25, 0.5, 0.75, 1.2])
    assert f"--input_dir {mli_dir} --sorting_file mnist_sorted_MLI" in result.stdout
    assert (out / "mnist_sorted.pkl").exists()


def test_mli_ties_by_ascending_id(tmp_path):
    run = {5: ([1, 1], [1.0, 2.0]), 2: ([1, 1], [3.0, 4.0]), 9: ([1, 1], [0.0, 0.0])}
    write_stats(tmp_path / "in", stats_name(1), run)
    result = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path, "--output_name", "s",
                   "--output_dir_MLI", tmp_path, "--epochs", 2)
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "s_MLI.pkl")["indices"].tolist() == [9, 2, 5]


def test_filename_filter_seed_1_is_not_seed_11(tmp_path):
    inputs = tmp_path / "in"
    write_stats(inputs, stats_name(1), RUN_SEED_1)
    write_stats(inputs, stats_name(11), RUN_SEED_2)
    write_stats(inputs, stats_name(1, dataset="permuted_mnist"), RUN_SEED_2)
    result = order("--input_dir", inputs, "--input_fname_args", "dataset", "mnist", "seed", "1",
                   "--output_dir", tmp_path, "--output_name", "s", "--epochs", 5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("including file:") == 1
    assert f"including file: {stats_name(1)}" in result.stdout
    assert f"skipping file: {stats_name(11)}" in result.stdout
    assert f"skipping file: {stats_name(1, dataset='permuted_mnist')}" in result.stdout
    sorting = load(tmp_path / "s.pkl")
    assert sorting["indices"].tolist() == [2, 3, 0, 1] and sorting["forgetting counts"].tolist() == [0, 1, 2, 5]


@pytest.mark.parametrize(
    "key, protocol, numpy1",
    [(np.int64, 2, True), (np.int64, 3, True), (np.int64, 5, True), (np.int64, 5, False), (int, 2, False)],
    ids=["np1-p2", "np1-p3", "np1-p5", "np2-p5", "int-p2"],
)
def test_reads_every_stats_layout(tmp_path, key, protocol, numpy1):
    write_stats(tmp_path / "in", stats_name(1), RUN_SEED_1, key=key, protocol=protocol, numpy1=numpy1)
    result = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path, "--output_name", "s", "--epochs", 5)
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "s.pkl")["forgetting counts"].tolist() == [0, 1, 2, 5]


def test_reads_a_real_numpy1_stats_file(tmp_path):
    from test_safe_pickle import STATS_NUMPY1_P2  # written by numpy 1.26

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / stats_name(1)).write_bytes(STATS_NUMPY1_P2)
    result = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path, "--output_name", "s", "--epochs", 3)
    assert result.returncode == 0, result.stderr
    sorting = load(tmp_path / "s.pkl")  # id 0: accs [0, 1, 0] -> 1; id 1: [1, 1, 1] -> 0
    assert sorting["indices"].tolist() == [1, 0] and sorting["forgetting counts"].tolist() == [0, 1]
    assert "Number of unforgettable examples: 1" in result.stdout


def test_no_matching_file_is_an_error(two_runs, tmp_path):
    result = order("--input_dir", two_runs, "--input_fname_args", "dataset", "cifar10",
                   "--output_dir", tmp_path / "out", "--output_name", "s")
    assert_refused(result, f"No input files found in {two_runs} that match ['dataset', 'cifar10']")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--input_fname_args", "dataset", "mnist", "seed"], "name/value pairs"),
        (["--epochs", "0"], "--epochs must be at least 1"),
    ],
)
def test_bad_flags_are_refused(two_runs, tmp_path, extra, fragment):
    result = order("--input_dir", two_runs, "--output_dir", tmp_path / "out", "--output_name", "s", *extra)
    assert_refused(result, fragment)
    assert not (tmp_path / "out").exists()


def test_missing_input_dir_and_file_as_output_dir(tmp_path):
    result = order("--input_dir", tmp_path / "nope", "--output_dir", tmp_path, "--output_name", "s")
    assert_refused(result, f"--input_dir {tmp_path / 'nope'} does not exist")
    (tmp_path / "in").mkdir()
    (tmp_path / "blocker").write_text("")
    result = order("--input_dir", tmp_path / "in", "--output_dir", tmp_path / "blocker", "--output_name", "s")
    assert_refused(result, "exists and is not a directory")


def test_runs_with_different_ids_are_refused(tmp_path):
    inputs = tmp_path / "in"
    write_stats(inputs, stats_name(1), RUN_SEED_1)
    fewer = {k: v for k, v in RUN_SEED_2.items() if k != 3}
    fewer[7] = RUN_SEED_2[3]
    write_stats(inputs, stats_name(2), fewer)
    result = order("--input_dir", inputs, "--output_dir", tmp_path / "out", "--output_name", "s")
    assert_refused(result, stats_name(2), "example ids differ", "1 ids only in this file, 1 only in the first")
    assert not (tmp_path / "out" / "s.pkl").exists()


@pytest.mark.parametrize(
    "content, fragment",
    [
        (lambda: pickle.dumps(stats_dict(RUN_SEED_1))[:-40], "not a complete pickle"),
        (lambda: pickle.dumps({"indices": np.arange(3), "forgetting counts": np.zeros(3)}), "not a complete stats file"),
        (lambda: pickle.dumps([1, 2, 3]), "not a dict"),
        (lambda: pickle.dumps({0: [[0.1], [1]], "train": [[], []]}), "three lists"),
        (lambda: pickle.dumps({0: [[0.1, 0.2], [1, 3], [0.0, 0.0]]}), "not 0 or 1"),
    ],
    ids=["truncated", "sorting-file", "list", "two-lists", "acc-3"],
)
def test_broken_stats_files_are_refused_without_output(tmp_path, content, fragment):
    inputs = tmp_path / "in"
    write_stats(inputs, stats_name(1), RUN_SEED_1)
    (inputs / stats_name(2)).write_bytes(content())  # the second file read is the bad one
    result = order("--input_dir", inputs, "--output_dir", tmp_path / "out", "--output_name", "s")
    assert_refused(result, stats_name(2), fragment)
    assert not (tmp_path / "out").exists()


class RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_hostile_stats_file_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    hostile = stats_dict(RUN_SEED_1)
    hostile["train"] = RunsShell(f"touch {marker}")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / stats_name(1)).write_bytes(pickle.dumps(hostile, protocol=2))
    result = order("--input_dir", inputs, "--output_dir", tmp_path / "out", "--output_name", "s")
    assert_refused(result, stats_name(1), f"refuses to load '{os.system.__module__}.system'")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_help_describes_flags_and_output():
    result = order("--help")
    assert result.returncode == 0
    for flag in ("--input_dir", "--input_fname_args", "--output_dir", "--output_name", "--epochs", "--output_dir_MLI"):
        assert flag in result.stdout
    assert "forgetting counts" in result.stdout and "max loss increase" in result.stdout
