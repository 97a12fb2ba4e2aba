"""``--resume`` and the flags (issue 5, item 1; docs/training.md#resume).

A flag that changes results but not the file name must match the saved run, or the resume
is refused with one line naming it and nothing on disk changes. Resuming a finished run does
nothing and says so; a larger ``--epochs`` extends it to exactly the files of an
uninterrupted longer run. All runs here are in-process ``main(argv)`` calls on one thread.
"""
import os
import shutil

import numpy as np
import pytest

import run_mnist
from cifar_fixtures import call_run_cifar
from helpers import (CIFAR_RUN, MNIST_5K, assert_one_line_error, assert_same_files, call_main,
                     dump_pickle, mnist_fname, snapshot)
from pickles import sorting_dict

pytestmark = pytest.mark.slow  # trains real runs to resume

MNIST_RUN = [*MNIST_5K, "--batch_size", 128, "--seed", 8]


@pytest.fixture(scope="module")
def mnist_runs(tmp_path_factory):
    """Finished MNIST runs of 1 and of 2 epochs (MNIST_RUN's flags)."""
    base = tmp_path_factory.mktemp("mnist_resume")
    dirs = {}
    for epochs in (1, 2):
        dirs[epochs] = str(base / f"epochs_{epochs}")
        code, _, err = call_main(run_mnist.main, [*MNIST_RUN, "--epochs", epochs, "--output_dir",
                                                  dirs[epochs]])
        assert code == 0, err
    return dirs


def refused_resume(call, directory, flag, value, saved):
    before = snapshot(directory)
    code, _, err = call()
    fix = f"resume with {flag} {saved}" if saved != "False" else f"resume without {flag}"
    assert_one_line_error(code, err, f"{flag} is {value} but the run in", f"used {saved}", fix)
    assert snapshot(directory) == before


@pytest.mark.parametrize("flag, value, saved", [
    ("--lr", "0.02", "0.01"), ("--momentum", "0.9", "0.5"), ("--batch_size", "64", "128"),
])
def test_mnist_refuses_a_changed_result_flag(mnist_runs, flag, value, saved):
    out = mnist_runs[1]
    call = lambda: call_main(run_mnist.main, [*MNIST_RUN, flag, value, "--epochs", 2, "--resume",
                                              "--output_dir", out])
    refused_resume(call, out, flag, value, saved)


def resume_mnist(out, epochs):
    """``run_mnist.py`` with MNIST_RUN's flags and --resume, in this process: its stdout."""
    code, stdout, err = call_main(run_mnist.main, [*MNIST_RUN, "--epochs", epochs, "--resume",
                                                   "--output_dir", out])
    assert code == 0, err
    return stdout


def test_mnist_resume_of_a_finished_run_changes_nothing_and_says_so(mnist_runs):
    out = mnist_runs[2]
    before = snapshot(out)
    stdout = resume_mnist(out, 2)
    assert "already finished 2 epochs" in stdout and "nothing to do" in stdout
    assert snapshot(out) == before          # not a byte, not a time stamp


def test_mnist_larger_epochs_extends_a_finished_run(mnist_runs, tmp_path):
    out = str(tmp_path / "extended")
    shutil.copytree(mnist_runs[1], out)
    assert "resuming after epoch 1 of 2" in resume_mnist(out, 2)
    assert_same_files(mnist_runs[2], out)


def test_mnist_no_extend_refuses_other_epochs_and_resumes_the_same(mnist_runs):
    """sweep.py's guard: with --no_extend a run is neither extended nor taken for finished at
    another length; with its own --epochs it resumes as without the flag."""
    for epochs, recorded in ((2, 1), (1, 2)):
        out = mnist_runs[recorded]
        before = snapshot(out)
        code, _, err = call_main(run_mnist.main, [*MNIST_RUN, "--epochs", epochs, "--resume",
                                                  "--no_extend", "--output_dir", out])
        assert_one_line_error(code, err, f"--epochs is {epochs} but the run in",
                              f"started with --epochs {recorded}", "drop --no_extend")
        assert snapshot(out) == before
    out = mnist_runs[2]
    before = snapshot(out)
    code, stdout, err = call_main(run_mnist.main, [*MNIST_RUN, "--epochs", 2, "--resume",
                                                   "--no_extend", "--output_dir", out])
    assert code == 0, err
    assert "already finished 2 epochs" in stdout and snapshot(out) == before


def test_mnist_resume_without_a_saved_run_starts_from_scratch(mnist_runs, tmp_path):
    out = str(tmp_path / "fresh")
    stdout = resume_mnist(out, 1)
    assert "no resume state" in stdout and "starting from scratch" in stdout
    assert_same_files(mnist_runs[1], out)


def test_mnist_refuses_to_resume_on_a_changed_training_set(tmp_path):
    """The sorting file is in the file name by name only: a re-created one with other ids
    would silently train another set."""
    inputs, out = tmp_path / "in", str(tmp_path / "out")
    inputs.mkdir()

    def write_order(seed):
        dump_pickle(inputs / "order.pkl", sorting_dict(np.random.RandomState(seed).permutation(4000)))

    flags = [*MNIST_RUN, "--input_dir", inputs, "--sorting_file", "order", "--remove_n", 1000,
             "--output_dir", out]
    write_order(0)
    code, _, err = call_main(run_mnist.main, [*flags, "--epochs", 1])
    assert code == 0, err
    write_order(1)
    before = snapshot(out)
    code, _, err = call_main(run_mnist.main, [*flags, "--epochs", 2, "--resume"])
    assert_one_line_error(code, err, "the training set differs", "start over without --resume")
    assert snapshot(out) == before
    name = mnist_fname(seed=8, sorting_file="order", remove_n=1000)
    assert os.path.exists(os.path.join(out, name + "__stats_dict.pkl"))


# ----------------------------------------------------------------------------- CIFAR

@pytest.mark.parametrize("flag, value, saved", [
    ("--learning_rate", "0.05", "0.1"), ("--batch_size", "25", "50"), ("--model", "wideresnet", "resnet18"),
    ("--optimizer", "adam", "sgd"), ("--n_holes", "2", "1"), ("--length", "8", "16"),
    ("--amp", None, "False"),
])
def test_cifar_refuses_a_changed_result_flag(tiny_cifar, cifar_reference, flag, value, saved):
    changed = [flag] if value is None else [flag, value]
    call = lambda: call_run_cifar(tiny_cifar, [*CIFAR_RUN, *changed, "--epochs", 4, "--resume",
                                               "--output_dir", cifar_reference])
    refused_resume(call, cifar_reference, flag, "True" if value is None else value, saved)


def test_cifar_resume_of_a_finished_run_changes_nothing_and_says_so(tiny_cifar, cifar_reference):
    before = snapshot(cifar_reference)
    code, stdout, err = call_run_cifar(tiny_cifar, [*CIFAR_RUN, "--epochs", 3, "--resume",
                                                    "--output_dir", cifar_reference])
    assert code == 0, err
    assert "already finished 3 epochs" in stdout and "nothing to do" in stdout
    assert snapshot(cifar_reference) == before   # _changed_labels.txt and .t7 included


def test_cifar_larger_epochs_extends_a_finished_run(tiny_cifar, cifar_reference, tmp_path):
    out = str(tmp_path / "out")
    for epochs, resume in ((2, []), (3, ["--resume"])):
        code, stdout, err = call_run_cifar(tiny_cifar, [*CIFAR_RUN, "--epochs", epochs, *resume,
                                                        "--output_dir", out])
        assert code == 0, err
    assert "resuming after epoch 2 of 3" in stdout
    assert_same_files(cifar_reference, out)


def test_cifar_adam_resume_ignores_learning_rate(tiny_cifar, tmp_path):
    """adam trains at lr 0.001 whatever --learning_rate says, so resuming may change it."""
    out = str(tmp_path / "adam")
    # 50 random images of the 100: one batch an epoch is all this needs
    adam = [*CIFAR_RUN, "--optimizer", "adam", "--keep_lowest_n", -1, "--remove_n", 50,
            "--output_dir", out]
    code, _, err = call_run_cifar(tiny_cifar, [*adam, "--epochs", 1])
    assert code == 0, err
    code, stdout, err = call_run_cifar(tiny_cifar, [*adam, "--epochs", 2, "--learning_rate", "0.05",
                                                    "--resume"])
    assert code == 0, err
    assert "resuming after epoch 1 of 2" in stdout
