"""Bad input (issue 5, item 4; docs/deviations.md, item 7): refused before any work with one
``error:`` line naming the problem and the fix, exit status 2, no traceback, and nothing on
disk touched: every test snapshots the whole work tree (names, bytes, mtimes, modes) first.

Every case calls the scripts' ``main(argv)`` in this process (fast); one test runs real
processes to show the same end to end.
"""
import errno
import os
import pickle
import subprocess

import numpy as np
import pytest

import order_examples_by_forgetting
import run_cifar
import run_mnist
from cifar_fixtures import call_run_cifar
from helpers import (MNIST_5K, PYTHON, REPO, TIMEOUT, assert_one_line_error, call_main, cli_env,
                     mnist_fname, snapshot)
from helpers import dump_pickle as dump
from pickles import RunsShell, sorting_dict, stats_dict

N_MNIST, N_CIFAR = 4000, 100


def sorting(ids):
    return sorting_dict(np.asarray(ids, dtype=np.int64))


@pytest.fixture
def work(tmp_path):
    """in/: sorting files good and bad for both datasets; out/: an earlier run's files;
    a_file: a plain file. Returns (paths, marker) where marker is what a hostile pickle
    would create."""
    d = {name: tmp_path / name for name in ("in", "out")}
    for path in d.values():
        path.mkdir()
    marker = tmp_path / "pwned"
    for tag, n in (("mnist", N_MNIST), ("cifar", N_CIFAR)):
        perm = np.random.RandomState(0).permutation(n)
        dump(d["in"] / f"{tag}_order.pkl", sorting(perm))
        dump(d["in"] / f"{tag}_no_indices.pkl", {"forgetting counts": np.zeros(n, dtype=np.int64)})
        dump(d["in"] / f"{tag}_out_of_range.pkl", sorting(np.append(perm[:-1], n)))
        dump(d["in"] / f"{tag}_negative.pkl", sorting(np.append(perm[:-1], -1)))
        dump(d["in"] / f"{tag}_repeated.pkl", sorting(np.append(perm[:-1], perm[0])))
        dump(d["in"] / f"{tag}_hostile.pkl", {"indices": RunsShell(f"touch {marker}")})
        good = (d["in"] / f"{tag}_order.pkl").read_bytes()
        (d["in"] / f"{tag}_truncated.pkl").write_bytes(good[:len(good) // 2])
    (d["in"] / "garbage.pkl").write_bytes(b"this is not a pickle\n")
    dump(d["in"] / "a_list.pkl", [3, 1, 2])
    # an earlier run in out/, which a refused command must leave exactly as it was
    for name in (mnist_fname(), mnist_fname(sorting_file="mnist_order", remove_n=4000)):
        dump(d["out"] / (name + "__stats_dict.pkl"), {0: [[0.5], [1], [0.1]], "train": [[], [100.0]],
                                                      "test": [[], [90.0]]})
        (d["out"] / (name + "__best_acc.txt")).write_text("train test \n100.0 90.0")
    d["file"] = tmp_path / "a_file"
    d["file"].write_text("a file, not a directory")
    d["root"] = tmp_path
    return d, marker


def refused(tree, marker, call, *needles):
    """Run ``call()`` -> (code, out, err); check the refusal and that nothing changed."""
    before = snapshot(tree)
    code, out, err = call()
    line = assert_one_line_error(code, err, *needles, out=out)
    assert snapshot(tree) == before
    assert not marker.exists()
    return line


# ----------------------------------------------------------------------------- both training scripts

# (id, extra flags with {in}/{out}/{file}/{tag} placeholders, needles in the message)
TRAINING_CASES = [
    ("negative-remove_n", ["--remove_n", "-1"], ["--remove_n is -1", "0 or more"]),
    ("empty-after-random-removal", ["--keep_lowest_n", "-1", "--remove_n", "{n}"],
     ["removes the whole training set", "remove fewer"]),
    ("empty-after-sorted-removal", ["--sorting_file", "{tag}_order", "--remove_n", "{n}"],
     ["leaves no training examples", "remove fewer"]),
    ("missing-sorting-file", ["--sorting_file", "absent", "--remove_n", "5"],
     ["sorting file not found", "absent", "--input_dir", "--sorting_file"]),
    ("sorting-file-without-indices", ["--sorting_file", "{tag}_no_indices", "--remove_n", "5"],
     ["{tag}_no_indices.pkl has no 'indices'"]),
    ("sorting-ids-out-of-range", ["--sorting_file", "{tag}_out_of_range", "--remove_n", "5"],
     ["outside 0..{last}", "another dataset"]),
    ("sorting-ids-negative", ["--sorting_file", "{tag}_negative", "--remove_n", "5"],
     ["outside 0..{last}"]),
    ("sorting-ids-repeated", ["--sorting_file", "{tag}_repeated", "--remove_n", "5"],
     ["appear more than once", "re-create"]),
    ("sorting-file-truncated", ["--sorting_file", "{tag}_truncated", "--remove_n", "5"],
     ["{tag}_truncated.pkl", "not a complete pickle"]),
    ("sorting-file-garbage", ["--sorting_file", "garbage", "--remove_n", "5"],
     ["garbage.pkl", "not a complete pickle"]),
    ("sorting-file-not-a-dict", ["--sorting_file", "a_list", "--remove_n", "5"],
     ["a_list.pkl has no 'indices'"]),
    ("hostile-sorting-file", ["--sorting_file", "{tag}_hostile", "--remove_n", "5"],
     ["{tag}_hostile.pkl", "refuses to load", "system"]),
    ("zero-epochs", ["--epochs", "0"], ["--epochs is 0", "at least 1"]),
    ("negative-epochs", ["--epochs", "-3"], ["--epochs is -3"]),
    ("zero-batch-size", ["--batch_size", "0"], ["--batch_size is 0", "at least 1"]),
    ("zero-threads", ["--threads", "0"], ["--threads is 0"]),
    ("output-is-a-file", ["--output_dir", "{file}"], ["--output_dir", "is a file"]),
    ("output-below-a-file", ["--output_dir", "{file}/sub"], ["--output_dir", "cannot be created"]),
    ("unknown-dataset", ["--dataset", "svhn"], ["--dataset", "invalid choice: 'svhn'"]),
    # the noise flags, the same in both scripts (forgetting/cli.py check_noise_flags)
    ("label-noise-above-100", ["--noise_percent_labels", "101"], ["--noise_percent_labels is 101", "0..100"]),
    ("label-noise-negative", ["--noise_percent_labels", "-1"], ["--noise_percent_labels is -1"]),
    ("pixel-noise-above-100", ["--noise_percent_pixels", "150"], ["--noise_percent_pixels is 150"]),
    ("pixel-noise-negative", ["--noise_percent_pixels", "-5"], ["--noise_percent_pixels is -5"]),
    ("negative-noise-std", ["--noise_std_pixels", "-0.5"], ["--noise_std_pixels is -0.5", "0 or more"]),
    ("nan-noise-std", ["--noise_std_pixels", "nan"], ["--noise_std_pixels is nan", "0 or more"]),
]
MNIST_ONLY_CASES = [
    ("mlp-without-dropout", ["--model", "mlp", "--no_dropout"],
     ["--no_dropout removes mnist_net's dropout", "leave out --no_dropout"]),
    ("unknown-model", ["--model", "lenet"], ["--model", "invalid choice: 'lenet'"]),
]
CIFAR_ONLY_CASES = [
    ("remove_subsample-without-sorting-file", ["--remove_subsample", "5", "--keep_lowest_n", "10"],
     ["--remove_subsample needs a --sorting_file"]),
    ("remove_subsample-above-keep_lowest_n",
     ["--sorting_file", "cifar_order", "--remove_subsample", "11", "--keep_lowest_n", "10"],
     ["--remove_subsample 11 is larger than --keep_lowest_n 10"]),
    ("negative-remove_subsample", ["--sorting_file", "cifar_order", "--remove_subsample", "-2"],
     ["--remove_subsample is -2"]),
    ("keep_lowest_n-beyond-sorting-file",
     ["--sorting_file", "cifar_order", "--remove_subsample", "5", "--keep_lowest_n", "101"],
     ["--keep_lowest_n 101 is larger than the sorting file's 100 ids"]),
    ("unknown-model", ["--model", "vgg16"], ["--model", "invalid choice: 'vgg16'"]),
    ("unknown-optimizer", ["--optimizer", "rmsprop"], ["--optimizer", "invalid choice: 'rmsprop'"]),
]


def fill(items, d, tag, n):
    values = dict(out=d["out"], file=d["file"], tag=tag, n=n, last=n - 1)
    return [str(item).format(**values) for item in items]


def training_call(script, d, tiny_cifar, extra):
    """The refusal call for ``script``: its in-process main with the usual directories."""
    if script == "mnist":
        argv = [*MNIST_5K, "--epochs", "1", "--input_dir", d["in"], "--output_dir", d["out"], *extra]
        return lambda: call_main(run_mnist.main, argv)
    argv = ["--no-cuda", "--threads", "1", "--epochs", "1", "--input_dir", d["in"], "--output_dir",
            d["out"], *extra]
    return lambda: call_run_cifar(tiny_cifar, argv)


@pytest.mark.parametrize("script", ["mnist", "cifar"])
@pytest.mark.parametrize("flags, needles", [case[1:] for case in TRAINING_CASES],
                         ids=[case[0] for case in TRAINING_CASES])
def test_training_scripts_refuse(script, flags, needles, work, tiny_cifar):
    d, marker = work
    n = N_MNIST if script == "mnist" else N_CIFAR
    refused(d["root"], marker, training_call(script, d, tiny_cifar, fill(flags, d, script, n)),
            *fill(needles, d, script, n))


@pytest.mark.parametrize("flags, needles", [case[1:] for case in MNIST_ONLY_CASES],
                         ids=[case[0] for case in MNIST_ONLY_CASES])
def test_run_mnist_refuses(flags, needles, work, tiny_cifar):
    d, marker = work
    refused(d["root"], marker, training_call("mnist", d, tiny_cifar, flags), *needles)


@pytest.mark.parametrize("flags, needles", [case[1:] for case in CIFAR_ONLY_CASES],
                         ids=[case[0] for case in CIFAR_ONLY_CASES])
def test_run_cifar_refuses(flags, needles, work, tiny_cifar):
    d, marker = work
    refused(d["root"], marker, training_call("cifar", d, tiny_cifar, flags), *needles)


@pytest.mark.parametrize("script", ["mnist", "cifar"])
def test_an_unwritable_output_dir_is_refused(script, work, tiny_cifar, monkeypatch):
    d, marker = work
    if os.geteuid() == 0:  # root writes anywhere: make os.access answer as for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.path.abspath(path)
                            == os.path.abspath(d["out"]) else real_access(path, mode, **kw))
    else:
        os.chmod(d["out"], 0o555)
    try:
        refused(d["root"], marker, training_call(script, d, tiny_cifar, []),
                f"--output_dir {d['out']} is not writable")
    finally:
        os.chmod(d["out"], 0o755)


@pytest.mark.parametrize("script", ["mnist", "cifar"])
def test_an_output_dir_the_os_will_not_create_is_one_line(script, work, tiny_cifar, monkeypatch):
    """A read-only file system (or quota, or a race) that os.access did not foresee."""
    d, marker = work
    new = d["root"] / "new_results"

    real_makedirs = os.makedirs

    def read_only(path, *args, **kwargs):
        if os.path.abspath(path) == str(new):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", read_only)
    call = training_call(script, d, tiny_cifar, ["--output_dir", new])
    refused(d["root"], marker, call, f"--output_dir {new} cannot be created",
            os.strerror(errno.EROFS))
    assert not new.exists()


# Refused before the output or data directory is made: (script, flags, needles).
NOTHING_CREATED_CASES = [
    ("mnist", ["--epochs", "0"], ["--epochs is 0"]),
    ("cifar", ["--epochs", "0"], ["--epochs is 0"]),
    ("cifar", ["--remove_n", "-3"], ["--remove_n is -3"]),
    ("mnist", ["--noise_percent_labels", "101"], ["--noise_percent_labels is 101"]),
    ("mnist", ["--noise_std_pixels", "-1"], ["--noise_std_pixels is -1.0"]),
    ("mnist", ["--model", "mlp", "--no_dropout"], ["--model mlp has none"]),
    ("cifar", ["--noise_percent_labels", "101"], ["--noise_percent_labels is 101"]),
    ("cifar", ["--noise_percent_pixels", "-1"], ["--noise_percent_pixels is -1"]),
    ("cifar", ["--noise_std_pixels", "-0.5"], ["--noise_std_pixels is -0.5"]),
    ("cifar", ["--n_holes", "-1"], ["--n_holes is -1"]),
    ("cifar", ["--sorting_file", "x", "--keep_lowest_n", "5", "--remove_subsample", "6"],
     ["--remove_subsample 6 is larger than --keep_lowest_n 5"]),
    ("cifar", ["--remove_subsample", "5", "--keep_lowest_n", "10"],
     ["--remove_subsample needs a --sorting_file"]),
    ("cifar", ["--model", "vgg"], ["invalid choice: 'vgg'"]),
    ("cifar", ["--optimizer", "rmsprop"], ["invalid choice: 'rmsprop'"]),
    ("cifar", ["--dataset", "svhn"], ["invalid choice: 'svhn'"]),
]


@pytest.mark.parametrize("script, flags, needles", NOTHING_CREATED_CASES,
                         ids=[f"{c[0]}{'_'.join(c[1][:2])}" for c in NOTHING_CREATED_CASES])
def test_a_refusal_creates_neither_output_nor_data_dir(script, flags, needles, tmp_path):
    out, data = tmp_path / "out", tmp_path / "nodata"
    main = run_mnist.main if script == "mnist" else run_cifar.main
    code, stdout, err = call_main(main, ["--output_dir", out, "--data_dir", data, *flags])
    assert_one_line_error(code, err, *needles, out=stdout)
    assert not out.exists() and not data.exists()


@pytest.mark.parametrize("script", ["mnist", "cifar"])
def test_a_window_past_the_end_of_the_sorting_file_is_not_an_error(script, work, tiny_cifar,
                                                                   monkeypatch):
    d, _ = work
    jobs = []
    monkeypatch.setattr(run_mnist if script == "mnist" else run_cifar, "run_job", jobs.append)
    n = N_MNIST if script == "mnist" else N_CIFAR
    flags = ["--sorting_file", f"{script}_order", "--keep_lowest_n", n - 10, "--remove_n", 100]
    code, out, err = training_call(script, d, tiny_cifar, flags)()
    assert code == 0, err
    assert "runs past the end of the sorting file" in out and "removing 10 examples" in out
    perm = np.random.RandomState(0).permutation(n)
    assert jobs[0].train_ids.tolist() == sorted(perm[:n - 10].tolist())


# ----------------------------------------------------------------------------- ordering

STATS_NAME = "dataset_mnist__no_dropout_True__seed_{seed}__sorting_file_none__remove_n_0__keep_lowest_n_0__stats_dict.pkl"


def stats(ids):
    return stats_dict({i: ([1, 0, 1], [0.5, 0.5, 0.5]) for i in ids}, key=np.int64)


def stats_file(seed, content):
    """``make_inputs`` for one stats file (seed ``seed``) holding ``content`` (bytes, or an
    object to pickle); a good seed-1 run comes first when ``seed`` is 2."""
    def make(inputs):
        if seed == 2:
            dump(inputs / STATS_NAME.format(seed=1), stats(range(5)))
        path = inputs / STATS_NAME.format(seed=seed)
        path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=2))
    return make


# (id, make_inputs(inputs dir), extra flags, needles with {inputs})
ORDER_CASES = [
    ("no-matching-file", stats_file(1, stats(range(5))), ["--input_fname_args", "seed", "2"],
     ["No input files found in {inputs} that match ['seed', '2']"]),
    ("no-stats-file-at-all", lambda i: (i / "notes.txt").write_text("x"), [], ["No input files found"]),
    ("truncated-stats-file", stats_file(1, pickle.dumps(stats(range(5)))[:-30]), [],
     [STATS_NAME.format(seed=1), "not a complete pickle"]),
    ("truncated-second-file", stats_file(2, pickle.dumps(stats(range(5)))[:-40]), [],
     [STATS_NAME.format(seed=2), "not a complete pickle"]),
    ("sorting-file-as-stats-file", stats_file(1, sorting([2, 0, 1])), [],
     [STATS_NAME.format(seed=1), "not a complete stats file"]),
    ("sorting-file-as-second-file", stats_file(2, {"indices": np.arange(3), "forgetting counts": np.zeros(3)}),
     [], [STATS_NAME.format(seed=2), "not a complete stats file"]),
    ("garbage-stats-file", stats_file(1, b"\x80\x04garbage"), [],
     [STATS_NAME.format(seed=1), "not a complete pickle"]),
    ("list-stats-file", stats_file(2, [1, 2, 3]), [], [STATS_NAME.format(seed=2), "not a dict"]),
    ("two-lists", stats_file(2, {0: [[0.1], [1]], "train": [[], []]}), [],
     [STATS_NAME.format(seed=2), "three lists"]),
    ("acc-3", stats_file(2, {0: [[0.1, 0.2], [1, 3], [0.0, 0.0]]}), [],
     [STATS_NAME.format(seed=2), "not 0 or 1"]),
    ("ids-differ", stats_file(2, stats([0, 1, 2, 3, 9])), [],
     [STATS_NAME.format(seed=2), "example ids differ", "1 ids only in this file, 1 only in the first"]),
    ("zero-epochs", stats_file(1, stats(range(5))), ["--epochs", "0"], ["--epochs must be at least 1"]),
    # issue 20, item 7: files that do not add up
    ("uneven-presentations", stats_file(2, {**stats(range(5)), np.int64(3): [[0.5], [1], [0.1]]}), [],
     [STATS_NAME.format(seed=2), "example 3 has 1 presentations but example 0 has 3"]),
    ("epochs-beyond-the-run", stats_file(1, stats(range(5))), ["--epochs", "4"],
     [STATS_NAME.format(seed=1), "--epochs 4 asks for more presentations than the run holds (3 per "
      "example); give --epochs 3 or less"]),
    ("test-accuracy-nan", stats_file(2, {**stats(range(5)), "test": [[], [float("nan")]]}), [],
     [STATS_NAME.format(seed=2), "'test' accuracy nan (entry 0) is not a percentage in 0..100"]),
    ("odd-fname-args", lambda i: None, ["--input_fname_args", "seed"], ["name/value pairs"]),
]


@pytest.mark.parametrize("make_inputs, flags, needles", [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])
def test_ordering_refuses(make_inputs, flags, needles, tmp_path):
    inputs = tmp_path / "runs"
    inputs.mkdir()
    make_inputs(inputs)
    argv = ["--input_dir", inputs, "--output_dir", tmp_path / "sorted", "--output_name", "order",
            "--output_dir_MLI", tmp_path / "mli", "--epochs", "2", *flags]  # a later --epochs wins
    refused(tmp_path, tmp_path / "pwned", lambda: call_main(order_examples_by_forgetting.main, argv),
            *[needle.format(inputs=inputs) for needle in needles])


def test_ordering_refuses_a_hostile_stats_file(tmp_path):
    inputs = tmp_path / "runs"
    inputs.mkdir()
    marker = tmp_path / "pwned"
    hostile = stats(range(5))
    hostile["train"] = RunsShell(f"touch {marker}")
    dump(inputs / STATS_NAME.format(seed=1), hostile)
    argv = ["--input_dir", inputs, "--output_dir", tmp_path / "sorted", "--output_name", "order"]
    refused(tmp_path, marker, lambda: call_main(order_examples_by_forgetting.main, argv),
            STATS_NAME.format(seed=1), f"refuses to load '{os.system.__module__}.system'")


@pytest.mark.parametrize("which, needles", [
    ("input", ["--input_dir {absent} does not exist"]),
    ("output", ["--output_dir", "exists and is not a directory"]),
    ("mli", ["--output_dir_MLI", "exists and is not a directory"]),
])
def test_ordering_refuses_bad_directories(which, needles, tmp_path):
    inputs = tmp_path / "runs"
    inputs.mkdir()
    dump(inputs / STATS_NAME.format(seed=1), stats(range(5)))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    dirs = {"input": inputs, "output": tmp_path / "sorted", "mli": tmp_path / "mli"}
    dirs[which] = tmp_path / "absent" if which == "input" else blocker
    argv = ["--input_dir", dirs["input"], "--output_dir", dirs["output"], "--output_name", "order",
            "--output_dir_MLI", dirs["mli"]]
    refused(tmp_path, tmp_path / "pwned", lambda: call_main(order_examples_by_forgetting.main, argv),
            *[needle.format(absent=tmp_path / "absent") for needle in needles])


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_refusals_end_to_end_have_no_traceback(work, tiny_cifar):
    """Real processes: run_mnist.py with a hostile sorting file, run_cifar.py (the wrapper
    with the tiny CIFAR's md5s) with a removal that leaves nothing."""
    d, marker = work
    before = snapshot(d["root"])
    mnist = subprocess.Popen(
        [PYTHON, "run_mnist.py", *MNIST_5K, "--input_dir", str(d["in"]), "--sorting_file",
         "mnist_hostile", "--remove_n", "5", "--output_dir", str(d["out"])],
        cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cifar = subprocess.Popen(
        [PYTHON, tiny_cifar.wrapper, "--data_dir", tiny_cifar.data_dir, "--no-cuda",
         "--keep_lowest_n", "-1", "--remove_n", str(N_CIFAR), "--output_dir", str(d["out"])],
        cwd=str(d["root"]), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.communicate(timeout=TIMEOUT), p.returncode) for p in (mnist, cifar)]
    (_, mnist_err), mnist_code = results[0]
    (_, cifar_err), cifar_code = results[1]
    assert_one_line_error(mnist_code, mnist_err, "mnist_hostile.pkl", "refuses to load")
    assert_one_line_error(cifar_code, cifar_err, "removes the whole training set of 100")
    assert snapshot(d["root"]) == before
    assert not marker.exists()


def test_label_noise_on_a_single_class_is_refused_before_the_output_dir_exists(work, tiny_cifar):
    """The label-noise check comes after the data is loaded and selected: even then no
    output directory may appear."""
    d, marker = work
    labels = tiny_cifar.arrays["train_y"]
    others_first = np.concatenate([np.flatnonzero(labels != 0), np.flatnonzero(labels == 0)])
    dump(d["in"] / "class0_last.pkl", sorting(others_first))
    new = d["root"] / "new_results"
    flags = ["--sorting_file", "class0_last", "--remove_n", int((labels != 0).sum()),
             "--noise_percent_labels", 50, "--output_dir", new]
    refused(d["root"], marker, training_call("cifar", d, tiny_cifar, flags),
            "needs at least two distinct labels", "remove fewer")
    assert not new.exists()
