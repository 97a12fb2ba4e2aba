"""Forgetting counts and Max Loss Increase (docs/scores.md), checked against a
plain-Python oracle that walks each example's history one presentation at a time
(tests/oracles.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgetting.scores import (
    StatsFormatError,
    forgetting_counts,
    max_loss_increase,
    sort_by_score,
    stats_to_arrays,
)
from oracles import oracle_forgetting, oracle_mli, oracle_order
from pickles import stats_dict
from strategies import several_runs


# ---------------------------------------------------------------- hand-worked cases


def assert_one_row(score, oracle, history, dtype, epochs, expected, score_dtype):
    """The hand-worked ``expected`` is the oracle's, and the score's on a one-row matrix."""
    assert oracle(history, epochs) == expected
    scores = score(np.array([history], dtype=dtype).reshape(1, len(history)), epochs)
    assert scores.dtype == score_dtype
    assert scores.tolist() == [expected]


@pytest.mark.parametrize(
    "accs, epochs, expected",
    [
        ([0, 1, 0, 1, 1, 0], 6, 2),  # two 1 -> 0 transitions
        ([1, 1, 1, 1], 4, 0),  # learned at once, never forgotten
        ([0, 0, 1, 1], 4, 0),  # a misclassification before learning is not forgetting
        ([1, 0, 0, 0], 4, 1),  # staying wrong is one event, not three
        ([0, 0, 0], 3, 3),  # never learned: counts epochs
        ([0, 0, 0], 200, 200),  # never learned counts the flag value, not the run length
        ([0, 0, 1], 2, 2),  # learned only after the window: never learned within it
        ([1, 0, 1, 0], 2, 1),  # truncation drops the later event
        ([1, 0, 1, 0], 3, 1),
        ([], 5, 5),  # no presentation at all: never learned
    ],
)
def test_forgetting_counts_hand_worked(accs, epochs, expected):
    assert_one_row(forgetting_counts, oracle_forgetting, accs, np.int8, epochs, expected, np.int64)


def test_forgetting_counts_many_rows_and_bools():
    accs = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0]])
    assert forgetting_counts(accs, 4).tolist() == [2, 4, 0, 1]
    assert forgetting_counts(accs.astype(bool), 4).tolist() == [2, 4, 0, 1]
    assert forgetting_counts(accs, 2).tolist() == [1, 2, 0, 0]


def test_forgetting_counts_with_lengths_ignores_padding():
    # Row 0 has 2 real presentations [1, 0]; the padded zeros must not add events.
    accs = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    lengths = np.array([2, 2, 0])
    assert forgetting_counts(accs, 4, lengths).tolist() == [1, 0, 4]


@pytest.mark.parametrize(
    "losses, epochs, expected",
    [
        ([1.0, 3.0, 2.0, 5.0], 4, 3.0),
        ([3.0, 2.0, 1.0], 3, -1.0),  # always decreasing: the largest rise is negative
        ([5.0], 1, 0.0),  # one presentation
        ([], 3, 0.0),
        ([1.0, 2.0, 10.0], 2, 1.0),  # truncation
        ([1.0, 2.0, 10.0], 100, 8.0),
    ],
)
def test_max_loss_increase_hand_worked(losses, epochs, expected):
    assert_one_row(max_loss_increase, oracle_mli, losses, np.float64, epochs, expected, np.float64)


def test_max_loss_increase_with_lengths_and_nan():
    losses = np.array([[3.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, np.nan, 2.0, 3.0]])
    scores = max_loss_increase(losses, 4, np.array([2, 1, 4]))
    assert scores[0] == -1.0  # padding after the real 2 presentations is not a rise
    assert scores[1] == 0.0
    assert math.isnan(scores[2])


def test_sort_by_score_ties_by_ascending_id():
    ids, scores = sort_by_score([5, 3, 9, 1, 7], [1, 0, 1, 0, 0])
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 3, 7, 5, 9]
    assert scores.tolist() == [0, 0, 0, 1, 1]


def test_sort_by_score_floats_and_nan_last():
    ids, scores = sort_by_score(np.array([2, 0, 1]), np.array([np.nan, 0.5, -0.5]))
    assert ids.tolist() == [1, 0, 2]
    assert scores[:2].tolist() == [-0.5, 0.5] and math.isnan(scores[2])


# ---------------------------------------------------------------- stats dicts


@pytest.mark.parametrize("key", [int, np.int64])
def test_stats_to_arrays_layouts(key):
    histories = {3: ([1, 0, 1], [0.5, 0.9, 0.2]), 0: ([0, 0, 0], [2.0, 2.1, 2.2]), 7: ([1, 1, 1], [0.1, 0.1, 0.1])}
    run = stats_to_arrays(stats_dict(histories, key=key, shuffle_seed=0), epochs=200)
    assert run.ids.dtype == np.int64 and run.ids.tolist() == [0, 3, 7]
    assert run.accs.tolist() == [[0, 0, 0], [1, 0, 1], [1, 1, 1]]
    assert run.losses.tolist() == [[2.0, 2.1, 2.2], [0.5, 0.9, 0.2], [0.1, 0.1, 0.1]]
    assert run.lengths.tolist() == [3, 3, 3]
    truncated = stats_to_arrays(stats_dict(histories, key=key, shuffle_seed=0), epochs=2, with_losses=False)
    assert truncated.accs.shape == (3, 2) and truncated.losses is None
    assert forgetting_counts(truncated.accs, 2, truncated.lengths).tolist() == [2, 1, 0]


def test_stats_to_arrays_ragged_matches_loop():
    histories = {0: ([1, 0], [1.0, 2.0]), 1: ([0, 1, 0, 1], [4.0, 3.0, 5.0, 1.0]), 2: ([], []), 3: ([1], [9.0])}
    run = stats_to_arrays(stats_dict(histories, shuffle_seed=0), epochs=3)
    assert run.lengths.tolist() == [2, 3, 0, 1]
    expected_counts = [oracle_forgetting(histories[i][0], 3) for i in range(4)]
    expected_mli = [oracle_mli(histories[i][1], 3) for i in range(4)]
    assert forgetting_counts(run.accs, 3, run.lengths).tolist() == expected_counts == [1, 1, 3, 0]
    assert max_loss_increase(run.losses, 3, run.lengths).tolist() == expected_mli == [1.0, 2.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "stats, message",
    [
        ([1, 2, 3], "not a dict"),
        ({"train": [[], []], "test": [[], []]}, "no example ids"),
        ({0: [[0.1], [1]]}, "three lists"),
        ({0: "abc"}, "three lists"),
        ({0: [[0.1], 1, [0.0]]}, "three lists"),
        ({0: [[0.1], [2], [0.0]]}, "not 0 or 1"),
        ({0: [[0.1], ["x"], [0.0]]}, "not all plain numbers"),
        ({0: [[0.1], [[1, 0]], [0.0]]}, "not all plain numbers"),
        ({0: [[0.1, 0.2], [1], [0.0]]}, "1 accuracies"),
        ({1.5: [[0.1], [1], [0.0]]}, "neither an example id"),
        ({2**70: [[0.1], [1], [0.0]]}, "64 bits"),
    ],
)
def test_stats_to_arrays_refuses_malformed(stats, message):
    with pytest.raises(StatsFormatError, match=message):
        stats_to_arrays(stats, epochs=10)


@pytest.mark.parametrize("accs", [[1, 2], [1, float("nan")], [0.5, 1]])
def test_accuracies_are_checked_even_when_not_built(accs):
    """Issue 20, item 7: the loss-based scores (with_accs=False) took any accuracies."""
    stats = {0: [[0.1, 0.2], accs, [0.0, 0.0]], 1: [[0.3, 0.4], [1, 1], [0.0, 0.0]]}
    with pytest.raises(StatsFormatError, match="not 0 or 1"):
        stats_to_arrays(stats, epochs=2, with_accs=False, with_losses=True)


def test_a_uniform_run_is_even_and_long_enough():
    histories = {0: ([1, 0, 1], [0.1] * 3), 1: ([1] * 3, [0.2] * 3)}
    assert stats_to_arrays(stats_dict(histories), epochs=3, sampled=False).lengths.tolist() == [3, 3]
    with pytest.raises(StatsFormatError, match="4 presentations asked for, but the run holds 3 per example"):
        stats_to_arrays(stats_dict(histories), epochs=4, sampled=False)
    ragged = {0: ([1], [0.1]), 1: ([1] * 6, [0.2] * 6)}
    with pytest.raises(StatsFormatError, match="example 1 has 6 presentations but example 0 has 1"):
        stats_to_arrays(stats_dict(ragged), epochs=1, sampled=False)
    for sampled in (True, None):  # ragged by design; the original's API never checked
        assert stats_to_arrays(stats_dict(ragged), epochs=8, sampled=sampled).lengths.tolist() == [1, 6]


# ---------------------------------------------------------------- random histories


@settings(max_examples=150, deadline=None)
@given(several_runs(), st.sampled_from([int, np.int64]))
def test_vectorised_scores_match_the_loop(case, key):
    runs, epochs = case
    total_counts = mli_sum = ids = None
    for histories in runs:
        run = stats_to_arrays(stats_dict(histories, key=key, shuffle_seed=0), epochs)
        counts = forgetting_counts(run.accs, epochs, run.lengths)
        mli = max_loss_increase(run.losses, epochs, run.lengths)
        if ids is None:
            ids, total_counts, mli_sum = run.ids, counts, mli
        else:
            assert run.ids.tolist() == ids.tolist()
            total_counts = total_counts + counts
            mli_sum = mli_sum + mli
    expected_counts = {i: sum(oracle_forgetting(h[i][0], epochs) for h in runs) for i in runs[0]}
    expected_mli = {i: sum(oracle_mli(h[i][1], epochs) for h in runs) / len(runs) for i in runs[0]}
    assert ids.tolist() == sorted(runs[0])
    assert total_counts.tolist() == [expected_counts[i] for i in ids.tolist()]
    np.testing.assert_allclose(mli_sum / len(runs), [expected_mli[i] for i in ids.tolist()], rtol=1e-12, atol=1e-9)

    sorted_ids, sorted_counts = sort_by_score(ids, total_counts)
    assert sorted_ids.tolist() == oracle_order(expected_counts)
    assert sorted_counts.tolist() == [expected_counts[i] for i in sorted_ids.tolist()]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(0, 1), min_size=n, max_size=n), min_size=1, max_size=8),
            st.integers(1, 10),
        )
    )
)
def test_dense_forgetting_counts_match_the_loop(case):
    rows, epochs = case
    counts = forgetting_counts(np.array(rows, dtype=np.int64), epochs)
    assert counts.tolist() == [oracle_forgetting(row, epochs) for row in rows]
