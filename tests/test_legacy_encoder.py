"""The legacy pickle written straight from arrays must load as exactly the dict it stands for.

``stats_pickle.encode_stats_pickle`` writes pickle opcodes itself (fast path of the legacy
``__stats_dict.pkl``); ``stats_pickle.build_stats_dict`` is the plain-Python definition of the
same content. Equality is checked through ``pickle.dumps`` of both, which compares key order,
types and the exact bits of every float (NaN, inf and -0.0 included).
"""
import io
import pickle

import numpy as np
import pytest

from forgetting.files import stats_pickle
from forgetting.files.stats_log import StatsLog, record_dtype
from forgetting.training.recorder import EpochStats


def make_records(n, epochs, n_batches, seed):
    rng = np.random.default_rng(seed)
    records = np.zeros(epochs, dtype=record_dtype(n, n_batches))
    records["loss"] = (rng.standard_normal((epochs, n)) * 10).astype(np.float32)
    records["margin"] = rng.standard_normal((epochs, n)) * 1e3
    records["acc"] = rng.integers(0, 2, (epochs, n))
    records["train_acc"] = rng.random((epochs, n_batches)) * 100
    records["test_acc"] = rng.random(epochs) * 100
    if n and epochs:
        records["loss"][0, 0] = np.nan
        records["loss"][-1, -1] = np.inf
        records["margin"][0, -1] = -0.0
    return records


@pytest.mark.parametrize("n,epochs,n_batches", [(0, 0, 0), (1, 0, 1), (3, 1, 1), (2049, 3, 2), (5000, 7, 3)])
def test_encoded_pickle_is_the_dict(n, epochs, n_batches):
    ids = np.random.default_rng(n).permutation(np.arange(n) * 1000 + 70000)
    records = make_records(n, epochs, n_batches, seed=n)
    buffer = io.BytesIO()
    stats_pickle.encode_stats_pickle(ids, records, buffer.write)
    loaded = pickle.loads(buffer.getvalue())
    expected = stats_pickle.build_stats_dict(ids, records)
    assert list(loaded) == list(expected)
    assert pickle.dumps(loaded, protocol=2) == pickle.dumps(expected, protocol=2)
    examples = [key for key in loaded if not isinstance(key, str)]
    assert all(type(key) is int for key in examples)
    assert all(type(acc) is int for key in examples for acc in loaded[key][1])


def test_ids_beyond_32_bits_take_the_general_path(tmp_path):
    ids = np.array([5, 2**40], dtype=np.int64)
    log = StatsLog.create(str(tmp_path / "log.bin"), ids, 1)
    records = make_records(2, 2, 1, seed=1)
    for epoch, rec in enumerate(records):
        log.append(epoch, EpochStats(rec["loss"], rec["acc"], rec["margin"], rec["train_acc"],
                                     float(rec["test_acc"])))
    out = tmp_path / "stats.pkl"
    stats_pickle.write_stats_pickle(log.path, 2, str(out))
    with open(out, "rb") as handle:
        loaded = pickle.load(handle)
    assert pickle.dumps(loaded, protocol=2) == pickle.dumps(stats_pickle.build_stats_dict(ids, records), protocol=2)
