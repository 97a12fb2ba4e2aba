"""The sorting file's order: easiest first, ties by ascending id (docs/scores.md#sorting-order), or,
with ``--ties random``, ties in a seeded random order (the paper's rule, Sec. 3.1).

``--ties random --ties_seed S``: the ids in ascending order are shuffled once with
``numpy.random.RandomState(S).permutation`` (S = 0 when not given); a stable sort by score then
keeps that shuffled order among equal scores. numpy's legacy RandomState is frozen, so the order
is the same on every machine and numpy version.
"""
import numpy as np

from forgetting.errors import UsageError

TIE_RULES = ("id", "random")


def add_tie_flags(parser):
    """``--ties {id,random}`` and ``--ties_seed S``, shared by the scripts that write sorting files."""
    parser.add_argument("--ties", choices=TIE_RULES, default="id",
                        help="order of examples with equal scores in the sorting file: 'id' = "
                             "ascending example id (default), 'random' = a seeded shuffle (the "
                             "paper's 'ties are broken at random')")
    parser.add_argument("--ties_seed", type=int, default=None, metavar="S",
                        help="with --ties random: the shuffle's seed (default: 0)")


def check_tie_flags(args):
    """Refuse ``--ties_seed`` without ``--ties random`` (it would change nothing) or outside
    RandomState's seeds; return ``args``."""
    if args.ties_seed is not None and args.ties != "random":
        raise UsageError(f"--ties_seed {args.ties_seed} only applies with --ties random; "
                         "add --ties random or drop --ties_seed")
    if args.ties_seed is not None and not 0 <= args.ties_seed < 2 ** 32:
        raise UsageError(f"--ties_seed is {args.ties_seed}; it must be in 0..{2 ** 32 - 1}")
    return args


def sort_by_score(ids, scores, descending=False, ties="id", ties_seed=None):
    """``(ids, scores)`` ordered by ascending score (``descending``: by descending score, for
    scores where high means easy); ties by ascending id, or with ``ties="random"`` in the seeded
    shuffle of the module docstring (``ties_seed``, default 0).

    Returns ``(int64 ids, scores)`` as new arrays. NaN scores sort last.
    """
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 1:
        raise ValueError("ids and scores must be 1-D arrays of the same length")
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    key = scores
    if descending:
        # Negating keeps NaN a NaN (still last); float64 so the negation of an int cannot wrap.
        key = -scores.astype(np.float64)
    tiebreak = ids
    if ties == "random":
        ascending = np.argsort(ids, kind="stable")
        shuffled = ascending[np.random.RandomState(0 if ties_seed is None else ties_seed).permutation(len(ids))]
        tiebreak = np.empty(len(ids), dtype=np.int64)
        tiebreak[shuffled] = np.arange(len(ids))  # each example's place in the shuffled id list
    order = np.lexsort((tiebreak, key))  # last key is the primary one
    return ids[order], scores[order]
