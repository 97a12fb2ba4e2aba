"""run_continual.py (issue 18, the paper's Sec. 4.2 / Fig. 4): the task partitions against
plain-loop oracles, each epoch presenting only its task, the per-task accuracies against an
independent evaluation of the saved weights, kill -9 then --resume giving the uninterrupted
run's files, the refusals, and plot_figures.py continual.

The runs are real ``python run_continual.py`` processes on the bundled digits (CPU, one
thread: bitwise reproducible), a few hundred examples and a few epochs per task.
"""
import json
import os
import signal

import numpy as np
import pytest
import torch

import run_continual
from forgetting.data.datasets import load_mnist_family
from forgetting.data.tasks import forgetting_split, random_split
from forgetting.files.run_record import ids_digest
from forgetting.files.stats_log import open_stats_log
from forgetting.analysis.continual import ContinualRun, forgetting_table
from forgetting.training.continual import read_task_table
from helpers import (MNIST_5K, assert_one_line_error, assert_same_files, call_main, dump_pickle,
                     finish, load_pickle, log_records, run_script, start, stop_all, wait_for)

TASK_SIZE, PER_TASK, TASKS, SEED = 150, 2, "ABA", 3
N_TRAIN = 4000   # mnist_5k's training digits


def synthetic_counts(seed=0):
    """A sorting file's content: all 4,000 ids in a shuffled order, counts 0..3 (about a
    quarter of the ids never forgotten)."""
    rng = np.random.RandomState(seed)
    ids = rng.permutation(N_TRAIN)
    counts = rng.randint(0, 4, size=N_TRAIN)
    return ids, counts


def run_flags(out_dir, input_dir, split="forgetting", tasks=TASKS, seed=SEED):
    return [*MNIST_5K, "--no_dropout", "--split", split, "--tasks", tasks, "--task_size", TASK_SIZE,
            "--epochs_per_task", PER_TASK, "--seed", seed, "--sorting_file", "counts",
            "--input_dir", input_dir, "--output_dir", out_dir, "--progress_every", 0,
            "--save_weights_at", *range(PER_TASK, len(tasks) * PER_TASK + 1, PER_TASK)]


def fname(split="forgetting", tasks=TASKS, seed=SEED):
    return (f"dataset_mnist_5k__split_{split}__tasks_{tasks}__task_size_{TASK_SIZE}__"
            f"epochs_per_task_{PER_TASK}__seed_{seed}__sorting_file_counts")


# ----------------------------------------------------------------------------- partitions

def test_random_split_against_a_plain_loop():
    a, b = random_split(N_TRAIN, 700, seed=5)
    permutation = np.random.RandomState(5).permutation(N_TRAIN)
    expected = []
    for position in range(1400):
        expected.append(int(permutation[position]))
    assert a.tolist() == expected[:700] and b.tolist() == expected[700:]
    assert len(set(a.tolist()) | set(b.tolist())) == 1400
    assert all(0 <= i < N_TRAIN for i in expected)


def test_forgetting_split_against_a_plain_loop():
    ids, counts = synthetic_counts()
    f0, fn = forgetting_split(ids, counts, 500, seed=7)
    never, forgotten = [], []
    for example, count in zip(ids.tolist(), counts.tolist()):
        (never if count == 0 else forgotten).append(example)
    never.sort()
    forgotten.sort()
    rng = np.random.RandomState(7)
    picks = [rng.permutation(len(group))[:500] for group in (never, forgotten)]
    assert f0.tolist() == [never[i] for i in picks[0]]
    assert fn.tolist() == [forgotten[i] for i in picks[1]]
    count_of = dict(zip(ids.tolist(), counts.tolist()))
    assert all(count_of[i] == 0 for i in f0) and all(count_of[i] >= 1 for i in fn)
    assert len(set(f0.tolist()) | set(fn.tolist())) == 1000
    # the order of tied ids in the file does not change the split
    order = np.random.RandomState(1).permutation(N_TRAIN)
    again = forgetting_split(ids[order], counts[order], 500, seed=7)
    assert again[0].tolist() == f0.tolist() and again[1].tolist() == fn.tolist()


def test_forgetting_table_measures_the_drop_while_the_other_task_trains():
    import pandas as pd

    def run(seed, acc_a, acc_b):
        table = pd.DataFrame({"acc_A": acc_a, "acc_B": acc_b})
        return ContinualRun(f"r{seed}", {"split": "forgetting", "tasks": "ABA", "seed": seed,
                                         "epochs_per_task": 2}, table)

    runs = [run(1, [50, 90, 80, 70, 95, 96], [10, 12, 60, 88, 70, 60]),
            run(2, [60, 92, 85, 74, 97, 98], [11, 13, 62, 90, 66, 64])]
    rows = forgetting_table(runs)
    # A loses from epoch 2 to epoch 4 (B trains), B from epoch 4 to epoch 6 (A trains)
    assert [(r["task"], r["other"], r["trained_until"], r["until"]) for r in rows] == [
        ("A", "B", 2, 4), ("B", "A", 4, 6)]
    drop_a = np.array([90 - 70, 92 - 74])
    assert rows[0]["before"][0] == pytest.approx(91) and rows[0]["after"][0] == pytest.approx(72)
    assert rows[0]["lost"] == pytest.approx((drop_a.mean(), drop_a.std(ddof=1)))
    assert rows[0]["lowest"][0] == pytest.approx((70 + 74) / 2)   # the block's epochs 3 and 4
    assert rows[1]["lost"][0] == pytest.approx(((88 - 60) + (90 - 64)) / 2)
    assert rows[1]["lost_most"][0] == pytest.approx(((88 - 60) + (90 - 64)) / 2)


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("argv, needles", [
    (["--tasks", "AC"], ["--tasks is 'AC'", "A and B"]),
    (["--task_size", "0"], ["--task_size is 0"]),
    (["--split", "forgetting"], ["--split forgetting needs", "--sorting_file"]),
    (["--model", "resnet18"], ["--model resnet18", "--model mnist_net"]),
    (["--optimizer", "adam"], ["drop --optimizer adam"]),
    (["--task_size", "2001"], ["--task_size 2001 needs 4,002", "has 4,000", "2000 or less"]),
])
def test_refusals_are_one_line(tmp_path, argv, needles):
    out = tmp_path / "out"
    code, stdout, err = call_main(run_continual.main, [*MNIST_5K, "--output_dir", out, *argv])
    assert_one_line_error(code, err, *needles, out=stdout)
    assert not out.exists() or not os.listdir(out)


def test_a_sorting_file_with_too_few_in_a_group_says_how_many(tmp_path):
    ids, counts = synthetic_counts()
    dump_pickle(tmp_path / "counts.pkl", {"indices": ids, "forgetting counts": counts})
    n_zero = int((counts == 0).sum())
    code, out, err = call_main(run_continual.main, [
        *MNIST_5K, "--split", "forgetting", "--sorting_file", "counts", "--input_dir", tmp_path,
        "--task_size", n_zero + 1, "--output_dir", tmp_path / "out"])
    assert_one_line_error(code, err, f"has {n_zero:,} examples with zero forgetting events",
                          f"--task_size {n_zero + 1} needs that many", out=out)
    dump_pickle(tmp_path / "mli.pkl", {"indices": ids, "max loss increase": counts})
    code, out, err = call_main(run_continual.main, [
        *MNIST_5K, "--split", "forgetting", "--sorting_file", "mli", "--input_dir", tmp_path,
        "--output_dir", tmp_path / "out"])
    assert_one_line_error(code, err, "no 'forgetting counts' entry", "'max loss increase'", out=out)


# ----------------------------------------------------------------------------- real runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted forgetting-split ABA run, the same run killed with SIGKILL mid-way and
    then resumed, and a random-split AB run (for the figure)."""
    base = tmp_path_factory.mktemp("continual")
    ids, counts = synthetic_counts()
    dump_pickle(base / "counts.pkl", {"indices": ids, "forgetting counts": counts})
    # the killed run outside runs/: the figure reads runs/ and would take it for another seed
    dirs = {"reference": str(base / "runs" / "reference"), "random": str(base / "runs" / "random"),
            "killed": str(base / "killed")}
    reference = start(run_flags(dirs["reference"], base), script="run_continual.py")
    killed = start(run_flags(dirs["killed"], base), script="run_continual.py")
    procs = [reference, killed]
    report = {}
    try:
        log = os.path.join(dirs["killed"], fname() + "__resume_stats.bin")
        wait_for(lambda: log_records(log) >= 2 or killed.poll() is not None, what="two epochs")
        killed.kill()
        report["killed"] = finish(killed)
        report["killed_epochs"] = log_records(log)
        report["resumed"] = finish(start(run_flags(dirs["killed"], base) + ["--resume"],
                                         script="run_continual.py"))
        report["reference"] = finish(reference)
        report["random"] = run_script("run_continual.py", *run_flags(dirs["random"], base, "random",
                                                                     "AB"))
        yield base, dirs, report, (ids, counts)
    finally:
        stop_all(procs)


@pytest.mark.slow
def test_each_epoch_presents_only_its_task_and_the_tasks_are_the_oracles(runs):
    base, dirs, report, (ids, counts) = runs
    assert report["reference"][0] == 0, report["reference"][2]
    f0, fn = forgetting_split(ids, counts, TASK_SIZE, SEED)
    stats_log = open_stats_log(os.path.join(dirs["reference"], fname() + "__resume_stats.bin"))
    assert stats_log.ids.tolist() == f0.tolist() + fn.tolist()   # task A, then task B
    count_of = dict(zip(ids.tolist(), counts.tolist()))
    assert all(count_of[i] == 0 for i in stats_log.ids[:TASK_SIZE].tolist())
    assert all(count_of[i] >= 1 for i in stats_log.ids[TASK_SIZE:].tolist())
    for epoch, record in enumerate(stats_log.read(len(TASKS) * PER_TASK)):
        start_position = "AB".index(TASKS[epoch // PER_TASK]) * TASK_SIZE
        assert sorted(np.asarray(record["positions"]).tolist()) == list(
            range(start_position, start_position + TASK_SIZE)), epoch
    stats = load_pickle(os.path.join(dirs["reference"], fname() + "__stats_dict.pkl"))
    presentations = {key: len(value[0]) for key, value in stats.items() if key not in ("train", "test")}
    assert presentations == {**{i: 2 * PER_TASK for i in f0.tolist()},
                             **{i: PER_TASK for i in fn.tolist()}}
    with open(os.path.join(dirs["reference"], fname() + "__run.json")) as handle:
        record = json.load(handle)
    assert record["epochs"] == 6 and record["finished"] and record["n_train"] == 2 * TASK_SIZE
    assert record["train_ids_sha256"] == ids_digest(np.concatenate([f0, fn]))


def independent_accuracy(weights_path, images, labels):
    """(accuracy %, mean loss) of the saved weights on the given digits, one example at a
    time, with the network rebuilt from the weights file."""
    from models import MnistNet

    saved = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = MnistNet(**saved["model_options"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    correct, losses = 0, []
    with torch.no_grad():
        for image, label in zip(images, labels):
            x = (image.float().unsqueeze(0) / 255 - 0.1307) / 0.3081
            output = model(x)
            correct += int(output.argmax(dim=1).item() == int(label))
            losses.append(-output[0, int(label)].item())
    return 100.0 * correct / len(labels), float(np.mean(losses))


@pytest.mark.slow
def test_per_task_accuracy_is_the_saved_models_on_the_tasks_examples(runs):
    base, dirs, report, (ids, counts) = runs
    table = read_task_table(os.path.join(dirs["reference"], fname() + "__tasks.csv"))
    assert table["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert table["task"].tolist() == ["A", "A", "B", "B", "A", "A"]
    data = load_mnist_family("mnist_5k", "/tmp/data")
    tasks = dict(zip("AB", forgetting_split(ids, counts, TASK_SIZE, SEED)))
    for epoch in (2, 4, 6):
        weights = os.path.join(dirs["reference"], fname() + f"__weights_epoch_{epoch}.pt")
        row = table[table["epoch"] == epoch].iloc[0]
        for task, task_ids in tasks.items():
            positions = torch.from_numpy(task_ids)
            acc, loss = independent_accuracy(weights, data.train_x[positions], data.train_y[positions])
            assert row[f"acc_{task}"] == acc, (epoch, task)
            assert row[f"loss_{task}"] == pytest.approx(loss, rel=1e-5), (epoch, task)
        acc, loss = independent_accuracy(weights, data.test_x, data.test_y)
        assert row["test_acc"] == acc and row["test_loss"] == pytest.approx(loss, rel=1e-5)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_files(runs):
    base, dirs, report, _ = runs
    assert report["killed"][0] == -signal.SIGKILL, "the run ended before it could be killed"
    assert 2 <= report["killed_epochs"] < 6
    assert report["resumed"][0] == 0, report["resumed"][2]
    assert_same_files(dirs["reference"], dirs["killed"])


@pytest.mark.slow
def test_plot_figures_continual_draws_a_panel_per_split_and_order(runs, tmp_path):
    base, dirs, report, _ = runs
    assert report["random"].returncode == 0, report["random"].stderr
    output = tmp_path / "fig4.png"
    result = run_script("plot_figures.py", "continual", "--input_dir", base / "runs",
                        "--output", output, must_succeed=True)
    assert output.stat().st_size > 10_000
    lines = result.stdout.splitlines()
    assert any(line.startswith("random split, order AB: task A ") for line in lines), lines
    table = read_task_table(os.path.join(dirs["reference"], fname() + "__tasks.csv"))
    before, after = table["acc_A"].iloc[1], table["acc_A"].iloc[3]
    lowest = table["acc_A"].iloc[2:4].min()
    assert (f"forgetting split, order ABA: task A {before:.1f} ± 0.0% at epoch 2 -> {after:.1f} ± "
            f"0.0% at epoch 4 (lowest {lowest:.1f} ± 0.0%) while task B trained: lost "
            f"{before - after:.1f} ± 0.0 points (at most {before - lowest:.1f} ± 0.0; 1 seed)"
            ) in lines


@pytest.mark.slow
def test_the_cifar_family_trains_with_run_cifars_network_and_optimiser(tiny_cifar, tmp_path):
    """ResNet18, Nesterov SGD and crop/flip on the tiny synthetic CIFAR-10: the table's task
    columns cover each task's 20 images, and the record holds the family's defaults."""
    from cifar_fixtures import patch_checksums

    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_checksums(monkeypatch, tiny_cifar.checksums)
        code, stdout, err = call_main(run_continual.main, [
            "--dataset", "cifar10", "--data_dir", tiny_cifar.data_dir, "--data_augmentation",
            "--task_size", 20, "--epochs_per_task", 1, "--tasks", "BA", "--batch_size", 10,
            "--threads", 1, "--no_cuda", "--output_dir", out, "--progress_every", 0])
    assert code == 0, stdout + err
    name = "dataset_cifar10__split_random__tasks_BA__task_size_20__epochs_per_task_1__seed_1__sorting_file_none"
    table = read_task_table(out / f"{name}__tasks.csv")
    assert table["task"].tolist() == ["B", "A"]
    for column in ("acc_A", "acc_B"):   # whole images out of 20
        assert all(float(v * 20 / 100).is_integer() for v in table[column])
    with open(out / f"{name}__run.json") as handle:
        flags = json.load(handle)["flags"]
    assert (flags["model"], flags["learning_rate"], flags["batch_size"], flags["epochs"]) == (
        "resnet18", 0.1, 10, 2)


@pytest.mark.slow
def test_the_ordering_script_and_sweep_read_a_continual_run(runs, tmp_path):
    base, dirs, report, _ = runs
    result = run_script("order_examples_by_forgetting.py", "--input_dir", dirs["reference"],
                        "--output_dir", tmp_path, "--output_name", "tasks_sorted", must_succeed=True)
    assert f"Wrote {2 * TASK_SIZE} examples from 1 run(s)" in result.stdout
    flags = [str(f) for f in run_flags(dirs["reference"], base)]
    grid_or_sweep = ("--split", "--tasks", "--threads")   # the grid's axes; the sweep's own
    fixed = [f for i, f in enumerate(flags) if f not in grid_or_sweep
             and (i == 0 or flags[i - 1] not in grid_or_sweep)]
    result = run_script("sweep.py", "--dry_run", "--grid", "split=random,forgetting",
                        f"tasks=AB,{TASKS}", "--", "run_continual.py", *fixed, must_succeed=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and sum(line.startswith("# finished, not run: ") for line in lines) == 1
    assert f"--split forgetting --tasks {TASKS}" in [line for line in lines if line.startswith("#")][0]
