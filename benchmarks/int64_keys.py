#!/usr/bin/env python
"""Should the stats pickle's example ids be ``numpy.int64`` keys, as the original's were?

The original scripts pickled dicts keyed by ``numpy.int64`` (so notebooks could call
``k.item()``); this project's encoder (forgetting/files/stats_pickle.py) writes plain int
keys (BININT). The issue's rule: keep the original's behaviour where it costs nothing, i.e.
if the pickle stays as fast to write and to load. This prints, side by side, for one
n x E run (default 50,000 x 200, the CIFAR-10 paper run):

* write: the encoder as it is (int keys) against the same encoder writing each key as the
  numpy scalar the original's pickles held (``multiarray.scalar(dtype('int64'), 8 bytes)``:
  the callable and the dtype defined once in the memo, then 16 bytes per key);
* load: plain ``pickle.load`` (what a notebook does, GC on), the restricted loader
  (``safe_pickle.load``), and the ordering script's per-file path (``load_run_arrays``).

Medians of ``--repeats`` rounds of CPU time (``time.process_time``: on a machine shared with
other jobs, wall time mostly measures the others); the two layouts alternate within a round.
A last table isolates the keys: a dict of n keys with empty values, int vs numpy.int64.
"""
import gc
import os
import pickle
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, median, parse_size_args, spread  # noqa: E402
from ordering_at_scale import synthetic_records  # noqa: E402

from forgetting.files import safe_pickle, stats_pickle  # noqa: E402
from forgetting.scores.stats_arrays import load_run_arrays  # noqa: E402

# Memo slots 0 and 1 hold numpy's scalar builder and dtype('int64'); each key refers to them.
_SCALAR_DEFINITIONS = (
    b"cnumpy.core.multiarray\nscalar\nq\x000"                  # GLOBAL, BINPUT 0, POP
    b"cnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87R"         # dtype('i8', False, True)
    b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # its BUILD state
    b"q\x010"                                                  # BINPUT 1, POP
)


def int64_keys(ids):
    """(rows,) ids -> (rows, 16): BINGET 0, BINGET 1, SHORT_BINBYTES 8 <int64>, TUPLE2, REDUCE."""
    keys = np.empty((len(ids), 16), dtype=np.uint8)
    keys[:, :6] = np.frombuffer(b"h\x00h\x01C\x08", np.uint8)
    keys[:, 6:14] = ids.astype("<i8").view(np.uint8).reshape(len(ids), 8)
    keys[:, 14:] = np.frombuffer(b"\x86R", np.uint8)
    return keys


def encode_int64(ids, records, write):
    """``stats_pickle.encode_stats_pickle`` with numpy.int64 keys."""
    ids = np.asarray(ids, dtype=np.int64)
    write(stats_pickle._PROTO2 + _SCALAR_DEFINITIONS + stats_pickle._EMPTY_DICT + stats_pickle._MARK)
    for start in range(0, len(ids), stats_pickle._CHUNK):
        part = slice(start, start + stats_pickle._CHUNK)
        write(stats_pickle._examples(int64_keys(ids[part]), records, part))
    write(stats_pickle._SETITEMS)
    write(stats_pickle._accuracy_lists(records))


ENCODERS = {"int keys": stats_pickle.encode_stats_pickle, "numpy.int64 keys": encode_int64}


def timed(function, *args):
    started = time.process_time()
    result = function(*args)
    return time.process_time() - started, result


def write_file(encoder, ids, records, path):
    with open(path, "wb") as handle:
        encoder(ids, records, handle.write)


def plain_load(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def check(paths, ids):
    """Both files hold the same dict; plain pickle.load gives the keys' promised types."""
    dicts = {name: plain_load(path) for name, path in paths.items()}
    int_dict, int64_dict = dicts["int keys"], dicts["numpy.int64 keys"]
    assert int_dict == int64_dict
    assert {type(k) for k in int_dict if not isinstance(k, str)} == {int}
    assert {type(k) for k in int64_dict if not isinstance(k, str)} == {np.int64}
    safe = safe_pickle.load(paths["numpy.int64 keys"])
    assert safe == int64_dict and {type(k) for k in safe if not isinstance(k, str)} == {np.int64}
    assert list(int64_dict)[:len(ids)] == ids.tolist()


def main(argv=None):
    args = parse_size_args(__doc__, argv, repeats=5)
    header(f"numpy.int64 keys vs int keys, {args.n:,} x {args.epochs}")
    records = synthetic_records(args.n, args.epochs, seed=0)
    ids = np.arange(args.n, dtype=np.int64)
    directory = tempfile.mkdtemp(prefix="bench_int64_")
    paths = {name: os.path.join(directory, name.replace(" ", "_") + ".pkl") for name in ENCODERS}
    for name, encoder in ENCODERS.items():
        write_file(encoder, ids, records, paths[name])
    check(paths, ids)
    loads = {"plain pickle.load (gc on)": plain_load, "safe_pickle.load": safe_pickle.load,
             "load_run_arrays (ordering)": lambda path: load_run_arrays(path, args.epochs)}
    times = {(what, name): [] for what in ["write", *loads] for name in ENCODERS}
    for round_ in range(args.repeats):
        names = list(ENCODERS) if round_ % 2 == 0 else list(reversed(ENCODERS))
        for name in names:
            sink = bytearray()
            seconds, _ = timed(ENCODERS[name], ids, records, sink.extend)
            times["write", name].append(seconds)
            del sink
            for what, load in loads.items():
                seconds, loaded = timed(load, paths[name])
                times[what, name].append(seconds)
                del loaded
                gc.collect()
    sizes = {name: os.path.getsize(path) / 2**20 for name, path in paths.items()}
    print(f"file size: int keys {sizes['int keys']:.1f} MiB, numpy.int64 keys "
          f"{sizes['numpy.int64 keys']:.1f} MiB")
    print(f"{'CPU seconds, median (min-max) of ' + str(args.repeats):42} {'int keys':>22} "
          f"{'numpy.int64 keys':>22}  ratio")
    for what in ["write", *loads]:
        a, b = times[what, "int keys"], times[what, "numpy.int64 keys"]
        print(f"{what:42} {median(a):8.3f} ({spread(a)}) {median(b):8.3f} ({spread(b)})  "
              f"{median(b) / median(a):.2f}")
    keys_only(ids, args.repeats)
    for path in paths.values():
        os.remove(path)
    os.rmdir(directory)


def keys_only(ids, repeats):
    """Loading n keys alone: what numpy.int64 keys add, without the 30 million numbers."""
    blobs = {"int keys": pickle.dumps({int(i): [] for i in ids}, protocol=2),
             "numpy.int64 keys": pickle.dumps({np.int64(i): [] for i in ids}, protocol=2)}
    times = {name: [timed(pickle.loads, blob)[0] for _ in range(repeats)] for name, blob in blobs.items()}
    a, b = times["int keys"], times["numpy.int64 keys"]
    print(f"{'keys only, plain pickle.loads':42} {median(a):8.3f} ({spread(a)}) {median(b):8.3f} "
          f"({spread(b)})  {median(b) / median(a):.2f}")


if __name__ == "__main__":
    main()
