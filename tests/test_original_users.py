"""What a user of the original scripts relies on beyond the files (issue 12): the ordering
script's importable functions, checked against a plain re-enactment of the original's loops on
real runs of the bundled digits, and the training scripts' log lines and progress lines."""
import io
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import order_examples_by_forgetting as ordering
from forgetting.training.progress import EpochProgress
from original_loops import original_check_filename, original_compute, original_counts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_MNIST = os.path.join(REPO, "run_mnist.py")
EPOCHS = 5


# ----------------------------------------------------------------------------- real runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of the bundled digits with dropout (forgetting happens), EPOCHS epochs each:
    ``(stats dicts as plain pickle.load gives them, stdout, stderr)`` per run."""
    out = tmp_path_factory.mktemp("digits")
    procs = []
    for seed in (1, 2):
        argv = [sys.executable, RUN_MNIST, "--dataset", "mnist_5k", "--batch_size", "128",
                "--epochs", str(EPOCHS), "--seed", str(seed), "--threads", "1",
                "--output_dir", str(out / f"seed{seed}"), "--progress_every", "0.000001"]
        procs.append(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout + stderr
        results.append((stdout, stderr))
    stats = []
    for seed in (1, 2):
        (path,) = (out / f"seed{seed}").glob("*__stats_dict.pkl")
        with open(path, "rb") as handle:
            stats.append(pickle.load(handle))
    return [(s, out_, err) for s, (out_, err) in zip(stats, results)]


def shuffled_int64_keys(stats, seed):
    """The same run as the original wrote it: numpy.int64 keys in first-presentation order."""
    keys = [k for k in stats if not isinstance(k, str)]
    order = np.random.RandomState(seed).permutation(len(keys))
    out = {np.int64(keys[i]): stats[keys[i]] for i in order}
    out["train"], out["test"] = stats["train"], stats["test"]
    return out


def assert_same_statistics(ours, expected):
    needed, unlearned, margins, first = ours
    e_needed, e_unlearned, e_margins, e_first = expected
    for mine, theirs in ((needed, e_needed), (unlearned, e_unlearned), (margins, e_margins),
                         (first, e_first)):
        assert list(mine) == list(theirs)   # same keys, same order
    assert needed == e_needed
    for key in e_unlearned:
        if isinstance(e_unlearned[key], list):
            assert unlearned[key] == []
        else:
            assert unlearned[key].dtype == np.int64
            np.testing.assert_array_equal(unlearned[key], e_unlearned[key])
        np.testing.assert_array_equal(margins[key], e_margins[key])
        if np.isnan(e_first[key]):
            assert np.isnan(first[key])
        else:
            assert first[key] == e_first[key] and isinstance(first[key], np.integer)


@pytest.mark.slow
@pytest.mark.parametrize("npresentations", [EPOCHS, 3, 1, 0, 50])
def test_compute_forgetting_statistics_matches_the_original(runs, npresentations):
    for seed, (stats, _, _) in enumerate(runs):
        for layout in (stats, shuffled_int64_keys(stats, seed)):
            ours = ordering.compute_forgetting_statistics(layout, npresentations)
            assert_same_statistics(ours, original_compute(layout, npresentations))


@pytest.mark.slow
def test_the_runs_have_forgetting_and_never_learned_examples(runs):
    """The comparisons above cover every case only if the runs hold them."""
    _, unlearned, _, first = original_compute(runs[0][0], EPOCHS)
    assert any(len(v) > 1 for v in unlearned.values())
    assert any(len(v) == 0 for v in unlearned.values())
    assert any(np.isnan(v) for v in first.values())


def test_ragged_runs_match_the_original():
    stats = {7: [[0.5, 0.1, 0.2], [1, 0, 1], [0.3, -0.2, 0.4]], np.int64(3): [[0.1], [0], [-1.0]],
             5: [[], [], []], 2: [[1.0] * 6, [0, 1, 1, 0, 1, 0], [0.0] * 6], "train": [[], []]}
    for npresentations in (0, 2, 4, 10):
        assert_same_statistics(ordering.compute_forgetting_statistics(stats, npresentations),
                               original_compute(stats, npresentations))


@pytest.mark.slow
@pytest.mark.parametrize("npresentations", [EPOCHS, 2])
def test_sort_examples_by_forgetting_matches_the_original(runs, capsys, npresentations):
    layouts = [shuffled_int64_keys(stats, seed) for seed, (stats, _, _) in enumerate(runs)]
    # the original's own dicts (from the loops) and ours must both sort the same way
    per_run = [original_compute(stats, npresentations) for stats in layouts]
    unlearned_all, first_all = [r[1] for r in per_run], [r[3] for r in per_run]
    counts = original_counts(unlearned_all, first_all, npresentations)
    expected_line = "Number of unforgettable examples: {}\n".format(sum(c == 0 for c in counts.values()))
    for source in ("oracle", "ours"):
        if source == "ours":
            per_run = [ordering.compute_forgetting_statistics(s, npresentations) for s in layouts]
            unlearned_all, first_all = [r[1] for r in per_run], [r[3] for r in per_run]
        capsys.readouterr()
        ids, sorted_counts = ordering.sort_examples_by_forgetting(unlearned_all, first_all, npresentations)
        assert capsys.readouterr().out == expected_line
        assert ids.dtype == np.int64 and sorted_counts.dtype == np.int64
        np.testing.assert_array_equal(sorted_counts, np.sort(list(counts.values())))
        # ids: each count's examples, ties by ascending id (the original left ties arbitrary)
        expected_ids = sorted(counts, key=lambda k: (counts[k], int(k)))
        np.testing.assert_array_equal(ids, expected_ids)
        assert len(set(sorted_counts.tolist())) > 2   # the runs give ties and distinct counts


@pytest.mark.parametrize("fname, args_list", [
    ("dataset_mnist__no_dropout_True__seed_1__stats_dict.pkl", None),
    ("dataset_mnist__no_dropout_True__seed_1__stats_dict.pkl", []),
    ("dataset_mnist__no_dropout_True__seed_1__stats_dict.pkl", ["dataset", "mnist", "seed", "1"]),
    ("dataset_mnist__no_dropout_True__seed_11__stats_dict.pkl", ["seed", "1"]),
    ("dataset_mnist__no_dropout_True__seed_1__stats_dict.pkl", ["no_dropout", "False"]),
    ("notes.txt", None),
])
def test_check_filename_matches_the_original(capsys, fname, args_list):
    expected, printed = original_check_filename(fname, args_list)
    assert ordering.check_filename(fname, args_list) == expected
    assert capsys.readouterr().out == printed


@pytest.mark.slow
def test_importing_the_ordering_script_runs_nothing():
    code = ("import sys, order_examples_by_forgetting as o; "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n" and result.stderr == ""


# ----------------------------------------------------------------------------- log lines

@pytest.mark.slow
def test_the_original_log_lines(runs):
    stats, stdout, _ = runs[0]
    lines = stdout.splitlines()
    assert lines.count("Training on 4000 examples") == 1
    validation = [line for line in lines if line.startswith("| Validation Epoch #")]
    assert len(validation) == EPOCHS
    for epoch, line in enumerate(validation):
        match = re.fullmatch(r"\| Validation Epoch #(\d+)\t\t\tLoss: (\d+\.\d{4}) Acc@1: (\d+\.\d{2})%", line)
        assert match, repr(line)
        assert int(match[1]) == epoch
        assert float(match[3]) == round(stats["test"][1][epoch], 2)
        assert 0 < float(match[2]) < 3   # a mean NLL over 10 classes, not a sum
        # the original printed a blank line before it ("\n| Validation ...")
        assert lines[lines.index(line) - 1] == ""
    assert lines.index("Training on 4000 examples") < lines.index(validation[0])
    assert sum(line.startswith("epoch ") for line in lines) == EPOCHS   # our summary stays


@pytest.mark.slow
def test_the_test_loss_is_the_mean_over_the_test_set(runs):
    """The validation line's loss: recompute it from a model with the run's weights."""
    import torch
    import torch.nn.functional as F
    from forgetting.data.datasets import load_mnist_family
    from forgetting.data.transforms import normaliser
    from forgetting.training.job import TrainingJob
    from forgetting.training.loop import evaluate
    from models import MnistNet

    torch.manual_seed(0)
    data = load_mnist_family("mnist_5k", "/nonexistent")
    model = MnistNet(dropout=True)
    job = TrainingJob(model=model, optimizer=None,
                      loss_fn=lambda o, t: F.nll_loss(o, t, reduction="none"),
                      prepare_train=None, prepare_test=normaliser(data.mean, data.std, torch.device("cpu")),
                      train_x=None, train_y=None, test_x=data.test_x, test_y=data.test_y,
                      train_ids=None, batch_size=1, epochs=1, device=torch.device("cpu"), paths=None,
                      config={})
    acc, loss = evaluate(job)
    model.eval()
    with torch.no_grad():
        outputs = model(job.prepare_test(data.test_x))
    assert loss == pytest.approx(F.nll_loss(outputs, data.test_y).item(), rel=1e-5)
    assert acc == 100.0 * (outputs.argmax(1) == data.test_y).sum().item() / len(data.test_y)


@pytest.mark.slow
def test_progress_lines_on_a_non_terminal_stderr(runs):
    stats, _, stderr = runs[0]
    pattern = r"\| Epoch \[ *(\d+)/ *(\d+)\] Iter\[ *(\d+)/ *(\d+)\]\t\tLoss: (\d+\.\d{4}) Acc@1: (\d+\.\d{3})%"
    lines = [re.fullmatch(pattern, line) for line in stderr.splitlines()]
    assert lines and all(lines), stderr[:2000]
    n_batches = -(-4000 // 128)
    # --progress_every 0.000001: a line after (nearly) every batch; never a bar on a pipe
    assert len(lines) > EPOCHS * n_batches // 2 and "\r" not in stderr
    train_acc = stats["train"][1]
    for match in lines:
        epoch, epochs, done, total = map(int, match.groups()[:4])
        assert epochs == EPOCHS and total == n_batches and 0 <= epoch < EPOCHS
        # the accuracy so far is the running train accuracy the stats pickle records
        assert match[6] == "%.3f" % train_acc[epoch * n_batches + done - 1]


class FakeRecorder:
    """Stands in for EpochRecorder: 10 examples per batch, loss 1 each, half of them right."""

    def __init__(self):
        self.reads = []

    def presented(self, n_batches):
        return 10 * n_batches

    def totals(self, start, end):
        import torch
        self.reads.append((start, end))
        return torch.tensor([float(end - start), (end - start) / 2])


def test_plain_lines_at_most_every_interval():
    now = [0.0]
    stream, recorder = io.StringIO(), FakeRecorder()
    with EpochProgress(recorder, 3, 200, 100, 30.0, stream=stream, clock=lambda: now[0]) as progress:
        for batch in range(1, 101):
            now[0] = batch * 1.0     # one batch a second
            progress.batch_done(batch)
    lines = stream.getvalue().splitlines()
    assert lines == [f"| Epoch [  3/200] Iter[ {b}/100]\t\tLoss: 1.0000 Acc@1: 50.000%" for b in (30, 60, 90)]
    # each reading sums only the batches since the previous one
    assert recorder.reads == [(0, 300), (300, 600), (600, 900)]


def test_no_progress_with_zero_interval():
    stream, recorder = io.StringIO(), FakeRecorder()
    with EpochProgress(recorder, 0, 1, 5, 0, stream=stream, clock=lambda: 1e9) as progress:
        for batch in range(1, 6):
            progress.batch_done(batch)
    assert stream.getvalue() == "" and recorder.reads == []


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal():
    now = [0.0]
    stream, recorder = Terminal(), FakeRecorder()
    with EpochProgress(recorder, 0, 2, 5, 30.0, stream=stream, clock=lambda: now[0]) as progress:
        for batch in range(1, 6):
            now[0] = 2.0 * batch   # the bar's numbers are read every TTY_READ_S = 1 s
            progress.batch_done(batch)
    shown = stream.getvalue()
    assert "\r" in shown and "epoch 1/2" in shown and "5/5" in shown and "acc 50.000%" in shown
    assert "| Epoch [" not in shown
