"""run_mnist.py end to end, as users run it: subprocesses, files on disk, plain pickle.load.

Every run here is a real ``python run_mnist.py ...`` with ``--threads 1``. Runs that do not
depend on each other are started together when the module's first test asks for any of
them (the machine has 2 cores and most of a run is interpreter start-up), and each run is
shared by all the tests that look at it.
"""
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_MNIST = os.path.join(REPO, "run_mnist.py")
ORDER = os.path.join(REPO, "order_examples_by_forgetting.py")
TIMEOUT = 300

MNIST_NAME = ("dataset_mnist__no_dropout_False__seed_1__sorting_file_none__remove_n_0__"
              "keep_lowest_n_0")


def fname(dataset="mnist_5k", no_dropout=True, seed=1, sorting_file="none", remove_n=0, keep_lowest_n=0):
    return (f"dataset_{dataset}__no_dropout_{no_dropout}__seed_{seed}__sorting_file_{sorting_file}__"
            f"remove_n_{remove_n}__keep_lowest_n_{keep_lowest_n}")


# ----------------------------------------------------------------------------- helpers

def write_small_mnist(root, n_train=300, n_test=100, seed=0):
    """Random digits in torchvision's raw IDX files under ``root/MNIST/raw``."""
    rng = np.random.default_rng(seed)
    raw = os.path.join(root, "MNIST", "raw")
    os.makedirs(raw)
    files = [("train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)), 0x803),
             ("train-labels-idx1-ubyte", rng.integers(0, 10, n_train), 0x801),
             ("t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), 0x803),
             ("t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test), 0x801)]
    for name, array, magic in files:
        with open(os.path.join(raw, name), "wb") as handle:
            handle.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
            handle.write(array.astype(np.uint8).tobytes())


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


def snapshot(directory):
    """Every file under ``directory``: relative path -> (bytes, mtime_ns, mode)."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            st = os.stat(path)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, directory)] = (handle.read(), st.st_mtime_ns, st.st_mode)
    return out


def load_pickle(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def example_keys(stats):
    return [k for k in stats if k not in ("train", "test")]


# Runs in a process that cannot import the project (-I: no PYTHONPATH, no cwd on sys.path,
# cwd is elsewhere): plain pickle.load, then SPEC section 3's layout, checked item by item.
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


def assert_one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- the runs

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Start every independent run at once; dependent ones start in their fixtures."""
    base = tmp_path_factory.mktemp("cli")
    d = {name: str(base / name) for name in (
        "mnist_data", "mnist_out", "forget", "order_out", "sorted_out", "random_out",
        "full", "resumed", "bad", "bad_new", "empty_input")}
    write_small_mnist(d["mnist_data"])
    os.makedirs(d["empty_input"])
    os.makedirs(d["bad"])
    with open(os.path.join(d["bad"], "sentinel.txt"), "w") as handle:
        handle.write("keep me")
    d["bad_file"] = str(base / "a_file")
    with open(d["bad_file"], "w") as handle:
        handle.write("not a directory")
    snapshots = {"bad": snapshot(d["bad"]), "bad_file": open(d["bad_file"], "rb").read()}

    runs = Runs()
    runs.start("mnist", ["--dataset", "mnist", "--data_dir", d["mnist_data"], "--epochs", 2,
                         "--output_dir", d["mnist_out"]])
    five_k = ["--dataset", "mnist_5k", "--batch_size", 128]
    for seed in (1, 2):
        runs.start(f"forget{seed}", five_k + ["--no_dropout", "--epochs", 2, "--seed", seed,
                                              "--output_dir", d["forget"]])
    runs.start("random", five_k + ["--epochs", 1, "--seed", 7, "--keep_lowest_n", -1, "--remove_n", 500,
                                   "--output_dir", d["random_out"]])
    resume_args = five_k + ["--seed", 3, "--lr", 0.05]
    runs.start("full", resume_args + ["--epochs", 3, "--output_dir", d["full"]])
    runs.start("part", resume_args + ["--epochs", 2, "--output_dir", d["resumed"]])
    bad_common = ["--dataset", "mnist_5k", "--epochs", 1]
    runs.start("bad_epochs", ["--dataset", "mnist_5k", "--epochs", 0, "--output_dir", d["bad_new"]])
    runs.start("bad_batch", bad_common + ["--batch_size", 0, "--output_dir", d["bad"]])
    runs.start("bad_remove", bad_common + ["--remove_n", -1, "--output_dir", d["bad"]])
    runs.start("bad_sorting", bad_common + ["--sorting_file", "no_such_order", "--remove_n", 10,
                                            "--input_dir", d["empty_input"], "--output_dir", d["bad"]])
    runs.start("bad_outdir", bad_common + ["--output_dir", d["bad_file"]])
    yield runs, d, snapshots
    for proc in runs.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- torchvision MNIST

def test_torchvision_mnist_end_to_end(work):
    runs, d, _ = work
    runs.ok("mnist")
    files = sorted(os.listdir(d["mnist_out"]))
    assert MNIST_NAME + "__stats_dict.pkl" in files
    assert MNIST_NAME + "__best_acc.txt" in files
    others = set(files) - {MNIST_NAME + "__stats_dict.pkl", MNIST_NAME + "__best_acc.txt"}
    # nothing else but the run's own resume files (no temporary files left behind)
    assert all(f.startswith(MNIST_NAME + "__resume_") for f in others), files
    stats = load_pickle(os.path.join(d["mnist_out"], MNIST_NAME + "__stats_dict.pkl"))
    assert example_keys(stats) == list(range(300))
    assert len(stats["train"][1]) == 2 * 5 and len(stats["test"][1]) == 2


def test_stats_pickle_loads_without_the_project(work, tmp_path):
    runs, d, _ = work
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
    runs, d, _ = work
    runs.ok("forget1"), runs.ok("forget2")
    runs.start("order", ["--input_dir", d["forget"], "--input_fname_args", "dataset", "mnist_5k",
                         "no_dropout", "True", "--output_dir", d["order_out"], "--output_name",
                         "mnist_5k_sorted", "--epochs", 2], script=ORDER)
    res = runs.ok("order")
    order = load_pickle(os.path.join(d["order_out"], "mnist_5k_sorted.pkl"))
    return res, order


def test_forgetting_runs_have_the_layout(work, tmp_path):
    runs, d, _ = work
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
    runs, d, _ = work
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
    runs, d, _ = work
    _, order = ordering
    runs.start("sorted", ["--dataset", "mnist_5k", "--batch_size", 128, "--epochs", 1,
                          "--sorting_file", "mnist_5k_sorted", "--input_dir", d["order_out"],
                          "--remove_n", 1000, "--keep_lowest_n", 0, "--output_dir", d["sorted_out"]])
    runs.ok("sorted")
    name = fname(no_dropout=False, sorting_file="mnist_5k_sorted", remove_n=1000)
    stats = load_pickle(os.path.join(d["sorted_out"], name + "__stats_dict.pkl"))
    window = set(order["indices"][:1000].tolist())
    assert len(window) == 1000
    assert example_keys(stats) == sorted(set(range(4000)) - window)
    assert all(len(stats[k][0]) == 1 for k in example_keys(stats))
    assert len(stats["train"][1]) == -(-3000 // 128)


def test_random_removal_trains_the_seeded_permutation(work):
    runs, d, _ = work
    runs.ok("random")
    stats = load_pickle(os.path.join(d["random_out"], fname(no_dropout=False, seed=7, remove_n=500,
                                                            keep_lowest_n=-1) + "__stats_dict.pkl"))
    np.random.seed(7)
    expected = np.random.permutation(4000)[:3500].tolist()
    keys = example_keys(stats)
    assert set(keys) == set(expected)
    assert keys == expected                 # in the drawn (training) order
    assert all(type(k) is int for k in keys)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("run,needles", [
    ("bad_epochs", ["--epochs"]),
    ("bad_batch", ["--batch_size"]),
    ("bad_remove", ["--remove_n"]),
    ("bad_sorting", ["no_such_order", "--sorting_file", "not found"]),
    ("bad_outdir", ["--output_dir", "is a file"]),
])
def test_bad_input_is_one_line_and_touches_nothing(work, run, needles):
    runs, d, snapshots = work
    assert_one_line_error(runs.result(run), *needles)
    # other runs finish before we look, so nothing can still be writing
    if run == "bad_epochs":
        assert not os.path.exists(d["bad_new"])
    elif run == "bad_outdir":
        with open(d["bad_file"], "rb") as handle:
            assert handle.read() == snapshots["bad_file"]
    else:
        for other in ("bad_batch", "bad_remove", "bad_sorting", "bad_outdir"):
            runs.result(other)
        assert snapshot(d["bad"]) == snapshots["bad"]
    assert os.listdir(d["empty_input"]) == []


# ----------------------------------------------------------------------------- resume

@pytest.fixture(scope="module")
def resumed(work):
    runs, d, _ = work
    runs.ok("part")
    runs.start("resume", ["--dataset", "mnist_5k", "--batch_size", 128, "--seed", 3, "--lr", 0.05,
                          "--epochs", 3, "--resume", "--output_dir", d["resumed"]])
    res = runs.ok("resume")
    runs.ok("full")
    return res


def test_resume_gives_the_uninterrupted_files(work, resumed):
    _, d, _ = work
    assert "resuming after epoch 2" in resumed.stdout
    name = fname(no_dropout=False, seed=3)
    for suffix in ("__stats_dict.pkl", "__best_acc.txt"):
        with open(os.path.join(d["full"], name + suffix), "rb") as a, \
                open(os.path.join(d["resumed"], name + suffix), "rb") as b:
            assert a.read() == b.read(), suffix
    stats = load_pickle(os.path.join(d["resumed"], name + "__stats_dict.pkl"))
    assert len(stats["test"][1]) == 3 and len(stats[0][0]) == 3


def test_resume_of_a_finished_run_and_changed_lr(work, resumed):
    runs, d, _ = work
    before = snapshot(d["resumed"])
    common = ["--dataset", "mnist_5k", "--batch_size", 128, "--seed", 3, "--epochs", 3, "--resume",
              "--output_dir", d["resumed"]]
    runs.start("again", common + ["--lr", 0.05])
    runs.start("other_lr", common + ["--lr", 0.02])
    again = runs.ok("again")
    assert "nothing to do" in again.stdout
    assert_one_line_error(runs.result("other_lr"), "--lr")
    assert snapshot(d["resumed"]) == before
