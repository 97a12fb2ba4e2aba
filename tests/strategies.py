"""Hypothesis strategies shared by the property tests: damaged files and random histories.

Not a test module: the tests import it.
"""
from hypothesis import strategies as st


@st.composite
def damaged(draw, bases):
    """One of ``bases`` (bytes) with a random truncation, or 1-4 overwrites, inserts or deletes."""
    data = bytearray(draw(st.sampled_from(bases)))
    kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "overwrite":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif len(data) > 2:
            del data[pos: pos + draw(st.integers(1, 4))]
    return bytes(data)


@st.composite
def several_runs(draw):
    """``(runs, epochs)``: 1-4 runs over the same 1-8 example ids (any ints up to 10**6), each
    run {id: (accs, losses)} with its ids in its own order, and an ``--epochs`` of 1-14.
    Histories have 0-12 presentations: the same length within a run, or (ragged) any."""
    ids = draw(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=8, unique=True))
    n_runs = draw(st.integers(1, 4))
    epochs = draw(st.integers(1, 14))
    ragged = draw(st.booleans())
    losses_strategy = st.floats(-1e6, 1e6, allow_nan=False)
    runs = []
    for _ in range(n_runs):
        common_length = draw(st.integers(0, 12))
        histories = {}
        for example_id in draw(st.permutations(ids)):
            length = draw(st.integers(0, 12)) if ragged else common_length
            accs = draw(st.lists(st.integers(0, 1), min_size=length, max_size=length))
            losses = draw(st.lists(losses_strategy, min_size=length, max_size=length))
            histories[example_id] = (accs, losses)
        runs.append(histories)
    return runs, epochs
