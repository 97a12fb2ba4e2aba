"""run_mnist.py end to end, as users run it: subprocesses, files on disk, plain pickle.load.

Every run here is a real ``python run_mnist.py ...`` with ``--threads 1``. Runs that do not
depend on each other are started together when the module's first test asks for any of
them (the machine has 2 cores and most of a run is interpreter start-up), and each run is
shared by all the tests that look at it. Refusals, and resuming, are tested in-process in
tests/test_bad_input.py and tests/test_resume_flags.py, and after kill -9 in
tests/test_crash_safety.py.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import (REPO, TIMEOUT, example_keys, load_pickle, mnist_fname, stop_all,
                     write_small_mnist)

pytestmark = pytest.mark.slow  # run_mnist.py subprocesses

RUN_MNIST = os.path.join(REPO, "run_mnist.py")
ORDER = os.path.join(REPO, "order_examples_by_forgetting.py")

MNIST_NAME = mnist_fname(dataset="mnist")


def fname(no_dropout=True, **flags):
    return mnist_fname(no_dropout=no_dropout, **flags)


# ----------------------------------------------------------------------------- helpers

class Runs:
    """Subprocesses started now, collected when a test needs their result."""

    def __init__(self):
        self.procs, self.results = {}, {}

    def start(self, name, args, script=RUN_MNIST):
        argv = [sys.executable, script, *map(str, args)]
        if script == RUN_MNIST:
            argv += ["--threads", "1"]
        self.procs[name] = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)

    def result(self, name):
        if name not in self.results:
            proc = self.procs[name]
            out, err = proc.communicate(timeout=TIMEOUT)
            self.results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return self.results[name]

    def ok(self, name):
        res = self.result(name)
        assert res.returncode == 0, f"{name} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        return res


# Runs in a process without the repository on its path (-I: no PYTHONPATH, no cwd on sys.path,
# cwd is elsewhere; `leaked`: loading imported none of the project, numpy or torch): plain
# pickle.load, then docs/files.md#stats-pickle's layout, checked item by item.
LAYOUT_CHECK = textwrap.dedent("""
    import json, pickle, sys
    with open(sys.argv[1], "rb") as handle:
        stats = pickle.load(handle)
    epochs, n_batches = int(sys.argv[2]), int(sys.argv[3])
    problems = []
    assert type(stats) is dict
    keys = [k for k in stats if k not in ("train", "test")]
    for k in keys:
        if type(k) is not int:
            problems.append(f"key {k!r} is {type(k)}")
            continue
        v = stats[k]
        if type(v) is not list or len(v) != 3 or any(type(x) is not list or len(x) != epochs for x in v):
            problems.append(f"entry {k} is not three lists of {epochs}")
            continue
        if not all(type(x) is float for x in v[0]): problems.append(f"losses of {k}")
        if not all(type(x) is int and x in (0, 1) for x in v[1]): problems.append(f"accs of {k}")
        if not all(type(x) is float for x in v[2]): problems.append(f"margins of {k}")
    for name, n in (("train", epochs * n_batches), ("test", epochs)):
        v = stats.get(name)
        if not (type(v) is list and len(v) == 2 and v[0] == [] and type(v[0]) is list
                and type(v[1]) is list and len(v[1]) == n and all(type(x) is float for x in v[1])):
            problems.append(f"{name!r} entry is not [[], {n} floats]")
    # the last running accuracy of an epoch is 100 * (correct examples) / n_train
    for e in range(epochs):
        correct = sum(stats[k][1][e] for k in keys)
        if stats["train"][1][(e + 1) * n_batches - 1] != 100. * correct / float(len(keys)):
            problems.append(f"epoch {e}: last running train accuracy != 100*correct/n")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "torch", "forgetting"))
    print(json.dumps({"problems": problems, "keys": keys, "leaked": leaked,
                      "max_train": str(max(stats["train"][1])), "max_test": str(max(stats["test"][1]))}))
""")


def check_layout_elsewhere(path, epochs, n_batches, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    res = subprocess.run([sys.executable, "-I", "-c", LAYOUT_CHECK, str(path), str(epochs), str(n_batches)],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["problems"] == []
    assert report["leaked"] == []
    return report


def kept_per_class_line(trained_ids):
    """The line a removal run prints, counted here with a plain loop over mnist_5k's labels."""
    from forgetting.data.datasets import load_mnist_5k

    labels = load_mnist_5k().train_y.tolist()
    kept = [0] * 10
    for example_id in trained_ids:
        kept[labels[example_id]] += 1
    return (f"keeping {len(trained_ids)} of 4000 examples, per class (kept/all): "
            + " ".join(f"{c}:{kept[c]}/400" for c in range(10)))


# ----------------------------------------------------------------------------- the runs

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Start every independent run at once; dependent ones start in their fixtures."""
    base = tmp_path_factory.mktemp("cli")
    d = {name: str(base / name) for name in (
        "mnist_data", "mnist_out", "forget", "order_out", "sorted_out", "random_out", "noisy_out",
        "mlp_order")}
    write_small_mnist(d["mnist_data"])

    runs = Runs()
    runs.start("mnist", ["--dataset", "mnist", "--data_dir", d["mnist_data"], "--epochs", 2,
                         "--output_dir", d["mnist_out"]])
    five_k = ["--dataset", "mnist_5k", "--batch_size", 128]
    for seed in (1, 2):
        runs.start(f"forget{seed}", five_k + ["--no_dropout", "--epochs", 2, "--seed", seed,
                                              "--output_dir", d["forget"]])
    runs.start("random", five_k + ["--epochs", 1, "--seed", 7, "--keep_lowest_n", -1, "--remove_n", 500,
                                   "--output_dir", d["random_out"]])
    runs.start("noisy", five_k + ["--epochs", 1, "--noise_percent_labels", 20, "--save_weights_at", 1,
                                  "--output_dir", d["noisy_out"]])
    # in the directory of the mnist_net runs: the ordering selects it by --input_fname_args model mlp
    runs.start("mlp", five_k + ["--model", "mlp", "--epochs", 1, "--save_weights_at", 1,
                                "--output_dir", d["forget"]])
    yield runs, d
    stop_all(runs.procs.values())


# ----------------------------------------------------------------------------- torchvision MNIST

def test_torchvision_mnist_end_to_end(work):
    runs, d = work
    runs.ok("mnist")
    files = sorted(os.listdir(d["mnist_out"]))
    assert MNIST_NAME + "__stats_dict.pkl" in files
    assert MNIST_NAME + "__best_acc.txt" in files
    others = set(files) - {MNIST_NAME + "__stats_dict.pkl", MNIST_NAME + "__best_acc.txt"}
    # nothing else but the run's own resume files and record (no temporary files left behind)
    assert others == {MNIST_NAME + "__resume_state.pt", MNIST_NAME + "__resume_stats.bin",
                      MNIST_NAME + "__run.json"}, files
    stats = load_pickle(os.path.join(d["mnist_out"], MNIST_NAME + "__stats_dict.pkl"))
    assert example_keys(stats) == list(range(300))
    assert len(stats["train"][1]) == 2 * 5 and len(stats["test"][1]) == 2


def test_stats_pickle_loads_without_the_project(work, tmp_path):
    runs, d = work
    runs.ok("mnist")
    path = os.path.join(d["mnist_out"], MNIST_NAME + "__stats_dict.pkl")
    report = check_layout_elsewhere(path, epochs=2, n_batches=5, cwd=tmp_path)
    assert report["keys"] == list(range(300))
    with open(os.path.join(d["mnist_out"], MNIST_NAME + "__best_acc.txt"), "rb") as handle:
        text = handle.read().decode()
    assert text == f"train test \n{report['max_train']} {report['max_test']}"
    # test accuracy is a whole number of the 100 test digits
    stats = load_pickle(path)
    assert all(100. * round(v) / 100 == v for v in stats["test"][1])


# ----------------------------------------------------------------------------- forgetting loop

@pytest.fixture(scope="module")
def ordering(work):
    runs, d = work
    runs.ok("forget1"), runs.ok("forget2")
    runs.start("order", ["--input_dir", d["forget"], "--input_fname_args", "dataset", "mnist_5k",
                         "no_dropout", "True", "--output_dir", d["order_out"], "--output_name",
                         "mnist_5k_sorted", "--epochs", 2], script=ORDER)
    res = runs.ok("order")
    order = load_pickle(os.path.join(d["order_out"], "mnist_5k_sorted.pkl"))
    return res, order


def test_forgetting_runs_have_the_layout(work, tmp_path):
    runs, d = work
    for seed in (1, 2):
        runs.ok(f"forget{seed}")
        path = os.path.join(d["forget"], fname(seed=seed) + "__stats_dict.pkl")
        report = check_layout_elsewhere(path, epochs=2, n_batches=32, cwd=tmp_path)
        assert report["keys"] == list(range(4000))
        with open(os.path.join(d["forget"], fname(seed=seed) + "__best_acc.txt")) as handle:
            assert handle.read() == f"train test \n{report['max_train']} {report['max_test']}"
    a = load_pickle(os.path.join(d["forget"], fname(seed=1) + "__stats_dict.pkl"))
    b = load_pickle(os.path.join(d["forget"], fname(seed=2) + "__stats_dict.pkl"))
    assert a["train"] != b["train"]          # the seed matters


def test_ordering_of_the_two_runs(work, ordering):
    runs, d = work
    res, order = ordering
    lines = res.stdout.splitlines()
    for seed in (1, 2):
        assert f"including file: {fname(seed=seed)}__stats_dict.pkl" in lines
    # forgetting counts recomputed with a plain loop over both runs
    counts = {}
    for seed in (1, 2):
        stats = load_pickle(os.path.join(d["forget"], fname(seed=seed) + "__stats_dict.pkl"))
        for k in example_keys(stats):
            accs = stats[k][1][:2]
            events = sum(1 for t in range(1, len(accs)) if accs[t - 1] == 1 and accs[t] == 0)
            counts[k] = counts.get(k, 0) + (2 if sum(accs) == 0 else events)
    expected = sorted(counts, key=lambda k: (counts[k], k))
    assert order["indices"].tolist() == expected
    assert order["forgetting counts"].tolist() == [counts[k] for k in expected]
    assert order["indices"].dtype == np.int64 and order["forgetting counts"].dtype == np.int64
    unforgettable = sum(1 for k in counts if counts[k] == 0)
    assert f"Number of unforgettable examples: {unforgettable}" in lines


def test_sorted_removal_trains_the_complement_of_the_window(work, ordering):
    runs, d = work
    _, order = ordering
    runs.start("sorted", ["--dataset", "mnist_5k", "--batch_size", 128, "--epochs", 1,
                          "--sorting_file", "mnist_5k_sorted", "--input_dir", d["order_out"],
                          "--remove_n", 1000, "--keep_lowest_n", 0, "--output_dir", d["sorted_out"]])
    res = runs.ok("sorted")
    name = fname(no_dropout=False, sorting_file="mnist_5k_sorted", remove_n=1000)
    stats = load_pickle(os.path.join(d["sorted_out"], name + "__stats_dict.pkl"))
    window = set(order["indices"][:1000].tolist())
    assert len(window) == 1000
    assert example_keys(stats) == sorted(set(range(4000)) - window)
    assert all(len(stats[k][0]) == 1 for k in example_keys(stats))
    assert len(stats["train"][1]) == -(-3000 // 128)
    assert kept_per_class_line(example_keys(stats)) in res.stdout.splitlines()


def test_random_removal_trains_the_seeded_permutation(work):
    runs, d = work
    runs.ok("random")
    stats = load_pickle(os.path.join(d["random_out"], fname(no_dropout=False, seed=7, remove_n=500,
                                                            keep_lowest_n=-1) + "__stats_dict.pkl"))
    np.random.seed(7)
    expected = np.random.permutation(4000)[:3500].tolist()
    keys = example_keys(stats)
    assert set(keys) == set(expected)
    assert keys == expected                 # in the drawn (training) order
    assert all(type(k) is int for k in keys)
    assert kept_per_class_line(keys) in runs.ok("random").stdout.splitlines()


# ----------------------------------------------------------------------------- noise, --model mlp

NOISY_NAME = fname(no_dropout=False) + "__noise_percent_labels_20"
MLP_NAME = fname(no_dropout=False) + "__model_mlp"


def test_label_noise_flips_the_stated_number_and_names_them(work):
    """20% of mnist_5k's 4,000 labels: 800 lines in the changed-labels file, whose ids and new
    labels are what the run trained on (its weights file's train_labels), the rest clean."""
    from forgetting.data.datasets import load_mnist_5k

    runs, d = work
    res = runs.ok("noisy")
    assert "flipping 800 labels" in res.stdout.splitlines()
    files = set(os.listdir(d["noisy_out"]))
    assert {NOISY_NAME + "__stats_dict.pkl", NOISY_NAME + "_changed_labels.txt"} <= files
    rows = np.loadtxt(os.path.join(d["noisy_out"], NOISY_NAME + "_changed_labels.txt"),
                      dtype=np.int64, ndmin=2)
    ids, true, new = rows.T
    assert len(ids) == len(set(ids.tolist())) == 800
    clean = load_mnist_5k().train_y.numpy()
    assert (true == clean[ids]).all() and (new != true).all()
    record = torch_load(os.path.join(d["noisy_out"], NOISY_NAME + "__weights_epoch_1.pt"))
    trained = clean.copy()
    trained[ids] = new
    assert record["train_ids"].tolist() == list(range(4000))
    assert record["train_labels"].numpy().tolist() == trained.tolist()
    assert record["label_noise_percent"] == 20 and record["model"] == "mnist_net"
    stats = load_pickle(os.path.join(d["noisy_out"], NOISY_NAME + "__stats_dict.pkl"))
    assert example_keys(stats) == list(range(4000))
    with open(os.path.join(d["noisy_out"], NOISY_NAME + "__run.json")) as handle:
        flags = json.load(handle)["flags"]
    assert [flags[name] for name in ("noise_percent_labels", "noise_percent_pixels", "model")] == [
        20, 0, "mnist_net"]


def test_the_mlp_trains_and_its_runs_order(work):
    from forgetting.files.naming import parse_save_fname
    from models import build_model

    runs, d = work
    runs.ok("mlp")
    assert parse_save_fname(MLP_NAME)[1] == "model_mlp"
    record = torch_load(os.path.join(d["forget"], MLP_NAME + "__weights_epoch_1.pt"))
    assert record["model"] == "mlp"
    assert record["model_options"] == {"in_features": 784, "num_classes": 10, "hidden": [100],
                                       "log_probabilities": True}
    net = build_model(record["model"], record["model_options"])
    net.load_state_dict(record["state_dict"])       # the weights file describes the network
    assert [tuple(p.shape) for p in net.parameters()] == [(100, 784), (100,), (10, 100), (10,)]
    runs.start("mlp_order", ["--input_dir", d["forget"], "--input_fname_args", "model", "mlp",
                             "--output_dir", d["mlp_order"], "--output_name", "mlp_sorted"],
               script=ORDER)
    lines = runs.ok("mlp_order").stdout.splitlines()
    assert [line for line in lines if line.startswith("including file: ")] == [
        f"including file: {MLP_NAME}__stats_dict.pkl"]    # not the mnist_net runs beside it
    order = load_pickle(os.path.join(d["mlp_order"], "mlp_sorted.pkl"))
    stats = load_pickle(os.path.join(d["forget"], MLP_NAME + "__stats_dict.pkl"))
    # one epoch: 1 event for an example never classified correctly, else 0
    counts = {k: 1 - stats[k][1][0] for k in example_keys(stats)}
    assert order["indices"].tolist() == sorted(counts, key=lambda k: (counts[k], k))
    assert f"Number of unforgettable examples: {sum(c == 0 for c in counts.values())}" in lines


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)
