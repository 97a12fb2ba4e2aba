"""forgetting.Recorder: a user's own loop writes the training scripts' run files
(forgetting/training/custom.py); examples/custom_loop.py is read by the ordering script."""
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import forgetting
from forgetting.errors import UsageError
from helpers import DEVICES, PYTHON, REPO, cli_env, load_pickle, run_script
from oracles import oracle_forgetting, oracle_tie_order

IDS = 1000 + 7 * np.random.RandomState(0).permutation(50)   # ids are not positions
X = torch.randn(50, 5, generator=torch.Generator().manual_seed(1))
Y = torch.arange(50) % 3


def train(out, epochs, stop_after=None, resume=False, kept=None, device="cpu"):
    """A plain loop over (IDS, X, Y) in batches of 16, order from torch's global RNG; records
    with a Recorder; ``kept``: a list that receives (ids, outputs, targets) per batch."""
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).to(device)
    x, y = X.to(device), Y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    with forgetting.Recorder(out, "tiny", IDS, epochs, 16, model, optimizer, resume=resume,
                             config={"lr": 0.5}, say=lambda msg: None) as rec:
        for epoch in range(rec.epochs_done, stop_after or epochs):
            order = torch.randperm(50)
            for start in range(0, 50, 16):
                batch = order[start:start + 16]
                optimizer.zero_grad()
                outputs = model(x[batch.to(device)])
                rec.record(torch.from_numpy(IDS)[batch], outputs, y[batch.to(device)])
                if kept is not None:
                    kept.append((IDS[batch.numpy()], outputs.detach().cpu(), Y[batch]))
                F.cross_entropy(outputs, y[batch.to(device)]).backward()
                optimizer.step()
            rec.end_epoch(test_acc=10.0 * epoch)
    return load_pickle(out / "tiny__stats_dict.pkl")


@pytest.mark.parametrize("device", DEVICES)
def test_statistics_are_the_plain_per_example_ones(tmp_path, device):
    kept = []
    stats = train(tmp_path, 3, kept=kept, device=device)
    expected = {int(i): ([], [], []) for i in IDS}
    for ids, outputs, targets in kept:   # the plain loop, one example at a time
        for i, out, y in zip(ids, outputs, targets):
            others = [out[k].item() for k in range(3) if k != y]
            expected[int(i)][0].append(F.cross_entropy(out[None], y[None]).item())
            expected[int(i)][1].append(int(out.argmax().item() == y.item()))
            expected[int(i)][2].append(out[y].item() - max(others))
    assert set(stats) == {int(i) for i in IDS} | {"train", "test"}
    for i, (loss, acc, margin) in expected.items():
        np.testing.assert_allclose(stats[i][0], loss, rtol=1e-5)
        assert list(stats[i][1]) == acc
        np.testing.assert_allclose(stats[i][2], margin, rtol=1e-6, atol=1e-6)
    assert stats["test"][1] == [0.0, 10.0, 20.0]   # the original layout: [[], [acc per epoch]]
    record = json.loads((tmp_path / "tiny__run.json").read_text())
    assert record["script"] == "custom" and record["finished"] and record["epochs_done"] == 3
    assert record["flags"] == {"lr": 0.5, "epochs": 3, "batch_size": 16}


def test_a_resumed_loop_writes_what_an_unbroken_one_does(tmp_path):
    whole = train(tmp_path / "whole", 3)
    train(tmp_path / "broken", 3, stop_after=2)
    resumed = train(tmp_path / "broken", 3, resume=True)
    assert (tmp_path / "whole" / "tiny__stats_dict.pkl").read_bytes() == \
        (tmp_path / "broken" / "tiny__stats_dict.pkl").read_bytes()
    assert resumed.keys() == whole.keys()


def test_an_epoch_that_misses_an_example_is_refused(tmp_path):
    model = torch.nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UsageError, match="exactly once"):
        with forgetting.Recorder(tmp_path, "r", IDS, 1, 16, model, optimizer,
                                 say=lambda msg: None) as rec:
            for start in range(0, 50, 16):
                ids = torch.from_numpy(IDS[start:start + 16]).clone()
                ids[0] = 5   # not a training id
                rec.record(ids, model(X[start:start + 16]), Y[start:start + 16])
            rec.end_epoch()
    assert not (tmp_path / "r__stats_dict.pkl").exists()   # no epoch was committed


@pytest.mark.slow
def test_the_example_is_read_by_the_ordering_script(tmp_path):
    result = run_script("examples/custom_loop.py", "--output_dir", tmp_path, "--epochs", 3,
                        must_succeed=True)
    assert "order_examples_by_forgetting.py" in result.stdout.splitlines()[-1]
    run_script("order_examples_by_forgetting.py", "--input_dir", tmp_path, "--output_dir",
               tmp_path, "--output_name", "sorted", "--epochs", 3, must_succeed=True)
    stats = load_pickle(tmp_path / "custom_mlp__stats_dict.pkl")
    sorting = load_pickle(tmp_path / "sorted.pkl")
    oracle = {i: oracle_forgetting(v[1], 3) for i, v in stats.items() if isinstance(i, int)}
    assert len(oracle) == 4000
    got = dict(zip(sorting["indices"].tolist(), sorting["forgetting counts"].tolist()))
    assert got == oracle
    assert sorting["indices"].tolist() == sorted(oracle, key=lambda i: (oracle[i], i))
    # the other readers of the README's section take it too: AUM reads the margins
    run_script("score_examples.py", "--score", "aum", "--input_dir", tmp_path,
               "--output_dir", tmp_path, "--output_name", "custom_aum", "--epochs", 3,
               must_succeed=True)
    aum = {i: sum(v[2]) / 3 for i, v in stats.items() if isinstance(i, int)}   # mean margin
    scored = load_pickle(tmp_path / "custom_aum.pkl")
    assert scored["indices"].tolist() == oracle_tie_order(aum, descending=True)
    np.testing.assert_allclose(scored["aum"], [aum[i] for i in scored["indices"].tolist()],
                               rtol=1e-12)
    run_script("plot_figures.py", "histogram", "--sorting_file", tmp_path / "sorted.pkl",
               "--output", tmp_path / "hist.png", must_succeed=True)
    assert (tmp_path / "hist.png").stat().st_size > 0


def test_resuming_with_another_config_is_refused_and_changes_nothing(tmp_path):
    train(tmp_path, 2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model = torch.nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UsageError, match="lr is 0.1 but the run in .* used 0.5"):
        forgetting.Recorder(tmp_path, "tiny", IDS, 3, 16, model, optimizer, resume=True,
                            config={"lr": 0.1}, say=lambda msg: None)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # the refused Recorder let go of the run's lock: the right config continues it
    assert train(tmp_path, 3, resume=True).keys() == train(tmp_path / "whole", 3).keys()


@pytest.mark.slow
def test_the_example_killed_and_resumed_writes_what_an_unbroken_run_does(tmp_path):
    run_script("examples/custom_loop.py", "--output_dir", tmp_path / "whole", must_succeed=True)
    broken = tmp_path / "broken"
    child = subprocess.Popen([PYTHON, os.path.join(REPO, "examples/custom_loop.py"),
                              "--output_dir", broken], env=cli_env(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = broken / "custom_mlp__resume_state.pt"
    deadline = time.monotonic() + 60
    while not state.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)   # after epoch 1's commit point, epochs 2-3 to go
    assert child.wait() == -signal.SIGKILL
    result = run_script("examples/custom_loop.py", "--output_dir", broken, "--resume",
                        must_succeed=True)
    assert re.search(r"^resuming after epoch [12] of 3$", result.stdout, re.M), result.stdout
    assert (broken / "custom_mlp__stats_dict.pkl").read_bytes() == \
        (tmp_path / "whole" / "custom_mlp__stats_dict.pkl").read_bytes()
