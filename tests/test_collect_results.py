"""collect_results.py: one typed row per run, read from the run's small files; the numbers
must equal those in the run's stats pickle (the oracle: loading the pickle, as a notebook
would), damaged runs are rows, bad input is refused in one line."""
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collect_results
import run_mnist
from forgetting.files.naming import (CIFAR_FNAME_FLAGS, FNAME_FLAG_TYPES, MNIST_FNAME_FLAGS,
                                     parse_save_fname, save_fname)
from forgetting.analysis.results import RESULT_COLUMNS, collect, read_results, summarize
from forgetting.training.resume_state import load_state, save_state
from forgetting.errors import CLOSED_PIPE_EXIT
from helpers import assert_one_line_error, call_main, run_into_closed_pipe, run_script
from run_files import mnist_fname, write_run
from strategies import damaged

TINY = ["--dataset", "mnist_5k", "--epochs", "2", "--batch_size", "128"]


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Three real 2-epoch runs of run_mnist.py on the bundled digits (two seeds, and a random
    removal of 1,000 examples) in one directory; its main in this process (an interpreter
    start each would only add time)."""
    out = tmp_path_factory.mktemp("real") / "runs"
    for extra in (["--seed", 1], ["--seed", 2], ["--seed", 1, "--remove_n", 1000,
                                                 "--keep_lowest_n", -1]):
        code, _, err = call_main(run_mnist.main, [*TINY, *extra, "--output_dir", out])
        assert code == 0, err
    return out


@pytest.mark.slow
def test_rows_equal_what_the_stats_pickles_hold(real_runs):
    frame = collect(real_runs, epochs=2)
    assert len(frame) == 3
    for _, row in frame.iterrows():
        with open(row["path"], "rb") as handle:
            stats = pickle.load(handle)
        test, train = stats["test"][1], stats["train"][1]
        assert row["n_train"] == sum(isinstance(k, int) for k in stats)
        assert row["epochs_done"] == len(test) == 2
        assert row["final_test_acc"] == test[-1]
        assert row["best_test_acc"] == max(test)
        assert row["best_train_acc"] == max(train)
        assert row["finished"] and row["problem"] == ""
        flags = parse_save_fname(os.path.basename(row["path"]))[0]
        assert all(row[flag] == value for flag, value in flags.items())
    removal = frame[frame["remove_n"] == 1000]
    assert removal["n_train"].tolist() == [3000] and removal["keep_lowest_n"].tolist() == [-1]


@pytest.mark.slow
def test_columns_and_their_types(real_runs):
    frame = collect(real_runs, epochs=2)
    # the flags that change results; sampling's options are no column: no run has one
    assert list(frame.columns) == [*MNIST_FNAME_FLAGS, "noise_percent_labels", "noise_percent_pixels",
                                   "noise_std_pixels", "model", "sampling", "batch_size", "lr",
                                   "momentum", *RESULT_COLUMNS]
    assert frame["lr"].dtype == np.float64 and frame["sampling"].tolist() == ["uniform"] * 3
    assert frame["dataset"].tolist() == ["mnist_5k"] * 3
    assert frame["no_dropout"].dtype == bool
    for column in ("seed", "remove_n", "keep_lowest_n", "n_train", "epochs_done"):
        assert pd.api.types.is_integer_dtype(frame[column]), column
    for column in ("final_test_acc", "best_test_acc", "best_train_acc"):
        assert frame[column].dtype == np.float64, column
    assert frame["finished"].dtype == bool


@pytest.mark.slow
def test_unfinished_runs_say_how_far_they_got(real_runs):
    frame = collect(real_runs, epochs=3)
    assert not frame["finished"].any()
    assert set(frame["problem"]) == {"2 of 3 epochs done"}
    assert frame["final_test_acc"].notna().all()  # the accuracy so far is still reported


@pytest.mark.slow
def test_input_fname_args_select_as_the_ordering_script(real_runs):
    frame = collect(real_runs, ["seed", "1"], epochs=2)
    assert sorted(frame["remove_n"]) == [0, 1000]
    said = []
    collect(real_runs, ["remove_n", "1000"], epochs=2, say=said.append)
    assert said == ["skipping 2 stats file(s) that do not match --input_fname_args remove_n 1000 "
                    "(--verbose lists them)"]
    said.clear()
    collect(real_runs, ["remove_n", "1000"], epochs=2, say=said.append, verbose=True)
    assert sum(line.startswith("including file: ") for line in said) == 1
    assert sum(line.startswith("skipping file: ") for line in said) == 2
    assert collect(real_runs, ["seed", "7"]).empty


def test_file_name_flags_read_back_with_the_scripts_types():
    """FNAME_FLAG_TYPES against the scripts' argparse: each flag, parsed from the command
    line, has the type the table says, and parse_save_fname inverts save_fname."""
    import run_cifar
    for module, flags, dataset in ((run_mnist, MNIST_FNAME_FLAGS, "permuted_mnist"),
                                   (run_cifar, CIFAR_FNAME_FLAGS, "cifar100")):
        argv = ["--output_dir", "x", "--dataset", dataset, "--sorting_file", "a__b_c"]
        for flag in flags:
            if FNAME_FLAG_TYPES[flag] is bool:
                argv.append(f"--{flag}")
            elif flag not in ("dataset", "sorting_file"):
                argv += [f"--{flag}", "3"]
        args = module.parse_args(argv)
        for flag in flags:
            assert type(getattr(args, flag)) is FNAME_FLAG_TYPES[flag], flag
        values, extra = parse_save_fname(save_fname(args, flags) + "__stats_dict.pkl")
        assert values == {flag: getattr(args, flag) for flag in flags} and extra == ""
        defaults = module.parse_args(["--output_dir", "x"])
        assert parse_save_fname(save_fname(defaults, flags))[0] == {
            flag: getattr(defaults, flag) for flag in flags}


def test_run_mnist_names_its_model_and_noise_only_when_not_default():
    """--model and the noise flags are appended to run_mnist.py's names when not default
    (compared by value), before --sampling; the names read back into those flags."""
    from forgetting.cli import check_sampling_flags
    from forgetting.files.run_selection import flags_from_name

    def name(*flags):
        args = run_mnist.parse_args(["--output_dir", "x", "--dataset", "mnist_5k", *flags])
        check_sampling_flags(args)
        return save_fname(args, MNIST_FNAME_FLAGS)

    plain = mnist_fname(dataset="mnist_5k")
    assert name() == plain
    assert name("--model", "mnist_net", "--noise_percent_labels", "0", "--noise_std_pixels", "0") == plain
    assert name("--model", "mlp") == plain + "__model_mlp"
    assert name("--noise_std_pixels", "2", "--noise_percent_labels", "20", "--noise_percent_pixels",
                "10", "--model", "mlp", "--sampling", "infobatch") == (
        plain + "__model_mlp__noise_percent_labels_20__noise_percent_pixels_10__noise_std_pixels_2.0"
                "__sampling_infobatch")
    flags = flags_from_name(name("--noise_percent_pixels", "5", "--noise_std_pixels", "0.5")
                            + "__stats_dict.pkl")
    assert {k: flags[k] for k in ("model", "noise_percent_labels", "noise_percent_pixels",
                                  "noise_std_pixels", "sampling")} == {
        "model": "mnist_net", "noise_percent_labels": 0, "noise_percent_pixels": 5,
        "noise_std_pixels": 0.5, "sampling": "uniform"}


def test_flags_appended_after_the_scripts_own_are_kept(tmp_path):
    write_run(tmp_path, mnist_fname() + "__sampling_loss", [50.0])
    frame = collect(tmp_path, epochs=1)
    assert frame["sampling"].tolist() == ["loss"] and frame["finished"].all()


def test_mixed_mnist_and_cifar_runs_keep_their_kinds(tmp_path):
    write_run(tmp_path, mnist_fname(), [50.0])
    cifar = ("dataset_cifar10__data_augmentation_True__cutout_False__seed_1__sorting_file_none__"
             "remove_n_0__keep_lowest_n_0__remove_subsample_0__noise_percent_labels_0__"
             "noise_percent_pixels_0__noise_std_pixels_0.5")
    write_run(tmp_path, cifar, [60.0])
    frame = collect(tmp_path, epochs=1).set_index("dataset")
    assert frame.loc["cifar10", "noise_std_pixels"] == 0.5
    assert pd.isna(frame.loc["cifar10", "no_dropout"]) and pd.isna(frame.loc["mnist", "cutout"])
    assert frame["no_dropout"].dtype == "boolean" and frame["remove_subsample"].dtype == "Int64"


def _damage(paths, kind):
    if kind == "no resume state":
        os.remove(paths.resume_state)
    elif kind == "truncated resume state":
        os.truncate(paths.resume_state, 100)
    elif kind == "no stats log":
        os.remove(paths.stats_log)
    elif kind == "log cut after its header":
        os.truncate(paths.stats_log, 24 + 8 * 20)
    elif kind == "garbage log":
        with open(paths.stats_log, "wb") as handle:
            handle.write(b"not a log")
    elif kind == "killed before the final pickle":
        state = load_state(paths.resume_state)
        state["legacy_epochs"] = 1
        save_state(paths.resume_state, state)


@pytest.mark.parametrize("kind, says", [
    ("no resume state", "no resume state"),
    ("truncated resume state", "resume state unreadable"),
    ("no stats log", "no stats log"),
    ("log cut after its header", "stats log unreadable"),
    ("garbage log", "stats log unreadable"),
    ("killed before the final pickle", "rerun it with --resume"),
])
def test_damaged_runs_are_rows_not_crashes(tmp_path, kind, says):
    good = write_run(tmp_path, mnist_fname(seed=1), [40.0, 70.0, 60.0])
    bad = write_run(tmp_path, mnist_fname(seed=2), [40.0, 70.0, 60.0])
    _damage(bad, kind)
    frame = collect(tmp_path, epochs=3).set_index("seed")
    assert frame.loc[1, "finished"] and frame.loc[1, "final_test_acc"] == 60.0
    assert not frame.loc[2, "finished"] and says in frame.loc[2, "problem"]
    if kind == "no resume state":  # the original's best_acc.txt still gives the best
        assert frame.loc[2, "best_test_acc"] == 70.0
    assert good.stats == frame.loc[1, "path"]


def test_a_stats_file_that_is_no_run_is_a_row(tmp_path):
    write_run(tmp_path, mnist_fname(), [50.0])
    (tmp_path / "notes_stats_dict.pkl").write_bytes(b"")
    frame = collect(tmp_path, epochs=1)
    bad = frame[frame["path"].str.endswith("notes_stats_dict.pkl")].iloc[0]
    assert not bad["finished"] and "not a run's file name" in bad["problem"]
    assert pd.isna(bad["seed"]) and frame["finished"].sum() == 1


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One synthetic run's directory and the bytes of its resume state and log."""
    paths = write_run(tmp_path_factory.mktemp("pristine"), mnist_fname(), [40.0, 70.0])
    with open(paths.resume_state, "rb") as state, open(paths.stats_log, "rb") as log:
        return paths, state.read(), log.read()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_randomly_damaged_files_never_crash(pristine, data):
    paths, state, log = pristine
    which = data.draw(st.sampled_from(["resume_state", "stats_log"]))
    original = state if which == "resume_state" else log
    try:
        with open(getattr(paths, which), "wb") as handle:
            handle.write(data.draw(damaged([original])))
        frame = collect(os.path.dirname(paths.stats), epochs=2)
        assert frame["path"].tolist() == [paths.stats]
        assert frame["finished"].iloc[0] == (frame["problem"].iloc[0] == "")
    finally:
        with open(getattr(paths, which), "wb") as handle:
            handle.write(original)


@pytest.mark.slow
def test_cli_writes_the_table_and_the_summary(real_runs, tmp_path):
    out = tmp_path / "tables" / "results.csv"
    res = run_script("collect_results.py", "--input_dir", real_runs, "--epochs", 2,
                     "--output", out, must_succeed=True)
    table = read_results(out)
    frame = collect(real_runs, epochs=2)
    pd.testing.assert_frame_equal(table, frame)
    assert f"3 runs (3 finished) from {real_runs}; wrote {out}" in res.stdout
    # grouped by every flag but seed: the two full-data seeds are one group
    summary = summarize(frame).reset_index()
    full = summary[summary["remove_n"] == 0].iloc[0]
    accs = frame[frame["remove_n"] == 0]["final_test_acc"]
    assert (full["runs"], full["finished"]) == (2, 2)
    assert full["mean_test_acc"] == pytest.approx(accs.mean())
    assert full["std_test_acc"] == pytest.approx(accs.std())
    assert "all runs: dataset=mnist_5k no_dropout=False sorting_file=none" in res.stdout
    assert f"{accs.mean():.2f}" in res.stdout


def test_notebooks_import_collect():
    import collect_results
    assert collect_results.collect is collect


@pytest.mark.parametrize("args, needle", [
    (["--input_dir", "{missing}"], "does not exist"),
    (["--input_dir", "{runs}", "--input_fname_args", "seed"], "name/value pairs"),
    (["--input_dir", "{runs}", "--input_fname_args", "seed", "9"], "No input files found"),
    (["--input_dir", "{runs}", "--epochs", "0"], "--epochs must be at least 1"),
    (["--input_dir", "{runs}", "--output", "{tmp}"], "is a directory"),
    (["--input_dir", "{runs}", "--output", "{file}/x.csv"], "not a directory"),
    (["--input_dir", "{runs}", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, args, needle):
    runs = tmp_path / "runs"
    write_run(runs, mnist_fname(), [50.0])
    (tmp_path / "file").write_text("")
    before = sorted(os.listdir(tmp_path))
    args = [a.format(missing=tmp_path / "missing", runs=runs, tmp=tmp_path,
                     file=tmp_path / "file") for a in args]
    monkeypatch.chdir(tmp_path)   # main in this process: an interpreter start adds nothing here
    code, stdout, err = call_main(collect_results.main, args)
    assert_one_line_error(code, err, needle)
    assert stdout == ""
    assert sorted(os.listdir(tmp_path)) == before


def test_the_stats_pickle_is_never_read(tmp_path):
    """A run's row comes from its small files: an emptied 200 MB pickle changes nothing."""
    paths = write_run(tmp_path, mnist_fname(), [40.0, 70.0, 60.0])
    before = collect(tmp_path, epochs=3)
    open(paths.stats, "wb").close()
    pd.testing.assert_frame_equal(collect(tmp_path, epochs=3), before)
    assert before["finished"].all() and before["final_test_acc"].tolist() == [60.0]


def test_a_crafted_resume_state_cannot_run_code(tmp_path):
    """The resume state's data.pkl is unpickled with every global inert: a file naming
    os.system is a damaged run, and the command never runs."""
    import zipfile

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'pwned'}",)

    paths = write_run(tmp_path, mnist_fname(), [50.0])
    with zipfile.ZipFile(paths.resume_state, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"epochs_done": Evil()}, protocol=2))
    row = collect(tmp_path, epochs=1).iloc[0]
    assert not row["finished"] and "resume state unreadable" in row["problem"]
    assert not (tmp_path / "pwned").exists()


def test_a_reader_that_closed_the_pipe_ends_it_quietly(tmp_path):
    # `collect_results.py ... | head`, the reader gone before the first line
    write_run(tmp_path / "runs", mnist_fname(seed=1), [50.0, 60.0])
    code, _, err = run_into_closed_pipe("collect_results.py", "--input_dir", tmp_path / "runs",
                                        "--epochs", 2, "--output", tmp_path / "r.csv")
    assert (code, err) == (CLOSED_PIPE_EXIT, "")
    assert len(pd.read_csv(tmp_path / "r.csv")) == 1  # the table was written before the summary


def test_a_sorting_file_given_as_a_path_shows_as_the_name_the_run_files_use(tmp_path):
    """--sorting_file sorted/digits.pkl names the run ...sorting_file_digits...; the table's
    column says digits too, so --input_fname_args sorting_file digits selects it on a table."""
    import json

    import run_mnist
    from forgetting.analysis.results import collect
    from forgetting.files.run_record import new_record

    args = run_mnist.parse_args(["--dataset", "mnist_5k", "--no_dropout", "--seed", "1",
                                 "--sorting_file", "sorted/digits.pkl", "--remove_n", "100",
                                 "--epochs", "2", "--output_dir", str(tmp_path)])
    fname = ("dataset_mnist_5k__no_dropout_True__seed_1__sorting_file_digits__remove_n_100"
             "__keep_lowest_n_0")
    paths = write_run(str(tmp_path), fname, [50.0, 60.0])
    with open(paths.record, "w") as handle:
        json.dump(new_record("run_mnist.py", fname, args, 1000), handle)
    frame = collect(str(tmp_path))
    assert list(frame["sorting_file"]) == ["digits"]
