"""Silent corruption (issue 20, item 8): flipped bytes in the middle of a run's stats log,
resume state or stats pickle are found by their checksums (a crc32 per log record, sha256
digests in the run record), reported as damage, and never resumed from or read as valid; logs
written before checksums still read and resume."""
import json
import os
import shutil
import types

import numpy as np
import pytest

import collect_results
import run_mnist
import score_examples
from forgetting.files import run_record
from forgetting.files.stats_log import (DamagedLog, SampledStatsLog, StatsLog, UNCHECKED_MAGIC,
                                        open_stats_log, record_dtype)
from forgetting.sweep.results import collect, read_results
from helpers import (MNIST_5K, assert_one_line_error, assert_same_files, call_main, load_pickle,
                     load_state, mnist_fname)

FLAGS = [*MNIST_5K, "--batch_size", 64, "--seed", 6]
NAME = mnist_fname(seed=6)
RECORD = NAME + "__run.json"


def flip_middle(path, n=64):
    """Invert ``n`` bytes in the middle of the file, as silent disk corruption would."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(size // 2 - n // 2)
        data = bytearray(handle.read(n))
        handle.seek(size // 2 - n // 2)
        handle.write(bytes(b ^ 0xFF for b in data))


def epoch_stats(rng, n, n_batches, sampled=False):
    p = int(rng.integers(1, 2 * n)) if sampled else n
    return types.SimpleNamespace(
        positions=rng.integers(0, n, p), loss=rng.random(p, dtype=np.float32),
        margin=rng.random(p), acc=rng.integers(0, 2, p).astype(np.uint8),
        train_acc=rng.random(n_batches) * 100, test_acc=float(rng.random() * 100))


# ----------------------------------------------------------------------------- the stats log

@pytest.mark.parametrize("sampled", [False, True], ids=["uniform", "sampled"])
def test_a_damaged_log_record_is_named_and_the_intact_ones_counted(tmp_path, sampled):
    rng = np.random.default_rng(0)
    path, ids = str(tmp_path / "log.bin"), np.arange(100, 400)
    log = SampledStatsLog.create(path, ids) if sampled else StatsLog.create(path, ids, 3)
    written = [epoch_stats(rng, len(ids), 3, sampled) for _ in range(3)]
    for epoch, stats in enumerate(written):
        log.append(epoch, stats)
    log = open_stats_log(path)
    records = log.read(3)
    assert [float(r["test_acc"]) for r in records] == [s.test_acc for s in written]
    assert log.intact(3) == 3

    # 64 bytes in the middle of the second record (the middle of the file for equal records)
    start = log.data_offset if not sampled else log._offsets[1]
    end = log.data_offset + 2 * log.record.itemsize if not sampled else log._offsets[2]
    with open(path, "r+b") as handle:
        handle.seek(start + (end - start) // 2)
        handle.write(b"\x00" * 64)
    log = open_stats_log(path)
    assert log.intact(3) == 1
    assert log.intact(1) == 1
    with pytest.raises(DamagedLog, match="the record of epoch 2 fails its checksum"):
        log.read(3)
    assert len(log.read(1)) == 1


def test_a_log_without_checksums_still_reads_and_appends_in_its_format(tmp_path):
    """Format 1 (before checksums): a header with magic FGTLOG01 and bare records."""
    rng = np.random.default_rng(1)
    ids, n_batches, path = np.arange(50), 2, str(tmp_path / "old.bin")
    header = np.array((UNCHECKED_MAGIC, len(ids), n_batches),
                      dtype=[("magic", "S8"), ("n_train", "<i8"), ("n_batches", "<i8")])
    record = np.zeros(2, dtype=record_dtype(len(ids), n_batches))
    record["loss"], record["test_acc"] = rng.random((2, len(ids))), [11.0, 22.0]
    with open(path, "wb") as handle:
        handle.write(header.tobytes() + ids.astype("<i8").tobytes() + record.tobytes())
    log = open_stats_log(path)
    assert not log.checked and log.intact(2) == 2
    assert list(log.read(2)["test_acc"]) == [11.0, 22.0]
    log.append(2, epoch_stats(rng, len(ids), n_batches))
    assert os.path.getsize(path) == header.nbytes + ids.nbytes + 3 * record.dtype.itemsize
    assert np.array_equal(open_stats_log(path).read(3)["loss"][:2], record["loss"])


# ----------------------------------------------------------------------------- the record's rule

def test_a_resume_state_is_checked_against_the_record_that_describes_it():
    entry = {"sha256": "a" * 64, "epochs_done": 3, "legacy_epochs": 0}
    record = {"sha256": {"resume_state": entry}}
    same = {"epochs_done": 3, "legacy_epochs": 0}
    assert run_record.resume_state_problem(record, same, "a" * 64) is None
    assert "damaged" in run_record.resume_state_problem(record, same, "b" * 64)
    # newer than the record (a kill -9 between the state's rename and the record's): unchecked
    assert run_record.resume_state_problem(record, {"epochs_done": 4, "legacy_epochs": 0}, "b" * 64) is None
    assert run_record.resume_state_problem(record, {"epochs_done": 3, "legacy_epochs": 3}, "b" * 64) is None
    assert "older" in run_record.resume_state_problem(record, {"epochs_done": 2, "legacy_epochs": 0}, "b" * 64)
    assert run_record.resume_state_problem({"sha256": {}}, same, "b" * 64) is None  # none recorded


# ----------------------------------------------------------------------------- whole runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished 3-epoch run and a finished 2-epoch run of the same command."""
    base = tmp_path_factory.mktemp("checksums")
    out = {}
    for epochs in (2, 3):
        out[epochs] = str(base / f"epochs{epochs}")
        code, _, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", epochs, "--output_dir", out[epochs]])
        assert code == 0, stderr
    return out


def copy_of(runs, epochs, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(runs[epochs], out)
    return out


def file_of(out, suffix):
    return os.path.join(out, NAME + suffix)


def problem_of(out, verify=True):
    frame = collect(out, verify=verify)
    assert len(frame) == 1
    return bool(frame["finished"][0]), frame["problem"][0]


def test_a_finished_run_verifies(runs):
    record = json.load(open(file_of(runs[3], "__run.json")))
    entry = record["sha256"]
    assert entry["resume_state"]["epochs_done"] == entry["resume_state"]["legacy_epochs"] == 3
    assert entry["stats_pickle"]["epochs"] == 3
    assert entry["stats_pickle"]["sha256"] == run_record.file_sha256(file_of(runs[3], "__stats_dict.pkl"))
    assert entry["resume_state"]["sha256"] == run_record.file_sha256(file_of(runs[3], "__resume_state.pt"))
    assert problem_of(runs[3]) == (True, "")


def test_a_damaged_log_is_reported_and_not_resumed(runs, tmp_path):
    out = copy_of(runs, 3, tmp_path)
    flip_middle(file_of(out, "__resume_stats.bin"))
    finished, problem = problem_of(out)
    assert not finished and "stats log damaged from epoch 2 on" in problem
    assert problem_of(out, verify=False)[0]  # the fast table reads no file whole
    table = str(tmp_path / "results.csv")
    code, _, stderr = call_main(collect_results.main, ["--input_dir", out, "--output", table, "--verify"])
    assert code == 0, stderr
    assert "stats log damaged from epoch 2 on" in read_results(table)["problem"][0]
    # the resume state is after epoch 3, the log intact up to 1: no exact way on
    before = open(file_of(out, "__resume_state.pt"), "rb").read()
    code, _, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", 4, "--output_dir", out, "--resume"])
    assert_one_line_error(code, stderr, "__resume_stats.bin is damaged from epoch 2 on",
                          "start over without --resume")
    assert open(file_of(out, "__resume_state.pt"), "rb").read() == before


def test_a_damaged_resume_state_is_reported_and_not_resumed(runs, tmp_path):
    out = copy_of(runs, 3, tmp_path)
    flip_middle(file_of(out, "__resume_state.pt"))
    finished, problem = problem_of(out)
    assert not finished and "resume state damaged" in problem
    code, _, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", 4, "--output_dir", out, "--resume"])
    assert_one_line_error(code, stderr, "__resume_state.pt is damaged", "without --resume")


def test_a_damaged_stats_pickle_is_refused_by_the_readers_and_rewritten_by_resume(runs, tmp_path):
    out = copy_of(runs, 3, tmp_path)
    pickle_path = file_of(out, "__stats_dict.pkl")
    flip_middle(pickle_path)
    finished, problem = problem_of(out)
    assert not finished and "stats pickle damaged" in problem
    code, _, stderr = call_main(score_examples.main, [
        "--score", "forgetting", "--input_dir", out, "--output_dir", str(tmp_path / "order"), "--output_name", "sorted"])
    assert_one_line_error(code, stderr, "__stats_dict.pkl is damaged", "--resume")
    assert not os.path.exists(tmp_path / "order" / "sorted.pkl")

    code, stdout, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", 3, "--output_dir", out, "--resume"])
    assert code == 0, stderr
    assert "nothing to do" in stdout
    assert open(pickle_path, "rb").read() == open(file_of(runs[3], "__stats_dict.pkl"), "rb").read()
    assert problem_of(out) == (True, "")


def test_damage_past_the_resume_state_is_overwritten_by_resume(runs, tmp_path):
    """A record after the committed epochs (a kill -9 mid-append, or bytes flipped there):
    --resume continues after the last committed epoch and rewrites it."""
    out = copy_of(runs, 2, tmp_path)
    log_path = file_of(out, "__resume_stats.bin")
    log = open_stats_log(log_path)
    with open(log_path, "ab") as handle:  # a whole record's worth of garbage for epoch 3
        handle.write(np.random.default_rng(2).bytes(log.record.itemsize))
    assert open_stats_log(log_path).intact(3) == 2
    code, stdout, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", 3, "--output_dir", out, "--resume"])
    assert code == 0, stderr
    assert "resuming after epoch 2 of 3" in stdout
    assert_same_files(runs[3], out, ignore=(RECORD,))
    assert problem_of(out) == (True, "")


def test_a_run_with_a_log_of_the_format_before_checksums_resumes(runs, tmp_path):
    """A run written before checksums: its log in format 1 and a record without digests."""
    out = copy_of(runs, 2, tmp_path)
    log_path = file_of(out, "__resume_stats.bin")
    log = open_stats_log(log_path)
    records = log.read(2)
    old = np.zeros(2, dtype=record_dtype(len(log.ids), log.n_batches))
    for field in old.dtype.names:
        old[field] = records[field]
    with open(log_path, "rb") as handle:
        header = bytearray(handle.read(log.data_offset))
    header[:8] = UNCHECKED_MAGIC
    with open(log_path, "wb") as handle:
        handle.write(bytes(header) + old.tobytes())
    record_path = file_of(out, "__run.json")
    record = json.load(open(record_path))
    del record["sha256"]
    json.dump(record, open(record_path, "w"))

    code, stdout, stderr = call_main(run_mnist.main, [*FLAGS, "--epochs", 3, "--output_dir", out, "--resume"])
    assert code == 0, stderr
    assert "resuming after epoch 2 of 3" in stdout
    log = open_stats_log(log_path)
    assert not log.checked and log.intact(3) == 3
    reference = open_stats_log(file_of(runs[3], "__resume_stats.bin")).read(3)
    for field in old.dtype.names:
        assert np.array_equal(log.read(3)[field], reference[field])
    assert_same_files(runs[3], out, ignore=(RECORD, NAME + "__resume_stats.bin"))
    assert load_pickle(file_of(out, "__stats_dict.pkl")) == load_pickle(file_of(runs[3], "__stats_dict.pkl"))
    assert load_state(file_of(out, "__resume_state.pt"))["epochs_done"] == 3
    assert problem_of(out) == (True, "")
