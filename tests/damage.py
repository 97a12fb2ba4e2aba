"""A hypothesis strategy for damaged files: valid pickles truncated, overwritten, extended or cut."""
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
