"""The restricted loader (docs/deviations.md, item 6): stats and sorting files load as the
original scripts wrote them, under numpy 1.x and 2.x module paths and pickle protocols
0-5, and a file cannot make the loader run code or corrupt memory."""
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from forgetting.errors import UsageError
from forgetting.files import safe_pickle
from helpers import REPO, cli_env
from pickles import (PY2_INT64_SEVEN, SORTING_NUMPY1_P2, SORTING_NUMPY1_P4, SORTING_NUMPY1_P5,
                     STATS_NUMPY1_P2, STATS_NUMPY1_P4, Calls, RunsShell, to_numpy1_layout)
from strategies import damaged

STATS_VALUE = {
    0: [[2.5, 1.0, 1.5], [0, 1, 0], [-0.5, 0.2, -0.1]],
    1: [[0.3, 0.2, 0.1], [1, 1, 1], [0.5, 0.6, 0.7]],
    "train": [[], [50.0, 100.0]],
    "test": [[], [90.0]],
}


def write(tmp_path, data, name="file.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def original_stats(key=np.int64):
    return {
        (key(k) if isinstance(k, int) else k): [list(part) for part in v] if isinstance(k, int) else v
        for k, v in STATS_VALUE.items()
    }


def assert_stats_value(loaded, key_type=np.int64):
    assert loaded == STATS_VALUE  # np.int64(0) == 0 and hashes alike
    assert {type(k) for k in loaded if not isinstance(k, str)} == {key_type}


# ---------------------------------------------------------------- what must load


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_round_trips_plain_and_numpy_values(tmp_path, protocol):
    value = {
        "ints": [1, -2, 2**100], "floats": (1.5, float("inf")), "text": "héllo", "raw": b"\x00\xff",
        "nothing": None, "flags": [True, False], "set": {1, 2}, "frozen": frozenset("ab"), "complex": 1 + 2j,
        "bytearray": bytearray(b"xy"), "empty bytes": b"",
        "scalars": [np.int64(3), np.float64(0.25), np.float32(1.5), np.bool_(True), np.uint8(7), np.str_("ab")],
        "arrays": [np.arange(5), np.linspace(0, 1, 3), np.zeros((2, 3), order="F"), np.arange(10)[::3],
                   np.array(["a", "bcd"]), np.array([1, "x", None], dtype=object), np.array([]), np.array(7),
                   np.arange(4, dtype=">i4"), np.array([True, False])],
        "nested": [(np.arange(2), {"deep": (np.arange(3),)})],
    }
    loaded = safe_pickle.load(write(tmp_path, pickle.dumps(value, protocol=protocol)))
    reference = pickle.loads(pickle.dumps(value, protocol=protocol))
    assert repr(loaded) == repr(reference)
    for got, want in zip(loaded["arrays"] + [loaded["nested"][0][0], loaded["nested"][0][1]["deep"][0]],
                         reference["arrays"] + [reference["nested"][0][0], reference["nested"][0][1]["deep"][0]]):
        assert type(got) is np.ndarray  # never the loader's private subclass
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert [type(s) for s in loaded["scalars"]] == [type(s) for s in value["scalars"]]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("numpy1_layout", [False, True])
def test_loads_stats_as_the_original_scripts_wrote_them(tmp_path, protocol, numpy1_layout):
    data = pickle.dumps(original_stats(np.int64), protocol=protocol)
    if numpy1_layout:
        data = to_numpy1_layout(data)
        assert b"numpy.core.multiarray" in data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2 warns on importing numpy.core: we never do
        assert_stats_value(safe_pickle.load(write(tmp_path, data)))


@pytest.mark.parametrize("protocol", [2, 5])
def test_loads_our_own_layout_with_int_keys(tmp_path, protocol):
    data = pickle.dumps(original_stats(int), protocol=protocol)
    assert_stats_value(safe_pickle.load(write(tmp_path, data)), key_type=int)


@pytest.mark.parametrize("data", [STATS_NUMPY1_P2, STATS_NUMPY1_P4], ids=["p2", "p4"])
def test_loads_real_numpy1_stats_files(tmp_path, data):
    assert_stats_value(safe_pickle.load(write(tmp_path, data)))


@pytest.mark.parametrize("data", [SORTING_NUMPY1_P2, SORTING_NUMPY1_P4, SORTING_NUMPY1_P5], ids=["p2", "p4", "p5"])
def test_loads_real_numpy1_sorting_files(tmp_path, data):
    loaded = safe_pickle.load(write(tmp_path, data))
    assert set(loaded) == {"indices", "forgetting counts"}
    for key, expected in (("indices", [1, 0]), ("forgetting counts", [0, 1])):
        assert type(loaded[key]) is np.ndarray and loaded[key].dtype == np.int64
        assert loaded[key].tolist() == expected


@pytest.mark.parametrize("protocol", [2, 5])
def test_loads_rewritten_numpy1_sorting_files(tmp_path, protocol):
    value = {"indices": np.array([4, 2, 0]), "forgetting counts": np.array([0, 0, 3])}
    data = to_numpy1_layout(pickle.dumps(value, protocol=protocol))
    loaded = safe_pickle.load(write(tmp_path, data))
    assert loaded["indices"].tolist() == [4, 2, 0] and loaded["forgetting counts"].tolist() == [0, 0, 3]


def test_loads_python2_era_scalar(tmp_path):
    loaded = safe_pickle.load(write(tmp_path, PY2_INT64_SEVEN))
    assert type(loaded) is np.int64 and loaded == 7


def test_reloaded_arrays_pickle_without_naming_the_loader(tmp_path):
    deep = np.arange(3)
    for _ in range(150):  # deeper than the loader's unwrap walk goes
        deep = [deep]
    loaded = safe_pickle.load(write(tmp_path, pickle.dumps(deep, protocol=2)))
    again = pickle.dumps(loaded, protocol=2)
    assert b"forgetting" not in again and b"safe_pickle" not in again
    inner = pickle.loads(again)
    for _ in range(150):
        inner = inner[0]
    assert type(inner) is np.ndarray and inner.tolist() == [0, 1, 2]


# ---------------------------------------------------------------- what must not


def test_refuses_os_system_and_never_calls_it(tmp_path):
    marker = tmp_path / "pwned"
    hostile = {np.int64(0): [[0.1], [1], [0.0]], "payload": RunsShell(f"touch {marker}")}
    for protocol in (0, 2, 5):
        path = write(tmp_path, pickle.dumps(hostile, protocol=protocol), f"x{protocol}__stats_dict.pkl")
        with pytest.raises(UsageError) as caught:
            safe_pickle.load(path)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(path)
        assert f"refuses to load '{os.system.__module__}.system'" in message
        assert safe_pickle.ALLOWED_CONTENT in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "func, args",
    [
        (eval, ("1+1",)),
        (getattr, (int, "real")),
        (subprocess.Popen, (["true"],)),
        (np.load, ("x.npy",)),
        (pickle.loads, (b"N.",)),
        (type, ("X", (), {})),
    ],
    ids=["eval", "getattr", "Popen", "numpy.load", "pickle.loads", "type"],
)
def test_refuses_every_other_global(tmp_path, func, args):
    path = write(tmp_path, pickle.dumps(Calls(func, args), protocol=4))
    with pytest.raises(UsageError, match=f"refuses to load '{func.__module__}.{func.__name__}'"):
        safe_pickle.load(path)


# Crafted numpy payloads that pass a plain module.name allow-list but make numpy read
# raw bytes as object pointers (an interpreter crash at best). Run in a child process,
# so a regression shows as a failed test rather than a dead test run.
NUMPY_ATTACKS = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    from numpy._core import multiarray, numeric
    from forgetting.files import safe_pickle
    from forgetting.errors import UsageError
    from pickles import Calls

    object_without_flags = Calls(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))
    float_with_object_flags = Calls(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 63))
    attacks = {
        "ndarray called on raw bytes": Calls(np.ndarray, ((2,), np.dtype("O"), b"A" * 16)),
        "reconstruct, object dtype, raw bytes": Calls(
            multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), object_without_flags, False, b"A" * 16)),
        "reconstruct, float dtype with object flags": Calls(
            multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), float_with_object_flags, False, [1.0, "x"])),
        "frombuffer, object dtype": Calls(numeric._frombuffer, (b"A" * 16, object_without_flags, (2,), "C")),
        "scalar, object dtype, raw bytes": Calls(multiarray.scalar, (object_without_flags, b"A" * 8)),
        "structured dtype": Calls(np.dtype, ("V16", False, True)),
        "datetime dtype": Calls(np.dtype, ("M8", False, True)),
        "reconstruct of another class": Calls(multiarray._reconstruct, (bytearray, (0,), b"b")),
    }
    for name, payload in attacks.items():
        with open(sys.argv[1], "wb") as handle:
            pickle.dump(payload, handle, protocol=2)
        try:
            loaded = safe_pickle.load(sys.argv[1])
        except UsageError as err:
            print(name, "-> refused:", err)
            continue
        # Whatever loaded must be harmless to use.
        print(name, "-> loaded:", repr(loaded), np.asarray(loaded, dtype=object).tolist())
    print("survived")
    """
)


@pytest.mark.slow
def test_refuses_numpy_payloads_that_corrupt_memory(tmp_path):
    script = write(tmp_path, NUMPY_ATTACKS.encode(), "attacks.py")
    result = subprocess.run(
        [sys.executable, script, str(tmp_path / "attack.pkl")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**cli_env(), "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "survived"
    for line in lines[:-1]:
        if not line.startswith("scalar, object dtype"):  # that one may yield the bytes object itself
            assert "-> refused:" in line, line


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a complete pickle"),
        (b"this is not a pickle at all", "not a complete pickle"),
        (b"\x80\x05\x95\x10\x00", "not a complete pickle"),
        (b"\x80\x09N.", "not a complete pickle"),  # unknown protocol
        (b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc", "memory"),  # absurd length
        (b"\x80\x04\x8c\x05a\nb c\x8c\x01x\x93.", "refuses to load 'a\\nb c.x'"),  # garbled global name
    ],
)
def test_broken_files_are_one_line_usage_errors(tmp_path, content, problem):
    path = write(tmp_path, content)
    with pytest.raises(UsageError) as caught:
        safe_pickle.load(path)
    message = str(caught.value)
    assert message.startswith(path) and problem in message and "\n" not in message


def test_every_truncation_of_a_stats_file_is_refused(tmp_path):
    data = pickle.dumps(original_stats(np.int64), protocol=2)
    for cut in range(len(data)):  # STOP is the last byte: every proper prefix is incomplete
        path = write(tmp_path, data[:cut])
        with pytest.raises(UsageError, match="truncated or corrupted"):
            safe_pickle.load(path)


def test_missing_unreadable_and_directory(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        safe_pickle.load(str(tmp_path / "absent.pkl"))
    with pytest.raises(UsageError, match="is a directory"):
        safe_pickle.load(str(tmp_path))
    if os.geteuid() != 0:  # root reads anything
        path = write(tmp_path, pickle.dumps({}))
        os.chmod(path, 0)
        with pytest.raises(UsageError, match="cannot be read"):
            safe_pickle.load(path)


# ---------------------------------------------------------------- damaged files, at random


def _sorting_p2():
    return pickle.dumps({"indices": np.array([2, 0, 1]), "forgetting counts": np.array([0, 1, 5])}, protocol=2)


BASES = [
    pickle.dumps(original_stats(np.int64), protocol=2),
    pickle.dumps(original_stats(np.int64), protocol=5),
    _sorting_p2(),
    pickle.dumps({"indices": np.array([2, 0, 1]), "scores": np.array([0.5, 1.0, 2.0])}, protocol=5),
    STATS_NUMPY1_P2,
    SORTING_NUMPY1_P4,
    PY2_INT64_SEVEN,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damaged(BASES))
def test_damaged_pickles_only_ever_raise_usage_error(tmp_path, memory_cap, data):
    path = write(tmp_path, data)
    try:
        safe_pickle.load(path)
    except UsageError as err:
        assert str(err).startswith(path) and "\n" not in str(err)


# ---------------------------------------------------------------- files that expand (issue 20, item 3)


def laughs(depth, width=10):
    """A stats dict whose one example holds ``width**depth`` numbers as ``depth`` levels of
    ``width`` references to the same list: a few hundred bytes pickled."""
    level = [0] * width
    for _ in range(depth - 1):
        level = [level] * width
    return {0: [level, level, level], "train": [[], [50.0]], "test": [[], [50.0]]}


def tree_size(obj):
    """The plain recursion that pickle_bound.expanded_size must agree with: shared objects
    counted every time they are reached (one per container slot, two per dict entry, one per
    character, array element or other value)."""
    def is_number(item):
        return isinstance(item, (int, float, complex, np.generic))

    if isinstance(obj, (list, tuple, set, frozenset)):
        return len(obj) + sum(tree_size(item) for item in obj if not is_number(item))
    if isinstance(obj, dict):
        return 2 * len(obj) + sum(tree_size(item) for pair in obj.items() for item in pair
                                  if not is_number(item))
    if isinstance(obj, np.ndarray):
        items = obj.ravel().tolist() if obj.dtype.hasobject else []
        return max(obj.size, 1) + sum(tree_size(item) for item in items if not is_number(item))
    if isinstance(obj, (str, bytes)):
        return max(len(obj), 1)
    return 1


def same(a, b):
    """Equal values, arrays compared by content (a shared array may come back as views)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def object_array_of(item, n):
    array = np.empty(n, dtype=object)
    for i in range(n):
        array[i] = item
    return array


def test_a_billion_laughs_is_refused_at_once(tmp_path):
    """The issue's file: ~290 bytes that walked as a tree are a billion numbers (14.6 s and
    3.5 GB in the ordering script before; one level deeper exhausted the machine)."""
    data = pickle.dumps(laughs(9), protocol=2)
    assert len(data) < 300
    path = write(tmp_path, data)
    started = time.perf_counter()
    with pytest.raises(UsageError, match=r"shared references expand its \d+ bytes to more than "
                                         r"\d+ elements") as err:
        safe_pickle.load(path)
    assert time.perf_counter() - started < 0.5
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


@pytest.mark.parametrize("name, content", [
    ("one array repeated", [np.zeros(1000)] * 2000),
    ("an object array of one list repeated", object_array_of([0] * 500, 400)),
    ("a shared tuple key", {((1,) * 300, (2,) * 300) * 50: 0}),
    ("a shared set", [frozenset(range(500))] * 100),
])
@pytest.mark.parametrize("protocol", [2, 5])
def test_other_shared_bombs_are_refused(tmp_path, name, content, protocol):
    path = write(tmp_path, pickle.dumps(content, protocol=protocol))
    with pytest.raises(UsageError, match="shared references expand"):
        safe_pickle.load(path)


def test_a_file_that_contains_itself_is_refused(tmp_path):
    loop = [1, 2]
    loop.append(loop)
    for content in (loop, {"a": [loop]}):
        with pytest.raises(UsageError, match="it contains itself"):
            safe_pickle.load(write(tmp_path, pickle.dumps(content)))


def test_the_refusal_matches_the_plain_tree_count(tmp_path):
    """Random structures sharing lists, strings and arrays, some within the budget, some
    beyond: refused exactly when the plain recursion counts more than the budget, and
    otherwise loaded equal to what was pickled."""
    from forgetting.files import pickle_bound

    rng = np.random.RandomState(0)
    outcomes = set()
    for case in range(60):
        pool = [[float(x) for x in rng.rand(rng.randint(1, 40))], "s" * int(rng.randint(1, 200)),
                np.arange(rng.randint(1, 300)), list(range(rng.randint(0, 30)))]
        for _ in range(rng.randint(1, 4)):  # lists of references to earlier ones
            pool.append([pool[i] for i in rng.randint(0, len(pool), rng.randint(1, 25))])
        content = {i: item for i, item in enumerate(pool[-3:])}
        data = pickle.dumps(content, protocol=int(rng.choice([2, 4, 5])))
        path = write(tmp_path, data)
        too_big = tree_size(content) > pickle_bound.budget(len(data))
        outcomes.add(too_big)
        if too_big:
            with pytest.raises(UsageError, match="shared references expand"):
                safe_pickle.load(path)
        else:
            assert same(safe_pickle.load(path), content)
    assert outcomes == {True, False}


def test_a_little_sharing_within_the_budget_loads(tmp_path):
    shared = list(range(100))
    loaded = safe_pickle.load(write(tmp_path, pickle.dumps({"a": shared, "b": shared})))
    assert loaded == {"a": shared, "b": shared}


def test_files_without_sharing_are_never_walked(tmp_path, monkeypatch):
    """The exact measure (a Python walk: ~4 s on a 50,000 x 200 file) runs only when the
    reference counts show something shared: never for the files the scripts write."""
    from forgetting.files import pickle_bound
    from forgetting.files.stats_log import record_dtype
    from forgetting.files.stats_pickle import build_stats_dict, encode_stats_pickle

    def walked(*args):
        raise AssertionError("the exact measure ran on a file without shared references")

    records = np.zeros(3, dtype=record_dtype(50, 2))
    records["loss"] = np.random.RandomState(0).rand(3, 50)
    ids = np.arange(50)
    encoded = []
    encode_stats_pickle(ids, records, encoded.append)
    files = [b"".join(encoded), pickle.dumps(build_stats_dict(ids, records), protocol=2),
             pickle.dumps(original_stats(np.int64), protocol=2), _sorting_p2(), STATS_NUMPY1_P2,
             SORTING_NUMPY1_P4, SORTING_NUMPY1_P5,
             pickle.dumps({"indices": np.arange(40), "counts": np.arange(40)}, protocol=5),
             pickle.dumps({"indices": np.arange(40, dtype=object)}, protocol=4)]
    monkeypatch.setattr(pickle_bound, "expanded_size", walked)
    for data in files:
        safe_pickle.load(write(tmp_path, data))


def test_the_ordering_script_refuses_the_laughs_in_one_line(tmp_path):
    """End to end, in a process of its own with a time limit (the old code expanded it)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "dataset_x__seed_1__stats_dict.pkl").write_bytes(pickle.dumps(laughs(7), protocol=2))
    result = subprocess.run([sys.executable, "order_examples_by_forgetting.py", "--input_dir", str(runs),
                             "--output_dir", str(tmp_path / "out"), "--output_name", "x", "--epochs", "1"],
                            cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "shared references expand" in result.stderr
