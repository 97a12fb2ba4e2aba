"""Pickles the tests feed the loaders: stats and sorting dicts as the scripts write them,
files written by numpy 1.x (real bytes, and numpy 2.x pickles rewritten to 1.x module paths),
and a hostile payload.

Not a test module: the tests import it.
"""
import os
import pickletools
import random

import numpy as np

# Written by numpy 1.26.4 (Python 3.11): the numpy 1.x module paths (numpy.core.multiarray,
# numpy.core.numeric) byte for byte as the original scripts' files have them.
# STATS = {np.int64(0): [[2.5, 1.0, 1.5], [0, 1, 0], [-0.5, 0.2, -0.1]],
#          np.int64(1): [[0.3, 0.2, 0.1], [1, 1, 1], [0.5, 0.6, 0.7]],
#          'train': [[], [50.0, 100.0]], 'test': [[], [90.0]]}
# SORTING = {'indices': np.array([1, 0]), 'forgetting counts': np.array([0, 1])}
STATS_NUMPY1_P2 = bytes.fromhex(
    "80027d710028636e756d70792e636f72652e6d756c746961727261790a7363616c61720a7101636e756d7079"
    "0a64747970650a71025802000000693871038988877104527105284b0358010000003c71064e4e4e4affffff"
    "ff4affffffff4b0074710762635f636f646563730a656e636f64650a71085808000000000000000000000071"
    "0958060000006c6174696e31710a86710b52710c86710d52710e5d710f285d71102847400400000000000047"
    "3ff0000000000000473ff8000000000000655d7111284b004b014b00655d71122847bfe0000000000000473f"
    "c999999999999a47bfb999999999999a6565680168056808580800000001000000000000007113680a867114"
    "5271158671165271175d7118285d711928473fd3333333333333473fc999999999999a473fb999999999999a"
    "655d711a284b014b014b01655d711b28473fe0000000000000473fe3333333333333473fe666666666666665"
    "655805000000747261696e711c5d711d285d711e5d711f284740490000000000004740590000000000006565"
    "58040000007465737471205d7121285d71225d71234740568000000000006165752e"
)
STATS_NUMPY1_P4 = bytes.fromhex(
    "80049555010000000000007d94288c156e756d70792e636f72652e6d756c74696172726179948c067363616c"
    "61729493948c056e756d7079948c0564747970659493948c02693894898887945294284b038c013c944e4e4e"
    "4affffffff4affffffff4b007494624308000000000000000094869452945d94285d94284740040000000000"
    "00473ff0000000000000473ff8000000000000655d94284b004b014b00655d942847bfe0000000000000473f"
    "c999999999999a47bfb999999999999a6565680368094308010000000000000094869452945d94285d942847"
    "3fd3333333333333473fc999999999999a473fb999999999999a655d94284b014b014b01655d9428473fe000"
    "0000000000473fe3333333333333473fe666666666666665658c05747261696e945d94285d945d9428474049"
    "00000000000047405900000000000065658c0474657374945d94285d945d944740568000000000006165752e"
)
SORTING_NUMPY1_P2 = bytes.fromhex(
    "80027d7100285807000000696e64696365737101636e756d70792e636f72652e6d756c746961727261790a5f"
    "7265636f6e7374727563740a7102636e756d70790a6e6461727261790a71034b00857104635f636f64656373"
    "0a656e636f64650a7105580100000062710658060000006c6174696e31710786710852710987710a52710b28"
    "4b014b0285710c636e756d70790a64747970650a710d58020000006938710e898887710f527110284b035801"
    "0000003c71114e4e4e4affffffff4affffffff4b007471126289680558100000000100000000000000000000"
    "000000000071136807867114527115747116625811000000666f7267657474696e6720636f756e7473711768"
    "0268034b00857118680987711952711a284b014b0285711b6810896805581000000000000000000000000100"
    "000000000000711c680786711d52711e74711f62752e"
)
SORTING_NUMPY1_P4 = bytes.fromhex(
    "800495e8000000000000007d94288c07696e6469636573948c156e756d70792e636f72652e6d756c74696172"
    "726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085"
    "944301629487945294284b014b02859468058c0564747970659493948c02693894898887945294284b038c01"
    "3c944e4e4e4affffffff4affffffff4b0074946289431001000000000000000000000000000000947494628c"
    "11666f7267657474696e6720636f756e747394680468074b008594680987945294284b014b02859468118943"
    "100000000000000000010000000000000094749462752e"
)
SORTING_NUMPY1_P5 = bytes.fromhex(
    "800595ce000000000000007d94288c07696e6469636573948c126e756d70792e636f72652e6e756d65726963"
    "948c0b5f66726f6d627566666572949394289610000000000000000100000000000000000000000000000094"
    "8c056e756d7079948c0564747970659493948c02693894898887945294284b038c013c944e4e4e4affffffff"
    "4affffffff4b007494624b0285948c014394749452948c11666f7267657474696e6720636f756e7473946804"
    "289610000000000000000000000000000000010000000000000094680b4b028594680f74945294752e"
)
# A numpy scalar as Python 2's cPickle wrote it: the raw bytes as a py2 str
# (SHORT_BINSTRING), which Python 3 reads back as latin-1 text.
PY2_INT64_SEVEN = (
    b"\x80\x02cnumpy.core.multiarray\nscalar\nq\x00cnumpy\ndtype\nq\x01U\x02i8\x89\x88\x87Rq\x02"
    b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbU\x08\x07\x00\x00\x00\x00\x00\x00\x00\x86Rq\x03."
)


def stats_dict(histories, key=int, shuffle_seed=None):
    """A stats dict as the training scripts write it (docs/files.md#stats-pickle) from ``histories`` =
    {example id: (accs, losses)}; margins are 0. ``key`` makes the id keys (``np.int64`` as
    the original wrote them, ``int`` as we do); ``shuffle_seed`` shuffles their order."""
    items = list(histories.items())
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    stats = {"train": [[], [25.0, 50.0]], "test": [[], [60.0]]}
    for example_id, (accs, losses) in items:
        stats[key(example_id)] = [list(losses), list(accs), [0.0] * len(accs)]
    return stats


def sorting_dict(indices):
    """A sorting file's content (docs/files.md#sorting-files); ``indices`` is stored as given."""
    return {"indices": indices, "forgetting counts": np.zeros(len(indices), dtype=np.int64)}


class RunsShell:
    """Pickles as ``os.system(command)``: what a hostile stats or sorting file would hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Calls:
    """Pickles as ``func(*args)`` with an optional BUILD ``state``: any call a crafted file
    could ask for."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def to_numpy1_layout(data):
    """Rewrite a numpy 2.x pickle to the numpy 1.x module paths (numpy.core...).

    Frames (protocol 4+) are dropped first, since they carry byte counts; they are
    optional, so the result is still a valid pickle.
    """
    frames = [pos for op, _, pos in pickletools.genops(data) if op.name == "FRAME"]
    for pos in reversed(frames):
        data = data[:pos] + data[pos + 9:]
    for module in ("multiarray", "numeric"):
        new, old = f"numpy.core.{module}".encode(), f"numpy._core.{module}".encode()
        data = data.replace(old + b"\n", new + b"\n")  # GLOBAL (protocols 0-3)
        data = data.replace(b"\x8c" + bytes([len(old)]) + old, b"\x8c" + bytes([len(new)]) + new)
    assert b"numpy._core" not in data
    return data
