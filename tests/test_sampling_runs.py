"""--sampling on the training scripts (issue 11): uniform runs write the files the code before
the feature wrote, byte for byte; each sampled mode survives kill -9 and --resume exactly;
file names; the epoch line; bad values refused with one line, exit 2, nothing touched."""
import io
import json
import os
import pickle
import signal
import subprocess
import tarfile

import numpy as np
import pytest

import run_mnist
from cifar_fixtures import _WRAPPER, call_run_cifar
from helpers import (CIFAR_FNAME, CIFAR_RUN, MNIST_5K, PYTHON, REPO, TIMEOUT,
                     assert_one_line_error, assert_same_files, call_main, cli_env, finish,
                     log_records, mnist_fname, start, wait_for)
from forgetting.files.naming import find_stats_files
from forgetting.files.stats_log import open_stats_log
from forgetting.sweep.results import read_run

# The last commit before --sampling: its scripts define what a uniform run writes.
BEFORE_SAMPLING = "f300742"
MODES = {"sgd_s": ["--drop_percent", "30"], "infobatch": ["--anneal", "0.25"],
         "forgetting": ["--prune_ratio", "0.7"]}
NAME_SUFFIX = {"sgd_s": "__sampling_sgd_s__drop_percent_30.0",
               "infobatch": "__sampling_infobatch__anneal_0.25",
               "forgetting": "__sampling_forgetting__prune_ratio_0.7"}
# 1,000 of the digits (random removal keeps it quick), 4 epochs: the kill lands after the
# sampler has drawn from and observed a sampled epoch
RUN = [*MNIST_5K, "--batch_size", 100, "--seed", 3, "--epochs", 4, "--remove_n", 3000,
       "--keep_lowest_n", -1]
RUN_NAME = mnist_fname(seed=3, remove_n=3000, keep_lowest_n=-1)


def tree_before_sampling(destination):
    """The repository as it was before --sampling, or skip (no git, or a copy without history)."""
    commit = subprocess.run(["git", "rev-parse", "--verify", "-q", BEFORE_SAMPLING + "^{commit}"], cwd=REPO,
                            capture_output=True, text=True)
    if commit.returncode != 0:
        pytest.skip("the commit before --sampling is not in this checkout's history")
    archive = subprocess.run(["git", "archive", commit.stdout.strip()], cwd=REPO, capture_output=True)
    assert archive.returncode == 0, archive.stderr
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return str(destination)


def test_uniform_runs_write_the_files_of_the_code_before_sampling(tmp_path, tiny_cifar):
    old = tree_before_sampling(tmp_path / "before")
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    mnist = [*MNIST_5K, "--batch_size", 256, "--seed", 2, "--epochs", 2]
    wrapper = tmp_path / "old_cifar.py"
    wrapper.write_text(_WRAPPER.format(repo=old, checksums=json.dumps(tiny_cifar.checksums)))
    cifar = ["--data_dir", tiny_cifar.data_dir, *CIFAR_RUN, "--epochs", 2]
    procs = [subprocess.Popen([PYTHON, "run_mnist.py", *map(str, mnist), "--output_dir",
                               str(tmp_path / "old_mnist")], cwd=old, env=env),
             subprocess.Popen([PYTHON, str(wrapper), *map(str, cifar), "--output_dir",
                               str(tmp_path / "old_cifar")], cwd=old, env=env)]
    new_mnist = call_main(run_mnist.main, [*mnist, "--output_dir", tmp_path / "new_mnist"])
    new_cifar = call_run_cifar(tiny_cifar, [*cifar, "--output_dir", tmp_path / "new_cifar"])
    assert [p.wait(timeout=TIMEOUT) for p in procs] == [0, 0]
    assert new_mnist[0] == 0 and new_cifar[0] == 0, (new_mnist, new_cifar)
    # stats pickle, best_acc, resume state, CIFAR checkpoint and changed labels; the run
    # record came later, and the log gained a checksum per record (issue 20): same numbers
    for kind, name in (("mnist", mnist_fname(seed=2)), ("cifar", CIFAR_FNAME)):
        before, now = str(tmp_path / f"old_{kind}"), str(tmp_path / f"new_{kind}")
        log = name + "__resume_stats.bin"
        assert_same_files(before, now, ignore=(name + "__run.json", log))
        assert_same_log_content(os.path.join(before, log), os.path.join(now, log))
    assert len(os.listdir(tmp_path / "new_cifar")) == 7  # 6 files + checkpoint/


def assert_same_log_content(before, now):
    """Two stats logs hold the same ids and records (whatever their format)."""
    before, now = open_stats_log(before), open_stats_log(now)
    assert np.array_equal(before.ids, now.ids)
    epochs = before.records_on_disk()
    assert now.records_on_disk() == epochs > 0
    old, new = before.read(epochs), now.read(epochs)
    for field in old.dtype.names:
        assert np.array_equal(old[field], new[field]), field


@pytest.fixture(scope="module")
def killed_and_reference(tmp_path_factory):
    """Per mode: an uninterrupted run and one killed with SIGKILL right after its second
    epoch reached the log (its sampler had drawn and observed a sampled epoch), all at once."""
    base = tmp_path_factory.mktemp("sampling_kill")
    procs, dirs = {}, {}
    try:
        for mode, options in MODES.items():
            for kind in ("reference", "killed"):
                dirs[mode, kind] = str(base / f"{mode}_{kind}")
                procs[mode, kind] = start([*RUN, "--sampling", mode, *options, "--output_dir",
                                           dirs[mode, kind]])
        logs = {mode: os.path.join(dirs[mode, "killed"], RUN_NAME + NAME_SUFFIX[mode]
                                   + "__resume_stats.bin") for mode in MODES}
        waiting = set(MODES)

        def kill_those_past_their_second_epoch():
            for mode in list(waiting):
                proc = procs[mode, "killed"]
                if log_records(logs[mode]) >= 2 or proc.poll() is not None:
                    proc.kill()
                    waiting.discard(mode)
            return not waiting

        wait_for(kill_those_past_their_second_epoch, what="the second epochs")
        results = {key: finish(proc) for key, proc in procs.items()}
        yield dirs, results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("mode", list(MODES))
def test_kill_9_then_resume_gives_the_uninterrupted_files(killed_and_reference, mode):
    dirs, results = killed_and_reference
    code, stdout, stderr = results[mode, "reference"]
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    counts = [int(line.split(" | ")[1].split()[0]) for line in lines]
    assert len(counts) == 4 and counts[0] == 1000 and min(counts) < 1000  # it did sample
    assert results[mode, "killed"][0] == -signal.SIGKILL
    out = dirs[mode, "killed"]
    code, stdout, stderr = finish(start([*RUN, "--sampling", mode, *MODES[mode], "--output_dir",
                                         out, "--resume"]))
    assert code == 0, stderr
    assert "resuming after epoch" in stdout
    assert_same_files(dirs[mode, "reference"], out)   # stats pickle, log, state: every byte

    name = RUN_NAME + NAME_SUFFIX[mode]
    with open(os.path.join(out, name + "__stats_dict.pkl"), "rb") as handle:
        stats = pickle.load(handle)
    presented = sum(len(v[0]) for k, v in stats.items() if not isinstance(k, str))
    assert presented == sum(counts)                   # one entry per presentation
    assert len(stats["test"][1]) == 4
    # the ordering script's filters find it by its mode
    assert find_stats_files(out, ["sampling", mode], say=lambda msg: None) == \
        [os.path.join(out, name + "__stats_dict.pkl")]
    # collect_results reads its row from the sampled log and the resume state
    row = read_run(os.path.join(out, name + "__stats_dict.pkl"), 4)
    assert row["finished"], row["problem"]
    assert row["final_test_acc"] == stats["test"][1][-1] and row["n_train"] == 1000
    assert row["extra_flags"] == NAME_SUFFIX[mode][2:]


def test_cifar_sgd_s_extended_by_resume_equals_the_longer_run(tiny_cifar, tmp_path):
    """The CIFAR trainer's generators (crop/flip/cutout) and the sampler's continue exactly."""
    args = [*CIFAR_RUN, "--sampling", "sgd_s"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert call_run_cifar(tiny_cifar, [*args, "--epochs", 3, "--output_dir", whole])[0] == 0
    assert call_run_cifar(tiny_cifar, [*args, "--epochs", 2, "--output_dir", part])[0] == 0
    code, stdout, stderr = call_run_cifar(tiny_cifar, [*args, "--epochs", 3, "--output_dir", part,
                                                       "--resume"])
    assert code == 0, stderr
    assert "resuming after epoch 2 of 3" in stdout
    assert "| 91 presentations |" in stdout   # epoch 3: 100 - 10 dropped + 1 (1% of 100) back
    assert_same_files(str(whole), str(part))
    name = CIFAR_FNAME + "__sampling_sgd_s__stats_dict.pkl"
    assert os.path.exists(whole / name)


def test_a_uniform_resume_state_refuses_a_sampled_log(tmp_path):
    """--resume with another --sampling finds no state under the new name: it starts afresh;
    a log of the other kind under the same name (copied by hand) is refused."""
    out = tmp_path / "out"
    assert call_main(run_mnist.main, [*MNIST_5K, "--epochs", 1, "--batch_size", 500,
                                      "--output_dir", out])[0] == 0
    uniform = mnist_fname()
    sampled = uniform + "__sampling_infobatch"
    for suffix in ("__resume_state.pt", "__resume_stats.bin"):
        os.replace(out / (uniform + suffix), out / (sampled + suffix))
    code, _, err = call_main(run_mnist.main, [*MNIST_5K, "--epochs", 2, "--batch_size", 500,
                                              "--sampling", "infobatch", "--output_dir", out,
                                              "--resume"])
    assert_one_line_error(code, err, "another --sampling", "without --resume")


@pytest.mark.parametrize("flags, needles", [
    (["--prune_ratio", "1"], ["--prune_ratio"]),
    (["--sampling", "infobatch", "--prune_ratio", "1"], ["--prune_ratio is 1.0", "[0, 1)"]),
    (["--sampling", "forgetting", "--prune_ratio", "-0.1"], ["--prune_ratio is -0.1", "[0, 1)"]),
    (["--sampling", "infobatch", "--prune_ratio", "nan"], ["--prune_ratio is nan"]),
    (["--sampling", "sgd_s", "--drop_percent", "100"], ["--drop_percent is 100.0", "[0, 100)"]),
    (["--sampling", "sgd_s", "--drop_percent", "-5"], ["--drop_percent is -5.0"]),
    (["--sampling", "sgd_s", "--readd_percent", "101"], ["--readd_percent is 101.0"]),
    (["--sampling", "infobatch", "--anneal", "1.5"], ["--anneal is 1.5"]),
    (["--sampling", "sgd_s", "--transient_epochs", "0"], ["--transient_epochs is 0"]),
    (["--sampling", "forgetting", "--transient_epochs", "-1"], ["--transient_epochs is -1"]),
    (["--drop_percent", "5"], ["--drop_percent is an option of --sampling sgd_s",
                               "not of --sampling uniform"]),
    (["--sampling", "infobatch", "--drop_percent", "5"], ["not of --sampling infobatch"]),
    (["--sampling", "sgd_s", "--anneal", "0.5"], ["--sampling infobatch or forgetting"]),
    (["--transient_epochs", "2"], ["--sampling sgd_s or forgetting"]),
    (["--sampling", "bogus"], ["--sampling"]),
])
def test_bad_sampling_flags_are_refused_touching_nothing(tmp_path, flags, needles):
    out = tmp_path / "out"
    code, _, err = call_main(run_mnist.main, [*MNIST_5K, "--output_dir", out, *flags])
    assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_cifar_refuses_sampling_options_without_sampling(tiny_cifar, tmp_path):
    out = tmp_path / "out"
    code, _, err = call_run_cifar(tiny_cifar, ["--output_dir", out, "--prune_ratio", "0.3"])
    assert_one_line_error(code, err, "--prune_ratio is an option of --sampling infobatch")
    assert not out.exists()


def test_a_file_name_over_the_limit_is_refused_before_writing(tiny_cifar, tmp_path):
    """The original's CIFAR names are about 200 characters: with a sampling option's value,
    the run's temporary files would be longer than the 255 bytes most file systems allow."""
    out = tmp_path / "out"
    code, _, err = call_run_cifar(tiny_cifar, [
        *CIFAR_RUN, "--output_dir", out, "--sampling", "sgd_s", "--drop_percent", "40"])
    assert_one_line_error(code, err, "file names would be up to", "over the 255")
    assert not out.exists()


def test_file_names_carry_the_mode_and_its_non_default_options(tmp_path):
    parsed = run_mnist.parse_args
    from forgetting.cli import check_sampling_flags
    from forgetting.files.naming import MNIST_FNAME_FLAGS, save_fname

    def name(*flags):
        args = parsed(["--output_dir", str(tmp_path), *flags])
        check_sampling_flags(args)
        return save_fname(args, MNIST_FNAME_FLAGS)[len(mnist_fname("mnist")):]

    assert name() == ""
    assert name("--sampling", "uniform") == ""
    assert name("--sampling", "sgd_s") == "__sampling_sgd_s"
    assert name("--sampling", "sgd_s", "--drop_percent", "10") == "__sampling_sgd_s"
    assert name("--sampling", "sgd_s", "--readd_percent", "2", "--transient_epochs", "3") == \
        "__sampling_sgd_s__transient_epochs_3__readd_percent_2.0"
    assert name("--sampling", "forgetting", "--anneal", "0", "--prune_ratio", "0.25") == \
        "__sampling_forgetting__prune_ratio_0.25__anneal_0.0"
    assert name("--sampling", "infobatch", "--prune_ratio", "0.7") == \
        "__sampling_infobatch__prune_ratio_0.7"
