"""--sampling on the training scripts (issue 11): uniform runs write the committed bytes (those
of the code before the feature); a sampled run survives kill -9 and --resume exactly;
file names; the epoch line; bad values refused with one line, exit 2, nothing touched."""
import os
import pickle
import signal

import pytest

import regen_digests
import run_mnist
from cifar_fixtures import call_run_cifar
from helpers import (CIFAR_FNAME, CIFAR_RUN, MNIST_5K, REPO, assert_one_line_error,
                     assert_same_files, call_main, finish, log_records, mnist_fname, start,
                     stop_all, wait_for)
from forgetting.files.run_selection import find_runs
from forgetting.analysis.results import read_run

# Killed and resumed: forgetting, whose state is the shared one (last losses, the generator)
# and its own (learned, forgotten, last correctness); sgd_s's resume is the CIFAR test's.
MODES = {"forgetting": ["--prune_ratio", "0.7"]}
NAME_SUFFIX = {"forgetting": "__sampling_forgetting__prune_ratio_0.7"}
# 1,000 of the digits (random removal keeps it quick), 4 epochs: the kill lands after the
# sampler has drawn from and observed a sampled epoch
RUN = [*MNIST_5K, "--batch_size", 100, "--seed", 3, "--epochs", 4, "--remove_n", 3000,
       "--keep_lowest_n", -1]
RUN_NAME = mnist_fname(seed=3, remove_n=3000, keep_lowest_n=-1)


@pytest.mark.slow
def test_uniform_runs_write_the_committed_files(tmp_path):
    """Every byte of a mnist_5k and a tiny-CIFAR run, as committed sha256s (when first
    committed, those the code before --sampling, commit f300742, wrote). A change meant to
    change these files regenerates them: python tests/regen_digests.py (prints the changes)."""
    committed = regen_digests.load_committed()
    if committed["environment"] != regen_digests.environment():
        pytest.skip(f"the digests are of {committed['environment']}, this is "
                    f"{regen_digests.environment()}: python tests/regen_digests.py --check")
    runs = regen_digests.run_digests(REPO, str(tmp_path))
    changed = regen_digests.changes(committed["runs"], runs)
    assert not changed, "\n".join(changed) + "\nif meant: python tests/regen_digests.py"
    assert len(runs["tiny_cifar"]) == 6   # 4 run files, checkpoint/cifar10/*.t7, changed labels


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
        stop_all(procs.values())


@pytest.mark.slow
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
    found = find_runs(out, ["sampling", mode], say=lambda msg: None)
    assert [run.path for run in found] == [os.path.join(out, name + "__stats_dict.pkl")]
    # collect_results reads its row from the run record
    row = read_run(found[0])
    assert row["finished"], row["problem"]
    assert row["final_test_acc"] == stats["test"][1][-1] and row["n_train"] == 1000
    assert row["sampling"] == mode and row["presentations"] == sum(counts)


@pytest.mark.slow
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


@pytest.mark.slow
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
