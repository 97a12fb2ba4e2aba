"""Property-based tests of the ordering CLI and of sorting-file reading (issue 5):

- random acc/loss histories over several runs, written as stats files the way the training
  scripts (or the original ones) write them, through ``order_examples_by_forgetting.main``:
  the sorting and MLI files equal a plain-loop oracle;
- random truncated or garbled stats files, and well-formed pickles of the wrong shape, never
  crash: the script either succeeds or exits 2 with one ``error:`` line and writes nothing;
- the same for sorting files read by the training scripts' selection step.

(tests/test_scores.py checks the vectorised scores against the loop at the library level,
tests/test_safe_pickle.py the loader on damaged bytes; these go through the script.)
"""
import os
import pickle
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import order_examples_by_forgetting
from forgetting.errors import UsageError
from forgetting.data.selection import select_train_ids
from damage import damaged
from reliability_helpers import call_main

STATS_NAME = "dataset_x__seed_{seed}__stats_dict.pkl"


# ----------------------------------------------------------------------------- the oracle

def oracle_counts(accs, epochs):
    window = accs[:epochs]
    if 1 not in window:
        return epochs
    return sum(1 for t in range(1, len(window)) if window[t - 1] == 1 and window[t] == 0)


def oracle_mli(losses, epochs):
    window = losses[:epochs]
    if len(window) < 2:
        return 0.0
    best = window[1] - window[0]
    for t in range(2, len(window)):
        best = max(best, window[t] - window[t - 1])
    return best


def oracle_sorted(scores):
    ids = sorted(scores, key=lambda i: (scores[i], i))
    return ids, [scores[i] for i in ids]


# ----------------------------------------------------------------------------- writing runs

def stats_bytes(histories, key, protocol):
    """A stats pickle: {id: [losses, accs, margins]} plus 'train'/'test', keys shuffled."""
    stats = {"train": [[], [50.0]], "test": [[], [60.0]]}
    for example_id, (accs, losses) in histories.items():
        stats[key(example_id)] = [list(losses), list(accs), [0.0] * len(accs)]
    return pickle.dumps(stats, protocol=protocol)


@st.composite
def several_runs(draw):
    ids = draw(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=8, unique=True))
    n_runs = draw(st.integers(1, 4))
    epochs = draw(st.integers(1, 10))
    ragged = draw(st.booleans())
    runs = []
    for _ in range(n_runs):
        common = draw(st.integers(0, 10))
        histories = {}
        for example_id in draw(st.permutations(ids)):
            length = draw(st.integers(0, 10)) if ragged else common
            accs = draw(st.lists(st.integers(0, 1), min_size=length, max_size=length))
            losses = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=length,
                                   max_size=length))
            histories[example_id] = (accs, losses)
        runs.append((histories, draw(st.sampled_from([int, np.int64])), draw(st.sampled_from([2, 4, 5]))))
    return runs, epochs


def order(directory, epochs):
    """Run the script on ``directory/runs``: (exit code, stdout, stderr)."""
    return call_main(order_examples_by_forgetting.main, [
        "--input_dir", os.path.join(directory, "runs"), "--output_dir", os.path.join(directory, "out"),
        "--output_name", "sorted", "--output_dir_MLI", os.path.join(directory, "mli"),
        "--epochs", epochs])


def write_runs(directory, blobs):
    os.makedirs(os.path.join(directory, "runs"))
    for seed, blob in enumerate(blobs, start=1):
        with open(os.path.join(directory, "runs", STATS_NAME.format(seed=seed)), "wb") as handle:
            handle.write(blob)


def load(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


@settings(max_examples=80, deadline=None)
@given(several_runs())
def test_the_script_matches_the_plain_loop(case):
    runs, epochs = case
    with tempfile.TemporaryDirectory() as directory:
        write_runs(directory, [stats_bytes(h, key, protocol) for h, key, protocol in runs])
        code, stdout, stderr = order(directory, epochs)
        assert code == 0, stderr
        result = load(os.path.join(directory, "out", "sorted.pkl"))
        mli = load(os.path.join(directory, "mli", "sorted_MLI.pkl"))

    ids = list(runs[0][0])
    counts = {i: 0 for i in ids}
    mli_sum = {i: 0.0 for i in ids}
    for index, (histories, _, _) in enumerate(runs):  # files are read in name order: seed 1, 2...
        for i in ids:
            accs, losses = histories[i]
            counts[i] += oracle_counts(accs, epochs)
            mli_sum[i] = oracle_mli(losses, epochs) if index == 0 else mli_sum[i] + oracle_mli(losses, epochs)
    expected_ids, expected_counts = oracle_sorted(counts)
    assert result["indices"].tolist() == expected_ids
    assert result["forgetting counts"].tolist() == expected_counts
    assert result["indices"].dtype == np.int64 and result["forgetting counts"].dtype == np.int64
    expected_mli_ids, expected_mli = oracle_sorted({i: mli_sum[i] / len(runs) for i in ids})
    assert mli["indices"].tolist() == expected_mli_ids
    assert mli["max loss increase"].tolist() == expected_mli
    assert f"Number of unforgettable examples: {sum(c == 0 for c in counts.values())}" in stdout


# ----------------------------------------------------------------------------- damaged files

GOOD_RUN = {i: ([1, 0, 1, 1][: 1 + i % 4], [0.5, 1.5, 0.2, 0.1][: 1 + i % 4]) for i in range(6)}
BASES = [stats_bytes(GOOD_RUN, key, protocol) for key in (int, np.int64) for protocol in (2, 5)]


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10 ** 20) | st.floats() | st.text(max_size=3)
    | st.binary(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.integers(-2, 8) | st.text(max_size=2), inner, max_size=4),
    max_leaves=12)


@st.composite
def wrong_shapes(draw):
    """Loadable pickles that are not quite stats files: random values in random places."""
    stats = {i: [list(losses), list(accs), [0.0] * len(accs)] for i, (accs, losses) in GOOD_RUN.items()}
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(stats, dict):  # replaced as a whole already
            break
        where = draw(st.sampled_from(["key", "record", "part", "item", "whole"]))
        value = draw(plain_values)
        i = draw(st.integers(0, 5))
        if where == "key":
            stats[draw(plain_values.filter(lambda v: isinstance(v, (int, float, str, bytes, tuple))
                                           and _hashable(v)))] = stats.get(i)
        elif where == "record" and i in stats:
            stats[i] = value
        elif where == "part" and isinstance(stats.get(i), list) and stats[i]:
            stats[i][draw(st.integers(0, len(stats[i]) - 1))] = value
        elif where == "item" and isinstance(stats.get(i), list) and stats[i] and isinstance(stats[i][0], list):
            stats[i][0].append(value)
        elif where == "whole":
            stats = value
    return pickle.dumps(stats, protocol=draw(st.sampled_from([2, 5])))


def _hashable(value):
    try:
        hash(value)
        return True
    except TypeError:
        return False


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(damaged(BASES), wrong_shapes()), first=st.booleans())
def test_damaged_stats_files_never_crash_the_script(memory_cap, bad, first):
    good = BASES[0]
    with tempfile.TemporaryDirectory() as directory:
        write_runs(directory, [bad, good] if first else [good, bad])
        code, _, stderr = order(directory, 4)   # any other exception fails the test
        if code == 0:
            assert load(os.path.join(directory, "out", "sorted.pkl"))["indices"].dtype == np.int64
        else:
            assert code == 2 and "Traceback" not in stderr
            lines = stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), stderr
            assert not os.path.exists(os.path.join(directory, "out"))
            assert not os.path.exists(os.path.join(directory, "mli"))


SORTING = [pickle.dumps({"indices": np.random.RandomState(1).permutation(40), "forgetting counts":
                         np.zeros(40, dtype=np.int64)}, protocol=p) for p in (2, 5)]


@st.composite
def damaged_sorting(draw):
    data = bytearray(draw(st.sampled_from(SORTING)))
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(damaged_sorting(), plain_values.map(lambda v: pickle.dumps({"indices": v}))),
       remove_n=st.integers(0, 60), keep_lowest_n=st.integers(0, 45))
def test_damaged_sorting_files_are_used_or_refused_never_crash(memory_cap, bad, remove_n, keep_lowest_n):
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "order.pkl"), "wb") as handle:
            handle.write(bad)
        try:
            ids = select_train_ids(40, directory, "order", remove_n, keep_lowest_n, say=lambda _: None)
        except UsageError as err:
            assert "\n" not in str(err)
            return
    assert ids.dtype == np.int64 and len(ids) > 0
    assert len(set(ids.tolist())) == len(ids) and ids.min() >= 0 and ids.max() < 40
