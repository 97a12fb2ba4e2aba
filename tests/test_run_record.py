"""Runs that describe themselves: the run record, and every reading tool going by it.

Real runs of run_mnist.py on 400 of the bundled digits (every tenth id, kept by a removal
run with a sorting file: the same training set for every seed, every class in it), their
``main`` in this process; the reading tools also in this process.
"""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

import collect_results
import order_examples_by_forgetting
import plot_figures
import run_mnist
import score_examples
from forgetting.analysis import figure_commands
from forgetting.files.naming import RunPaths
from forgetting.analysis.results import collect
from helpers import assert_one_line_error, call_main, dump_pickle, load_pickle, mnist_fname

pytestmark = pytest.mark.slow

SMALL = ["--dataset", "mnist_5k", "--sorting_file", "tenth", "--remove_n", "3600",
         "--batch_size", "100", "--threads", "1", "--no_cuda", "--progress_every", "0"]


@pytest.fixture(scope="module", autouse=True)
def identity_sorting_file(tmp_path_factory):
    """``tenth.pkl``, whose last 400 ids are the multiples of 10, in a folder given to every run
    as --input_dir."""
    folder = tmp_path_factory.mktemp("sorting")
    ids = np.arange(4000)
    dump_pickle(folder / "tenth.pkl", {"indices": np.concatenate([ids[ids % 10 != 0],
                                                                  ids[ids % 10 == 0]])})
    SMALL.extend(["--input_dir", str(folder)])
    yield
    del SMALL[-2:]


def train(out, *flags, epochs=2):
    code, stdout, err = call_main(run_mnist.main, [*SMALL, "--epochs", epochs, *flags,
                                                   "--output_dir", out])
    assert code == 0, err
    return stdout


def paths_of(out, seed=1, dataset="mnist_5k"):
    name = mnist_fname(dataset=dataset, seed=seed, sorting_file="tenth", remove_n=3600)
    return RunPaths.for_run(str(out), name)


def record_of(paths):
    with open(paths.record) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of 2 epochs in ``two``; a third seed of 3 epochs in ``three``."""
    root = tmp_path_factory.mktemp("records")
    for seed in (1, 2):
        train(root / "two", "--seed", seed)
    train(root / "three", "--seed", 3, epochs=3)
    return root


def order(*argv):
    return call_main(order_examples_by_forgetting.main, list(argv))


def test_the_record_describes_the_run(runs):
    paths = paths_of(runs / "two")
    record = record_of(paths)
    stats = load_pickle(paths.stats)
    ids = [k for k in stats if not isinstance(k, str)]  # the training ids, in training order
    assert record["script"] == "run_mnist.py" and record["save_fname"] == os.path.basename(
        paths.stats)[:-len("__stats_dict.pkl")]
    # every flag, defaults included
    assert record["flags"]["lr"] == 0.01 and record["flags"]["momentum"] == 0.5
    assert record["flags"]["sampling"] == "uniform" and record["flags"]["seed"] == 1
    assert set(record["flags"]) == set(vars(run_mnist.parse_args(["--output_dir", "x"]))) - {
        "cpu_threads"}
    assert (record["epochs"], record["epochs_done"], record["stats_pickle_epochs"]) == (2, 2, 2)
    assert record["finished"] and record["ended"] >= record["started"]
    assert (record["n_train"], record["n_test"], record["presentations"]) == (400, 1000, 800)
    assert record["train_ids_sha256"] == hashlib.sha256(
        np.asarray(ids, dtype="<i8").tobytes()).hexdigest()
    assert record["final_test_acc"] == stats["test"][1][-1]
    assert record["best_test_acc"] == max(stats["test"][1])
    assert record["diverged_at_epoch"] is None
    assert set(record["versions"]) == {"forgetting", "torch", "numpy", "python"}
    assert record["device"] == "cpu" and record["host"]


def test_the_ordering_script_reads_the_runs_own_epochs(runs, tmp_path):
    code, out, err = order("--input_dir", runs / "two", "--output_dir", tmp_path,
                           "--output_name", "own")
    assert code == 0, err
    assert "reading 2 epochs per run (the runs' own --epochs" in out
    counts = load_pickle(tmp_path / "own.pkl")["forgetting counts"]
    assert counts.max() <= 2 * 2  # never learned: 2 events per run, not 200
    # --epochs keeps the original's meaning: never-learned examples count that many events
    code, out, err = order("--input_dir", runs / "two", "--output_dir", tmp_path,
                           "--output_name", "given", "--epochs", "2")
    assert code == 0 and "reading" not in out
    np.testing.assert_array_equal(load_pickle(tmp_path / "given.pkl")["forgetting counts"], counts)


def test_runs_of_different_epochs_are_refused_unless_told(runs, tmp_path):
    code, out, err = order("--input_dir", runs, "--output_dir", tmp_path, "--output_name", "x")
    assert_one_line_error(code, err, "different numbers of epochs (2, 3)",
                          "--input_fname_args epochs N")
    assert not os.path.exists(tmp_path / "x.pkl")
    code, out, err = order("--input_dir", runs, "--input_fname_args", "epochs", "2",
                           "--output_dir", tmp_path, "--output_name", "x")
    assert code == 0, err
    assert out.count("including file:") == 2
    assert "skipping 1 stats file(s) that do not match --input_fname_args epochs 2" in out
    code, err = call_main(plot_figures.main, ["datamap", "--input_dir", runs, "--output",
                                              tmp_path / "d.png"])[::2]
    assert_one_line_error(code, err, "different numbers of epochs")
    assert "first 2 presentations" in figure_commands.draw_datamap(plot_figures.parse_args(
        ["datamap", "--input_dir", str(runs / "two"), "--output", str(tmp_path / "d.png")])
    ).axes[0].get_title()


def test_mixed_experiments_are_refused_and_defaults_select(runs, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(runs / "two", mixed)
    said = train(mixed, "--sampling", "sgd_s", "--seed", 1).splitlines()
    # what sampling saved, in one line at the end; its accuracy is over what it presented
    presented = [int(line.split(" | ")[1].split()[0]) for line in said if line.startswith("epoch ")]
    assert said[-1].startswith(f"2 epochs, {sum(presented)} presentations "
                               f"({sum(presented) / 800:.2f} of a uniform run's 800); ")
    assert all("train acc on the presented examples" in line
               for line in said if line.startswith("epoch "))
    code, out, err = order("--input_dir", mixed, "--output_dir", tmp_path, "--output_name", "x")
    assert_one_line_error(code, err, "mix experiments (sampling takes sgd_s, uniform)",
                          "--input_fname_args sampling VALUE")
    # uniform runs' names do not mention sampling: their recorded value selects them
    code, out, err = order("--input_dir", mixed, "--input_fname_args", "sampling", "uniform",
                           "--output_dir", tmp_path, "--output_name", "uniform")
    assert code == 0, err
    assert out.count("including file:") == 2 and "sampling" not in out.split("including")[1]
    code, out, err = call_main(score_examples.main, [
        "--score", "aum", "--input_dir", mixed, "--output_dir", tmp_path, "--output_name", "a"])
    assert_one_line_error(code, err, "mix experiments (sampling takes sgd_s, uniform)")
    frame = collect(mixed)
    assert sorted(frame["sampling"]) == ["sgd_s", "uniform", "uniform"]
    sampled = record_of(RunPaths.for_run(str(mixed), paths_of(mixed).record[
        len(str(mixed)) + 1:-len("__run.json")] + "__sampling_sgd_s"))
    assert frame.set_index("sampling").loc["sgd_s", "presentations"] == sampled["presentations"]


def test_runs_of_two_datasets_are_refused(runs, tmp_path):
    both = tmp_path / "both"
    shutil.copytree(runs / "two", both)
    train(both, "--dataset", "permuted_mnist_5k", epochs=2)
    code, out, err = order("--input_dir", both, "--output_dir", tmp_path, "--output_name", "x")
    assert_one_line_error(code, err, "mix experiments (dataset takes mnist_5k, permuted_mnist_5k)")


def test_the_same_run_found_twice_counts_once(runs, tmp_path):
    twice = tmp_path / "twice"
    shutil.copytree(runs / "two", twice / "a")
    shutil.copytree(runs / "two", twice / "b")
    code, out, err = call_main(collect_results.main, ["--input_dir", twice, "--output",
                                                      tmp_path / "r.csv"])
    assert code == 0, err
    assert out.count("the same run is at") == 2 and "2 runs (2 finished)" in out
    code, out, err = order("--input_dir", twice, "--output_dir", tmp_path, "--output_name", "x")
    assert code == 0 and "from 2 run(s)" in out


def test_runs_without_a_record_still_read(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs / "two", old)
    for name in os.listdir(old):
        if name.endswith("__run.json"):
            os.remove(old / name)
    frame = collect(old)
    assert not frame["finished"].any() and frame["problem"].str.contains("2 of 200").all()
    assert collect(old, epochs=2)["finished"].all()
    # without a record, --epochs is the scripts' default, 200, more than these runs hold
    code, out, err = order("--input_dir", old, "--output_dir", tmp_path, "--output_name", "x")
    assert "reading 200 epochs per run (the training scripts' default" in out
    assert_one_line_error(code, err, "--epochs 200 asks for more presentations", "give --epochs 2")
    code, out, err = order("--input_dir", old, "--output_dir", tmp_path, "--output_name", "x",
                           "--epochs", "2")
    assert code == 0, err


def test_resume_refuses_a_changed_flag_of_the_record(runs, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(runs / "two", out)
    paths = paths_of(out)
    record = record_of(paths)
    record["flags"]["no_such_result_flag"] = "a"  # as if a newer version had recorded one
    with open(paths.record, "w") as handle:
        json.dump(record, handle)
    run_mnist_flags = [*SMALL, "--epochs", 3, "--resume", "--output_dir", out]
    assert call_main(run_mnist.main, run_mnist_flags)[0] == 0  # a flag this version lacks: passes
    record["flags"]["momentum"] = 0.9  # the record says another momentum than the state's config
    with open(paths.record, "w") as handle:
        json.dump(record, handle)
    before = open(paths.stats_log, "rb").read()
    code, _, err = call_main(run_mnist.main, [*SMALL, "--epochs", 4, "--resume", "--output_dir",
                                              out])
    assert_one_line_error(code, err, "--momentum is 0.5 but the run in", "used 0.9")
    assert open(paths.stats_log, "rb").read() == before


def test_a_rerun_without_resume_moves_the_finished_run_aside(runs, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(runs / "two", out)
    paths = paths_of(out)
    before = {name: open(out / name, "rb").read() for name in os.listdir(out)}
    stdout = train(out, "--seed", 1)
    moved_to = stdout.split("moved the earlier run's 5 files to ")[1].split(" (")[0]
    assert moved_to.startswith(str(out / "replaced" / os.path.basename(paths.record)[:-10]))
    kept = {name: open(os.path.join(moved_to, name), "rb").read() for name in os.listdir(moved_to)}
    assert kept == {name: data for name, data in before.items() if "seed_1" in name}
    assert record_of(paths)["finished"]


def test_a_diverged_run_says_so_and_is_refused(tmp_path):
    stdout = train(tmp_path / "nan", "--lr", "1e6", epochs=2)
    assert stdout.count("the run diverged") == 1
    record = record_of(paths_of(tmp_path / "nan"))
    assert record["diverged_at_epoch"] == 1 and record["finished"]
    code, out, err = order("--input_dir", tmp_path / "nan", "--output_dir", tmp_path,
                           "--output_name", "x")
    assert_one_line_error(code, err, "diverged", "--include_diverged")
    code, out, err = order("--input_dir", tmp_path / "nan", "--output_dir", tmp_path,
                           "--output_name", "x", "--include_diverged")
    assert code == 0, err
    assert collect(tmp_path / "nan")["problem"].str.startswith("diverged").all()
