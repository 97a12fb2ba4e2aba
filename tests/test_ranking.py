"""The sorting file's order (forgetting/scores/ranking.py): ties by ascending id (the default,
unchanged) or, with ``ties="random"``, in a seeded shuffle (the paper's "ties are broken at
random"), each checked against the plain loop of tests/oracles.py."""
import numpy as np
import pytest

from forgetting.scores.ranking import sort_by_score
from oracles import oracle_tie_order


def random_case(case):
    """Ids in scrambled order with gaps, scores with many ties: ints, or floats with NaN."""
    rng = np.random.RandomState(1000 + case)
    n = int(rng.randint(1, 60))
    ids = rng.choice(500, size=n, replace=False)
    if case % 2:
        scores = rng.randint(0, 4, size=n)
    else:
        scores = rng.choice([0.25, -1.0, 3.5, np.nan], size=n)
    return ids, scores


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("ties,seed", [("id", None), ("random", None), ("random", 0), ("random", 7),
                                       ("random", 2 ** 32 - 1)])
@pytest.mark.parametrize("case", range(12))
def test_sort_matches_the_plain_loop(case, ties, seed, descending):
    ids, scores = random_case(case)
    got_ids, got_scores = sort_by_score(ids, scores, descending=descending, ties=ties, ties_seed=seed)
    expected = oracle_tie_order(dict(zip(ids.tolist(), scores.tolist())), descending, ties,
                                0 if seed is None else seed)
    assert got_ids.dtype == np.int64
    assert got_ids.tolist() == expected
    by_id = dict(zip(ids.tolist(), scores.tolist()))
    np.testing.assert_array_equal(got_scores, [by_id[i] for i in expected])


def test_the_default_is_ties_by_id():
    """The flag's default changes nothing: the same arrays as before the option existed."""
    for case in range(12):
        ids, scores = random_case(case)
        for descending in (False, True):
            default = sort_by_score(ids, scores, descending=descending)
            explicit = sort_by_score(ids, scores, descending=descending, ties="id")
            assert default[0].tolist() == explicit[0].tolist()
            assert default[0].tolist() == oracle_tie_order(dict(zip(ids.tolist(), scores.tolist())),
                                                           descending)


def test_random_ties_are_pinned():
    """RandomState(0).permutation(10), written out: the same order on every machine."""
    ids, _ = sort_by_score(range(10), [0] * 10, ties="random")
    assert ids.tolist() == [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
    ids, scores = sort_by_score([5, 3, 9, 1, 7], [1, 0, 1, 0, 0], ties="random", ties_seed=3)
    assert ids.tolist() == [7, 3, 1, 9, 5] and scores.tolist() == [0, 0, 0, 1, 1]


def test_random_ties_do_not_depend_on_the_input_order():
    """The shuffle is of the ascending ids, so the runs' key order does not matter."""
    ids, scores = random_case(3)
    backwards = sort_by_score(ids[::-1], scores[::-1], ties="random", ties_seed=5)
    assert sort_by_score(ids, scores, ties="random", ties_seed=5)[0].tolist() == backwards[0].tolist()


def test_the_seed_changes_only_the_order_within_ties():
    scores = np.repeat([0, 1, 2], 30)
    a, _ = sort_by_score(np.arange(90), scores, ties="random", ties_seed=1)
    b, _ = sort_by_score(np.arange(90), scores, ties="random", ties_seed=2)
    assert a.tolist() != b.tolist()
    for block in range(3):  # the same ids at the same score, in another order
        assert sorted(a[30 * block:30 * block + 30]) == list(range(30 * block, 30 * block + 30))
        assert sorted(b[30 * block:30 * block + 30]) == list(range(30 * block, 30 * block + 30))


def test_an_unknown_tie_rule_is_a_bug_not_a_default():
    with pytest.raises(ValueError, match="ties must be one of"):
        sort_by_score([0, 1], [0, 0], ties="first")
