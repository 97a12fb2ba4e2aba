"""score_examples.py end to end on real runs of the bundled digits, each score checked against
a plain loop written from its paper's definition over the stats pickles (read with plain
``pickle.load``) or, for el2n/grand, over the saved weights with autograd one example at a time.

Two tiny mnist_5k runs (seeds 1 and 2) train on the same 400 examples (a fixed shuffled
sorting file, ``--remove_n 3600``) for 4 epochs and save their weights at epochs 0 and 2.
"""
import math
import os
import pickle
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oracles import oracle_tie_order
from pickles import stats_dict

pytestmark = pytest.mark.slow  # training runs in subprocesses

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 4
KEPT = 400


def python(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def run_name(seed, dataset="mnist_5k"):
    return (f"dataset_{dataset}__no_dropout_True__seed_{seed}__sorting_file_shuffled__remove_n_3600__"
            "keep_lowest_n_0")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The directory holding the two runs (and the shuffled sorting file they used)."""
    out = tmp_path_factory.mktemp("score_runs")
    with open(out / "shuffled.pkl", "wb") as handle:
        pickle.dump({"indices": np.random.default_rng(0).permutation(4000)}, handle)
    procs = [subprocess.Popen(
        [sys.executable, os.path.join(REPO, "run_mnist.py"), "--dataset", "mnist_5k", "--no_dropout",
         "--epochs", str(EPOCHS), "--batch_size", "32", "--seed", str(seed), "--threads", "1",
         "--sorting_file", "shuffled", "--input_dir", str(out), "--remove_n", "3600",
         "--output_dir", str(out / "runs"), "--save_weights_at", "0", "2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in (1, 2)]
    for proc in procs:
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
    return out / "runs"


def load(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def histories(runs_dir):
    """[{id: (losses, accs, margins)}] per run, by plain pickle.load."""
    result = []
    for seed in (1, 2):
        stats = load(runs_dir / f"{run_name(seed)}__stats_dict.pkl")
        result.append({k: v for k, v in stats.items() if not isinstance(k, str)})
    return result


def score(runs_dir, out_dir, name, *extra):
    res = python("score_examples.py", "--score", name, "--input_dir", runs_dir, "--output_dir", out_dir,
                 "--output_name", name, "--epochs", EPOCHS, *extra)
    assert res.returncode == 0, res.stderr
    return load(out_dir / f"{name}.pkl")


def oracle_file(per_run, high_is_easy):
    """{id: mean over runs}, sorted easiest first, ties by id -> (ids, values)."""
    mean = {i: sum(run[i] for run in per_run) / len(per_run) for i in per_run[0]}
    sign = -1 if high_is_easy else 1
    ids = sorted(mean, key=lambda i: (sign * mean[i], i))
    return ids, [mean[i] for i in ids]


def check_file(written, key, ids, values):
    assert set(written) == {"indices", key}
    assert written["indices"].tolist() == ids
    np.testing.assert_allclose(written[key], values, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------ stats-based scores vs loops

def aum_loop(losses, accs, margins):
    """Pleiss et al.: the average, over training, of the assigned logit minus the largest other."""
    return sum(margins) / len(margins)


def confidence_loop(losses, accs, margins):
    """Swayamdipta et al.: mean over epochs of the probability of the gold label."""
    return sum(math.exp(-loss) for loss in losses) / len(losses)


def variability_loop(losses, accs, margins):
    """Swayamdipta et al.: standard deviation of that probability (over epochs, population)."""
    return statistics.pstdev([math.exp(-loss) for loss in losses])


def correctness_loop(losses, accs, margins):
    """Swayamdipta et al.: the fraction of epochs in which the example was predicted correctly."""
    return sum(accs) / len(accs)


@pytest.mark.parametrize("name, loop, high_is_easy", [
    ("aum", aum_loop, True), ("confidence", confidence_loop, True),
    ("variability", variability_loop, False), ("correctness", correctness_loop, True)])
def test_stats_scores_match_their_definitions(runs, tmp_path, name, loop, high_is_easy):
    per_run = [{i: loop(*record) for i, record in run.items()} for run in histories(runs)]
    ids, values = oracle_file(per_run, high_is_easy)
    assert len(ids) == KEPT
    check_file(score(runs, tmp_path, name), name, ids, values)


def test_fewer_epochs_use_the_first_presentations(runs, tmp_path):
    res = python("score_examples.py", "--score", "aum", "--input_dir", runs, "--output_dir", tmp_path,
                 "--output_name", "aum2", "--epochs", 2)
    assert res.returncode == 0, res.stderr
    per_run = [{i: sum(m[:2]) / 2 for i, (_, _, m) in run.items()} for run in histories(runs)]
    check_file(load(tmp_path / "aum2.pkl"), "aum", *oracle_file(per_run, True))


def test_forgetting_and_mli_are_the_ordering_scripts_files(runs, tmp_path):
    res = python("order_examples_by_forgetting.py", "--input_dir", runs, "--output_dir", tmp_path / "o",
                 "--output_name", "forgetting", "--epochs", EPOCHS, "--output_dir_MLI", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    for name, original in (("forgetting", "forgetting.pkl"), ("mli", "forgetting_MLI.pkl")):
        score(runs, tmp_path, name)
        assert (tmp_path / f"{name}.pkl").read_bytes() == (tmp_path / "o" / original).read_bytes()


def test_a_sorting_file_removes_the_easiest(runs, tmp_path):
    """The file feeds a removal run: --remove_n 100 --keep_lowest_n 0 drops the 100 easiest
    (of the 400 ids in the file; the other 3,600 digits are not in it, so they stay)."""
    written = score(runs, tmp_path, "aum")
    res = python("run_mnist.py", "--dataset", "mnist_5k", "--no_dropout", "--epochs", 1, "--threads", 1,
                 "--sorting_file", "aum", "--input_dir", tmp_path, "--remove_n", 100,
                 "--output_dir", tmp_path / "removal")
    assert res.returncode == 0, res.stderr
    stats = load(tmp_path / "removal" / "dataset_mnist_5k__no_dropout_True__seed_1__sorting_file_aum__"
                 "remove_n_100__keep_lowest_n_0__stats_dict.pkl")
    trained = sorted(k for k in stats if not isinstance(k, str))
    assert trained == sorted(set(range(4000)) - set(written["indices"][:100].tolist()))


# ------------------------------------------------------------ model-based scores vs autograd

def rebuilt(runs_dir, seed, epoch):
    """The saved model (float64) and the run's normalised images and labels, by hand."""
    from forgetting.data.datasets import load_mnist_5k
    from models import MnistNet

    record = torch.load(runs_dir / f"{run_name(seed)}__weights_epoch_{epoch}.pt", weights_only=True)
    model = MnistNet(dropout=False)
    model.load_state_dict(record["state_dict"])
    data = load_mnist_5k()
    images = (data.train_x[record["train_ids"]].double() / 255 - 0.1307) / 0.3081
    return model.double().eval(), images, record["train_labels"], record["train_ids"].tolist()


def el2n_loop(model, images, labels):
    """Paul et al.: || softmax(f(x)) - onehot(y) ||_2, one example at a time."""
    out = []
    with torch.no_grad():
        for x, y in zip(images, labels):
            probs = model(x[None]).softmax(dim=1)[0]
            out.append(float((probs - F.one_hot(y, 10).double()).norm()))
    return out


def grand_loop(model, images, labels):
    """Paul et al.: || grad_theta loss(f(x), y) ||_2 over all parameters, by autograd per example."""
    out = []
    for x, y in zip(images, labels):
        model.zero_grad()
        F.cross_entropy(model(x[None]), y[None]).backward()
        out.append(math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters())))
    return out


@pytest.mark.parametrize("name, loop, epoch", [("el2n", el2n_loop, 2), ("grand", grand_loop, 0)])
def test_model_scores_match_autograd_per_example(runs, tmp_path, name, loop, epoch):
    per_run = []
    for seed in (1, 2):
        model, images, labels, ids = rebuilt(runs, seed, epoch)
        per_run.append(dict(zip(ids, loop(model, images, labels))))
    ids, values = oracle_file(per_run, high_is_easy=False)
    written = score(runs, tmp_path, name, "--weights_epoch", epoch, "--device", "cpu")
    assert set(written) == {"indices", name}
    # float32 on the scorer's side, float64 in the loop
    np.testing.assert_allclose(written[name], [v for v in values], rtol=2e-4, atol=1e-6)
    expected = dict(zip(ids, values))
    reordered = sorted(written["indices"].tolist(), key=lambda i: (expected[i], i))
    # the order agrees wherever the float32 values are not within rounding of each other
    assert np.mean(np.array(reordered) == written["indices"]) > 0.95


def test_aum_imports_no_torch(runs, tmp_path):
    code = ("import sys; sys.argv = ['score_examples.py', '--score', 'aum', '--input_dir', sys.argv[1], "
            f"'--output_dir', sys.argv[2], '--output_name', 'a', '--epochs', '{EPOCHS}']; "
            "import score_examples; "
            "score_examples.main(); print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(runs), str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("False")


# ------------------------------------------------------------ --compare

def average_ranks(values):
    """Ranks 1..n, ties given their average rank (Spearman's convention)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a, b):
    ra, rb = average_ranks(a), average_ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def test_compare_prints_spearman_of_the_easiest_first_orders(runs, tmp_path):
    res = python("score_examples.py", "--compare", "forgetting", "aum", "correctness", "--input_dir", runs,
                 "--epochs", EPOCHS)
    assert res.returncode == 0, res.stderr
    table = res.stdout.splitlines()[-4:]
    assert table[0].split() == ["forgetting", "aum", "correctness"]
    files = {name: score(runs, tmp_path, name) for name in ("forgetting", "aum", "correctness")}
    by_id = {name: dict(zip(f["indices"].tolist(), f[key].tolist()))
             for (name, f), key in zip(files.items(), ("forgetting counts", "aum", "correctness"))}
    ids = sorted(by_id["aum"])
    oriented = {"forgetting": [by_id["forgetting"][i] for i in ids],
                "aum": [-by_id["aum"][i] for i in ids],
                "correctness": [-by_id["correctness"][i] for i in ids]}
    row = table[1].split()
    assert row[0] == "forgetting"
    assert float(row[2]) == pytest.approx(spearman(oriented["forgetting"], oriented["aum"]), abs=1e-3)
    assert float(row[3]) == pytest.approx(spearman(oriented["forgetting"], oriented["correctness"]), abs=1e-3)
    assert not list(tmp_path.glob("compare*"))


# ------------------------------------------------------------ ties

@pytest.fixture
def tied_runs(tmp_path):
    """Two hand-made runs of 30 examples, 3 presentations: correctness and forgetting tie a lot."""
    rng = np.random.RandomState(5)
    runs_dir = tmp_path / "tied"
    runs_dir.mkdir()
    for seed in (1, 2):
        histories = {i: (rng.randint(0, 2, size=3).tolist(), [1.0, 1.0, 1.0]) for i in range(30)}
        with open(runs_dir / f"{run_name(seed)}__stats_dict.pkl", "wb") as handle:
            pickle.dump(stats_dict(histories, shuffle_seed=seed), handle)
    return runs_dir


def test_random_ties_as_the_ordering_script(tied_runs, tmp_path):
    """--ties random --ties_seed S: correctness (highest = easiest) in the seeded shuffle of the
    plain loop, and --score forgetting still the ordering script's very file."""
    flags = ["--epochs", 3, "--ties", "random", "--ties_seed", 4]
    res = python("score_examples.py", "--score", "correctness", "--input_dir", tied_runs,
                 "--output_dir", tmp_path, "--output_name", "c", *flags)
    assert res.returncode == 0, res.stderr
    per_run = [{i: sum(accs) / 3 for i, (_, accs, _) in run.items()} for run in histories_in(tied_runs)]
    mean = {i: (per_run[0][i] + per_run[1][i]) / 2 for i in per_run[0]}
    expected = oracle_tie_order(mean, descending=True, ties="random", seed=4)
    assert load(tmp_path / "c.pkl")["indices"].tolist() == expected
    assert expected != oracle_tie_order(mean, descending=True)  # the ties really moved

    for script, name in (("score_examples.py", "f"), ("order_examples_by_forgetting.py", "o")):
        extra = ["--score", "forgetting"] if script == "score_examples.py" else []
        res = python(script, *extra, "--input_dir", tied_runs, "--output_dir", tmp_path,
                     "--output_name", name, *flags)
        assert res.returncode == 0, res.stderr
    assert (tmp_path / "f.pkl").read_bytes() == (tmp_path / "o.pkl").read_bytes()


def test_ties_id_is_the_default(tied_runs, tmp_path):
    for name, flags in (("default", []), ("by_id", ["--ties", "id"])):
        res = python("score_examples.py", "--score", "correctness", "--input_dir", tied_runs,
                     "--output_dir", tmp_path, "--output_name", name, "--epochs", 3, *flags)
        assert res.returncode == 0, res.stderr
    assert (tmp_path / "default.pkl").read_bytes() == (tmp_path / "by_id.pkl").read_bytes()


def histories_in(runs_dir):
    return [{k: v for k, v in load(runs_dir / f"{run_name(seed)}__stats_dict.pkl").items()
             if not isinstance(k, str)} for seed in (1, 2)]


def test_compare_takes_el2n_and_grand_each_at_its_own_epoch(runs, tmp_path):
    res = python("score_examples.py", "--compare", "el2n", "grand", "--weights_epoch", "el2n=2",
                 "grand=0", "--device", "cpu", "--input_dir", runs, "--epochs", EPOCHS)
    assert res.returncode == 0, res.stderr
    header, el2n_row = res.stdout.splitlines()[-3:-1]
    assert header.split() == ["el2n", "grand"] and el2n_row.split()[0] == "el2n"
    files = {name: score(runs, tmp_path, name, "--weights_epoch", epoch, "--device", "cpu")
             for name, epoch in (("el2n", 2), ("grand", 0))}
    by_id = {name: dict(zip(f["indices"].tolist(), f[name].tolist())) for name, f in files.items()}
    ids = sorted(by_id["el2n"])
    expected = spearman([by_id["el2n"][i] for i in ids], [by_id["grand"][i] for i in ids])
    assert float(el2n_row.split()[2]) == pytest.approx(expected, abs=1e-3)
    assert abs(expected) < 0.999  # the two epochs' weights differ, so their orders do


# ------------------------------------------------------------ refusals

def assert_refused(res, *needles):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_refusals(runs, tmp_path):
    out = tmp_path / "out"
    common = ["--input_dir", runs, "--output_dir", out, "--output_name", "x"]
    assert_refused(python("score_examples.py", "--score", "loss_rank", *common), "loss_rank")
    assert_refused(python("score_examples.py", "--score", "el2n", *common),
                   "el2n needs --weights_epoch E")
    assert_refused(python("score_examples.py", "--compare", "el2n", "grand", *common[:2]),
                   "el2n and grand need --weights_epoch E")
    assert_refused(python("score_examples.py", "--score", "grand", "--weights_epoch", 3, *common),
                   run_name(1), "saved epochs 0, 2", "--save_weights_at 3")
    assert_refused(python("score_examples.py", "--compare", "el2n", "grand", "--weights_epoch",
                          "el2n=2", *common[:2]), "no epoch for grand", "grand=E")
    assert_refused(python("score_examples.py", "--compare", "el2n", "aum", "--weights_epoch",
                          "aum=2", *common[:2]), "aum is not a weights-based score")
    assert_refused(python("score_examples.py", "--score", "aum", *common[:2], "--input_fname_args",
                          "seed", 7, *common[2:]), "No input files found")
    assert_refused(python("score_examples.py", "--score", "aum", "--ties_seed", 2, *common),
                   "--ties_seed 2 only applies with --ties random")
    assert not out.exists()


def test_runs_of_different_datasets_or_ids_are_refused(runs, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    first = f"{run_name(1)}__stats_dict.pkl"
    shutil.copy(runs / first, mixed / first)
    shutil.copy(runs / first, mixed / f"{run_name(1, 'permuted_mnist_5k')}__stats_dict.pkl")
    res = python("score_examples.py", "--score", "aum", "--input_dir", mixed, "--output_dir", tmp_path,
                 "--output_name", "x", "--epochs", EPOCHS)
    assert_refused(res, "mix experiments", "dataset takes mnist_5k, permuted_mnist_5k")

    stats = load(runs / first)
    del stats[next(k for k in stats if not isinstance(k, str))]
    os.remove(mixed / f"{run_name(1, 'permuted_mnist_5k')}__stats_dict.pkl")
    with open(mixed / f"{run_name(2)}__stats_dict.pkl", "wb") as handle:
        pickle.dump(stats, handle)
    res = python("score_examples.py", "--score", "aum", "--input_dir", mixed, "--output_dir", tmp_path,
                 "--output_name", "x", "--epochs", EPOCHS)
    assert_refused(res, "example ids differ", run_name(2))
    assert not (tmp_path / "x.pkl").exists()
