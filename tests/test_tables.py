"""forgetting.load_stats / forgetting.load_sorting: stats and sorting files as pandas frames,
checked against rows built by a plain loop over the dict; and the package import stays light."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import forgetting
from forgetting.errors import UsageError
from forgetting.scores.stats_arrays import StatsFormatError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stats_file(tmp_path, stats, name="run__stats_dict.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(stats, protocol=2))
    return str(path)


def rows_by_loop(stats):
    rows = []
    for example_id in sorted(k for k in stats if not isinstance(k, str)):
        losses, accs, margins = stats[example_id]
        for presentation, (loss, acc, margin) in enumerate(zip(losses, accs, margins)):
            rows.append((int(example_id), presentation, float(loss), int(acc), float(margin)))
    return rows


def random_stats(n, epochs, seed, key=int, ragged=False):
    rng = np.random.RandomState(seed)
    stats = {"train": [[], [10.0, 20.0]], "test": [[], [30.0]]}
    for example_id in rng.permutation(n):   # the original's files: first-presentation order
        p = rng.randint(0, epochs + 1) if ragged else epochs
        stats[key(example_id)] = [rng.rand(p).tolist(), rng.randint(0, 2, p).tolist(), rng.randn(p).tolist()]
    return stats


@pytest.mark.parametrize("key, ragged", [(int, False), (np.int64, False), (int, True)])
def test_load_stats_is_the_dict_in_long_form(tmp_path, key, ragged):
    stats = random_stats(50, 7, seed=1, key=key, ragged=ragged)
    # ragged: a sampled run, which its name says (a uniform run's must not be: test below)
    name = "run__sampling_sgd_s__stats_dict.pkl" if ragged else "run__stats_dict.pkl"
    frame = forgetting.load_stats(stats_file(tmp_path, stats, name))
    assert list(frame.columns) == ["example_id", "presentation", "loss", "acc", "margin"]
    assert [str(t) for t in frame.dtypes] == ["int64", "int64", "float64", "int8", "float64"]
    assert list(frame.itertuples(index=False, name=None)) == rows_by_loop(stats)


def test_load_stats_of_a_training_run(tmp_path):
    """The pickle the training scripts write, through the package's encoder."""
    from forgetting.files.stats_log import record_dtype
    from forgetting.files.stats_pickle import build_stats_dict, encode_stats_pickle
    rng = np.random.RandomState(0)
    epochs, ids = 3, np.array([4, 0, 9, 2])
    records = np.zeros(epochs, dtype=record_dtype(4, 2))
    records["loss"] = rng.rand(epochs, 4)
    records["acc"] = rng.randint(0, 2, (epochs, 4))
    records["margin"] = rng.randn(epochs, 4)
    path = tmp_path / "x__stats_dict.pkl"
    with open(path, "wb") as handle:
        encode_stats_pickle(ids, records, handle.write)
    frame = forgetting.load_stats(str(path))
    assert list(frame.itertuples(index=False, name=None)) == rows_by_loop(build_stats_dict(ids, records))


def test_load_sorting(tmp_path):
    ids, counts = np.array([3, 0, 2, 1], dtype=np.int64), np.array([0, 0, 1, 5], dtype=np.int64)
    path = tmp_path / "sorted.pkl"
    path.write_bytes(pickle.dumps({"indices": ids, "forgetting counts": counts}))
    frame = forgetting.load_sorting(str(path))
    assert list(frame.columns) == ["rank", "example_id", "forgetting counts"]
    assert frame.to_dict("list") == {"rank": [0, 1, 2, 3], "example_id": [3, 0, 2, 1],
                                     "forgetting counts": [0, 0, 1, 5]}
    mli = tmp_path / "sorted_MLI.pkl"
    mli.write_bytes(pickle.dumps({"indices": [1, 0], "max loss increase": np.array([0.5, 2.0])}))
    frame = forgetting.load_sorting(str(mli))
    assert frame["max loss increase"].tolist() == [0.5, 2.0] and frame["example_id"].dtype == np.int64


@pytest.mark.slow
def test_load_sorting_of_the_ordering_script(tmp_path):
    """End to end: two runs -> order_examples_by_forgetting.py -> the frame."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed in (1, 2):
        stats_file(runs, random_stats(30, 6, seed=seed), f"a__seed_{seed}__stats_dict.pkl")
    result = subprocess.run([sys.executable, "order_examples_by_forgetting.py", "--input_dir", str(runs),
                             "--output_dir", str(tmp_path), "--output_name", "order", "--epochs", "6"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "order.pkl", "rb") as handle:
        plain = pickle.load(handle)
    frame = forgetting.load_sorting(str(tmp_path / "order.pkl"))
    np.testing.assert_array_equal(frame["example_id"], plain["indices"])
    np.testing.assert_array_equal(frame["forgetting counts"], plain["forgetting counts"])
    assert frame["rank"].tolist() == list(range(30))


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_both_go_through_the_restricted_loader(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"indices": [0], "x": Exploit()}))
    for load in (forgetting.load_stats, forgetting.load_sorting):
        with pytest.raises(UsageError, match="refuses to load 'posix.system'|refuses to load 'nt.system'"):
            load(str(path))


def test_wrong_kind_of_file(tmp_path):
    sorting = tmp_path / "sorted.pkl"
    sorting.write_bytes(pickle.dumps({"indices": np.arange(3), "forgetting counts": np.zeros(3)}))
    with pytest.raises(StatsFormatError, match="sorted.pkl: not a stats file"):
        forgetting.load_stats(str(sorting))
    stats = stats_file(tmp_path, random_stats(3, 2, seed=0))
    with pytest.raises(ValueError, match="not a sorting file"):
        forgetting.load_sorting(stats)


def test_a_stats_file_that_does_not_add_up_is_refused(tmp_path):
    """Issue 20, item 7: a uniform run (no sampling_ in its name) presents every example once
    per epoch; accuracies are 0/1, train/test accuracies percentages. One-line refusals."""
    stats = random_stats(5, 6, seed=0)
    first = next(k for k in stats if not isinstance(k, str))
    one_short = {**stats, first: [[0.5], [1], [0.1]]}
    with pytest.raises(StatsFormatError, match=r"example \d+ has (1|6) presentations but example \d+ "
                                               r"has (6|1); a run without --sampling"):
        forgetting.load_stats(stats_file(tmp_path, one_short))
    forgetting.load_stats(stats_file(tmp_path, one_short, "run__sampling_infobatch__stats_dict.pkl"))
    cases = [
        ({**stats, first: [[0.5] * 6, [1, 0, 2, 1, 1, 1], [0.1] * 6]}, "an accuracy is not 0 or 1"),
        ({**stats, first: [[0.5] * 6, [1, 0, float("nan"), 1, 1, 1], [0.1] * 6]},
         "an accuracy is not 0 or 1"),
        ({**stats, "test": [[], [30.0, float("nan")]]}, r"'test' accuracy nan \(entry 1\)"),
        ({**stats, "train": [[], [10.0, 100.5]]}, r"'train' accuracy 100.5 \(entry 1\) is not a percentage"),
        ({**stats, "train": [[], -1.0]}, r"'train' entry is not \[\[\], accuracies\]"),
    ]
    for content, needle in cases:
        with pytest.raises(StatsFormatError, match=needle) as err:
            forgetting.load_stats(stats_file(tmp_path, content))
        assert "\n" not in str(err.value)
    # NaN losses and margins are a diverged run's, not a broken file
    diverged = {**stats, first: [[float("nan")] * 6, [0] * 6, [float("inf")] * 6]}
    assert len(forgetting.load_stats(stats_file(tmp_path, diverged))) == 30


def sorting_file(tmp_path, content):
    path = tmp_path / "sorted.pkl"
    path.write_bytes(pickle.dumps(content))
    return str(path)


@pytest.mark.parametrize("content, needle", [
    ({"indices": np.arange(4000), "forgetting counts": np.zeros(10, dtype=np.int64)},
     "'forgetting counts' hold 10 values for 4000 ids"),
    ({"indices": np.array([0.0, 1.5, 2.0]), "forgetting counts": np.zeros(3)},
     "'indices' are float64 values, not integer example ids"),
    ({"indices": np.array([3, 1, 3]), "forgetting counts": np.zeros(3)},
     "example id 3 appears 2 times"),
    ({"indices": np.array([0, -1, 2]), "forgetting counts": np.zeros(3)},
     r"negative example id \(-1\)"),
    ({"indices": np.array([0, "a", None], dtype=object), "forgetting counts": np.zeros(3)},
     "'indices' entry is not a flat list of numbers"),
    ({"indices": [0, 1, 2], "forgetting counts": [0, [1], 2]},
     "'forgetting counts' entry is not a flat list of numbers"),
    ({"indices": ["7" * 1000] * 3000, "forgetting counts": []},  # 12 MB as a numpy string array
     "'indices' entry is not a flat list of numbers"),
])
def test_a_sorting_file_that_does_not_add_up_is_refused(tmp_path, content, needle):
    """Issue 20, item 7: load_sorting dropped a column of the wrong length, truncated float
    ids, kept duplicates and gave a bare ValueError for an object array."""
    with pytest.raises(ValueError, match=needle) as err:
        forgetting.load_sorting(sorting_file(tmp_path, content))
    assert "sorted.pkl" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_importing_the_package_imports_neither_pandas_nor_torch():
    code = ("import sys, forgetting; print(sorted(m for m in ('numpy', 'pandas', 'torch') if m in sys.modules)); "
            "forgetting.load_stats; print('pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout == "[]\nFalse\n", result.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        forgetting.nothing  # noqa: B018
