"""Which ids train (docs/training.md#training-set): the sorted removal window, random removal, the sorting
file lookup, and every refusal of a bad sorting file or bad removal flags."""
import os
import pickle

import numpy as np
import pytest

import argparse

from forgetting.data.selection import (check_removal_flags, say_kept_per_class, select_train_ids,
                                       sorting_file_path)
from forgetting.errors import UsageError
from forgetting.files.naming import MNIST_FNAME_FLAGS, save_fname
from helpers import dump_pickle
from pickles import sorting_dict

N = 20


def write_sorting_file(path, indices):
    return dump_pickle(path, sorting_dict(indices))


@pytest.fixture
def sorted_ids():
    return np.random.RandomState(123).permutation(N).astype(np.int64)


@pytest.fixture
def sorting_dir(tmp_path, sorted_ids):
    write_sorting_file(tmp_path / "order.pkl", sorted_ids)
    return tmp_path


def select(input_dir, sorting_file, remove_n, keep_lowest_n, n=N, **kw):
    lines = []
    ids = select_train_ids(n, str(input_dir), sorting_file, remove_n, keep_lowest_n,
                           say=lines.append, **kw)
    return ids, lines


# ----------------------------------------------------------------------------- no removal

def test_no_sorting_file_trains_everything(tmp_path):
    ids, lines = select(tmp_path, "none", 0, 0)
    assert ids.dtype == np.int64
    assert ids.tolist() == list(range(N))
    assert lines == []


# ----------------------------------------------------------------------------- sorted window

@pytest.mark.parametrize("keep_lowest_n,remove_n", [(0, 5), (3, 5), (0, 0), (7, 13), (19, 1), (0, 19)])
def test_sorted_window_removal(sorting_dir, sorted_ids, keep_lowest_n, remove_n):
    ids, lines = select(sorting_dir, "order", remove_n, keep_lowest_n)
    window = set(sorted_ids[keep_lowest_n:keep_lowest_n + remove_n].tolist())
    assert len(window) == remove_n
    assert ids.tolist() == sorted(set(range(N)) - window)   # the complement, ascending
    assert ids.dtype == np.int64
    assert lines == []


def test_sorted_window_from_a_list_of_python_ints(tmp_path, sorted_ids):
    write_sorting_file(tmp_path / "order.pkl", sorted_ids.tolist())
    ids, _ = select(tmp_path, "order", 4, 2)
    assert ids.tolist() == sorted(set(range(N)) - set(sorted_ids[2:6].tolist()))


def test_sorting_file_with_fewer_ids_than_the_dataset(tmp_path):
    """Ids missing from the sorting file are never in the window, so they always train."""
    write_sorting_file(tmp_path / "order.pkl", np.array([9, 3, 14, 0], dtype=np.int64))
    ids, lines = select(tmp_path, "order", 2, 1)
    assert ids.tolist() == sorted(set(range(N)) - {3, 14})
    assert lines == []


@pytest.mark.parametrize("keep_lowest_n,remove_n,removed", [(17, 10, 3), (15, 6, 5), (20, 4, 0), (25, 3, 0)])
def test_window_running_past_the_end(sorting_dir, sorted_ids, keep_lowest_n, remove_n, removed):
    ids, lines = select(sorting_dir, "order", remove_n, keep_lowest_n)
    window = sorted_ids[keep_lowest_n:keep_lowest_n + remove_n].tolist()
    assert len(window) == removed
    assert ids.tolist() == sorted(set(range(N)) - set(window))
    assert len(lines) == 1, lines
    assert "past the end" in lines[0] and f"removing {removed} " in lines[0]


# ----------------------------------------------------------------------------- random removal

@pytest.mark.parametrize("seed", [1, 2, 77])
@pytest.mark.parametrize("remove_n", [0, 1, 7, 19])
@pytest.mark.parametrize("keep_lowest_n", [-1, -5])
def test_random_removal_is_the_first_numpy_draw(tmp_path, seed, remove_n, keep_lowest_n):
    np.random.seed(seed)
    expected = np.random.permutation(N)[:N - remove_n]
    state_after = np.random.get_state()

    np.random.seed(seed)
    ids, _ = select(tmp_path, "none", remove_n, keep_lowest_n)
    assert ids.tolist() == expected.tolist()          # same ids, in the drawn order
    assert ids.dtype == np.int64
    # exactly one draw was taken: the run's next draw (the first epoch's order) is unchanged
    after = np.random.get_state()
    assert after[0] == state_after[0] and np.array_equal(after[1], state_after[1])
    assert after[2:] == state_after[2:]


def test_random_removal_ignores_the_sorting_file(sorting_dir):
    np.random.seed(5)
    expected = np.random.permutation(N)[:N - 6]
    np.random.seed(5)
    ids, _ = select(sorting_dir, "order", 6, -1)
    assert ids.tolist() == expected.tolist()


def test_remove_subsample(sorting_dir, sorted_ids):
    """CIFAR's remove_subsample: a random part of the lowest ids, then the rest in sorted order."""
    np.random.seed(3)
    lowest = sorted_ids[:8]
    expected = lowest[np.random.permutation(8)[:8 - 3]].tolist() + sorted_ids[8:].tolist()
    np.random.seed(3)
    ids, _ = select(sorting_dir, "order", 0, 8, remove_subsample=3)
    assert ids.tolist() == expected


# ----------------------------------------------------------------------------- per class

def kept_line(labels, num_classes, ids, sorting_file, keep_lowest_n):
    lines = []
    say_kept_per_class(np.array(labels), num_classes, ids, sorting_file, keep_lowest_n, say=lines.append)
    return lines


@pytest.mark.parametrize("sorting_file,keep_lowest_n", [("order", 0), ("order", 5), ("none", -1), ("order", -1)])
def test_a_removal_run_says_what_it_keeps_of_each_class(sorting_file, keep_lowest_n):
    labels = np.random.RandomState(4).randint(0, 3, size=N)
    ids = np.array([3, 0, 7, 12, 19, 5])
    kept = [sum(1 for i in ids if labels[i] == c) for c in range(4)]
    total = [sum(1 for label in labels if label == c) for c in range(4)]
    assert kept_line(labels, 4, ids, sorting_file, keep_lowest_n) == [
        f"keeping 6 of {N} examples, per class (kept/all): 0:{kept[0]}/{total[0]} "
        f"1:{kept[1]}/{total[1]} 2:{kept[2]}/{total[2]} 3:0/0"]


def test_a_run_without_removal_says_nothing_per_class():
    assert kept_line(np.zeros(N, dtype=np.int64), 10, np.arange(N), "none", 0) == []


# ----------------------------------------------------------------------------- finding the file

def test_sorting_file_with_and_without_pkl(tmp_path, sorted_ids):
    write_sorting_file(tmp_path / "a.pkl", sorted_ids)
    write_sorting_file(tmp_path / "bare_name", sorted_ids[::-1].copy())
    assert sorting_file_path(str(tmp_path), "a") == str(tmp_path / "a.pkl")
    assert sorting_file_path(str(tmp_path), "a.pkl") == str(tmp_path / "a.pkl")
    assert sorting_file_path(str(tmp_path), "bare_name") == str(tmp_path / "bare_name")
    expected = sorted(set(range(N)) - set(sorted_ids[:5].tolist()))
    assert select(tmp_path, "a", 5, 0)[0].tolist() == expected
    assert select(tmp_path, "a.pkl", 5, 0)[0].tolist() == expected
    assert select(tmp_path, "bare_name", 5, 0)[0].tolist() == sorted(
        set(range(N)) - set(sorted_ids[::-1][:5].tolist()))


def test_pkl_name_wins_over_the_bare_name(tmp_path, sorted_ids):
    write_sorting_file(tmp_path / "x.pkl", sorted_ids)
    write_sorting_file(tmp_path / "x", sorted_ids[::-1].copy())
    assert sorting_file_path(str(tmp_path), "x") == str(tmp_path / "x.pkl")
    assert select(tmp_path, "x", 3, 0)[0].tolist() == sorted(set(range(N)) - set(sorted_ids[:3].tolist()))


def mnist_name(sorting_file):
    args = argparse.Namespace(dataset="mnist", no_dropout=True, seed=1, sorting_file=sorting_file,
                              remove_n=5, keep_lowest_n=0)
    return save_fname(args, MNIST_FNAME_FLAGS)


def test_a_path_is_read_as_given_and_the_run_named_by_the_files_name(tmp_path, monkeypatch,
                                                                     sorted_ids):
    (tmp_path / "results").mkdir()
    write_sorting_file(tmp_path / "results" / "srt.pkl", sorted_ids)
    monkeypatch.chdir(tmp_path)
    by_name = select(tmp_path / "results", "srt", 5, 0)[0].tolist()  # the original's usage
    assert by_name == sorted(set(range(N)) - set(sorted_ids[:5].tolist()))
    for given in ("results/srt.pkl", "results/srt", "./results/srt.pkl",
                  str(tmp_path / "results" / "srt.pkl"), str(tmp_path / "results" / "srt")):
        # --input_dir is the scripts' default, where no such file is
        assert os.path.samefile(sorting_file_path("mnist_results/", given), "results/srt.pkl")
        assert select("mnist_results/", given, 5, 0)[0].tolist() == by_name
        assert mnist_name(given) == mnist_name("srt") == (
            "dataset_mnist__no_dropout_True__seed_1__sorting_file_srt__remove_n_5__keep_lowest_n_0")


def test_plain_names_keep_the_originals_lookup_and_file_names(tmp_path, monkeypatch, sorted_ids):
    # a same-named file in the working directory does not displace the original's lookup
    (tmp_path / "input").mkdir()
    write_sorting_file(tmp_path / "input" / "x.pkl", sorted_ids)
    write_sorting_file(tmp_path / "x.pkl", sorted_ids[::-1].copy())
    monkeypatch.chdir(tmp_path)
    assert sorting_file_path("input", "x") == os.path.join("input", "x.pkl")
    assert sorting_file_path("input", "x.pkl") == os.path.join("input", "x.pkl")
    assert sorting_file_path("elsewhere", "x") == "x.pkl"  # only when the original finds none
    assert mnist_name("x").endswith("__sorting_file_x__remove_n_5__keep_lowest_n_0")
    assert mnist_name("x.pkl").endswith("__sorting_file_x.pkl__remove_n_5__keep_lowest_n_0")
    assert mnist_name("none").endswith("__sorting_file_none__remove_n_5__keep_lowest_n_0")


def test_a_missing_path_names_every_path_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refused("mnist_results/", "results/srt.pkl")
    assert "not found" in message
    for tried in ("results/srt.pkl", "results/srt.pkl.pkl", "mnist_results/results/srt.pkl.pkl",
                  "mnist_results/results/srt.pkl"):
        assert tried + "," in message or tried + ";" in message, message


# ----------------------------------------------------------------------------- refusals

def refused(input_dir, sorting_file, remove_n=1, keep_lowest_n=0, n=N):
    """The refusal of the scripts' two steps: the flags (before loading data), then the data."""
    with pytest.raises(UsageError) as info:
        check_removal_flags(remove_n, keep_lowest_n, sorting_file)
        select_train_ids(n, str(input_dir), sorting_file, remove_n, keep_lowest_n, say=lambda m: None)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_sorting_file(tmp_path):
    message = refused(tmp_path, "nope")
    assert "not found" in message
    assert str(tmp_path / "nope.pkl") in message and str(tmp_path / "nope") in message
    assert "--sorting_file" in message


def test_missing_sorting_file_directory_is_not_a_file(tmp_path):
    (tmp_path / "adir").mkdir()
    assert "not found" in refused(tmp_path, "adir")


def test_no_indices(tmp_path):
    with open(tmp_path / "s.pkl", "wb") as handle:
        pickle.dump({"forgetting counts": np.zeros(3)}, handle)
    message = refused(tmp_path, "s")
    assert "'indices'" in message and str(tmp_path / "s.pkl") in message


def test_not_a_dict(tmp_path):
    with open(tmp_path / "s.pkl", "wb") as handle:
        pickle.dump(list(range(N)), handle)
    assert "'indices'" in refused(tmp_path, "s")


def test_indices_not_integers(tmp_path):
    write_sorting_file(tmp_path / "s.pkl", np.linspace(0, 1, 5))
    assert "integer" in refused(tmp_path, "s")


@pytest.mark.parametrize("bad", [N, N + 100, -1])
def test_out_of_range_ids(tmp_path, sorted_ids, bad):
    indices = sorted_ids.copy()
    indices[-1] = bad          # far outside any window used below
    write_sorting_file(tmp_path / "s.pkl", indices)
    message = refused(tmp_path, "s", remove_n=2, keep_lowest_n=0)
    assert f"outside 0..{N - 1}" in message and str(bad) in message


@pytest.mark.parametrize("first,second", [(0, 1), (N - 2, N - 1), (3, 17)])
def test_repeated_ids_anywhere(tmp_path, sorted_ids, first, second):
    indices = sorted_ids.copy()
    indices[second] = indices[first]
    write_sorting_file(tmp_path / "s.pkl", indices)
    message = refused(tmp_path, "s", remove_n=1, keep_lowest_n=5)   # window does not touch them
    assert "more than once" in message and str(indices[first]) in message


def test_corrupt_sorting_file(tmp_path, sorted_ids):
    data = pickle.dumps({"indices": sorted_ids})
    (tmp_path / "s.pkl").write_bytes(data[: len(data) // 2])
    assert str(tmp_path / "s.pkl") in refused(tmp_path, "s")


def test_sorting_file_that_would_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "s.pkl", "wb") as handle:
        pickle.dump({"indices": Evil()}, handle)
    assert "builtins.print" in refused(tmp_path, "s")


@pytest.mark.parametrize("keep_lowest_n", [0, -1])
def test_negative_remove_n(sorting_dir, keep_lowest_n):
    message = refused(sorting_dir, "order", remove_n=-1, keep_lowest_n=keep_lowest_n)
    assert "--remove_n" in message and "-1" in message
    with pytest.raises(UsageError, match="--remove_n"):
        check_removal_flags(-3, 0, "none")


def test_empty_training_set_sorted(sorting_dir):
    message = refused(sorting_dir, "order", remove_n=N, keep_lowest_n=0)
    assert "no training examples" in message


@pytest.mark.parametrize("remove_n", [N, N + 5])
def test_empty_training_set_random(tmp_path, remove_n):
    message = refused(tmp_path, "none", remove_n=remove_n, keep_lowest_n=-1)
    assert "--remove_n" in message and "whole training set" in message
