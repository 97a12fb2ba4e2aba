"""sweep.py without Ray: the grid is the shell loop's commands; bad grids are refused.

The oracle for the expansion is the shell itself: a nested ``for`` loop over ``$(seq ...)``
prints each command's arguments, and ``--dry_run`` must print the same argument lists in the
same order.
"""
import os
import shlex
import subprocess

import pytest

import sweep
from forgetting.sweep.grid import seq_range
from forgetting.errors import CLOSED_PIPE_EXIT
from helpers import REPO, assert_one_line_error, call_main, run_into_closed_pipe


def dry_run(argv, cwd=REPO):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code, out, err = call_main(sweep.main, ["--dry_run", *argv])
    finally:
        os.chdir(old)
    assert code == 0, err
    return [shlex.split(line) for line in out.splitlines()]


def shell_loop(script):
    """The argv of every command a bash loop runs; the loop calls ``run`` for each command."""
    prelude = "run() { printf '%s\\x1f' \"$@\"; printf '\\n'; }\n"
    out = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("\x1f")[:-1] for line in out.splitlines()]


def test_dry_run_prints_the_commands_of_the_shell_loop(tmp_path):
    out_dir = str(tmp_path / "with space")
    expected = shell_loop(f"""
        for s in 1 2; do for r in $(seq 0 500 1000); do for k in $(seq 0 1000 2000) -1; do
          run python run_mnist.py --dataset mnist_5k --output_dir '{out_dir}' --seed $s \\
              --remove_n $r --keep_lowest_n $k
        done; done; done""")
    got = dry_run(["--grid", "seed=1,2", "remove_n=0:1000:500", "keep_lowest_n=0:2000:1000,-1",
                   "--", "run_mnist.py", "--dataset", "mnist_5k", "--output_dir", out_dir])
    assert len(expected) == 2 * 3 * 4
    assert got == expected
    assert not os.path.exists(out_dir)  # a dry run touches nothing


def test_values_with_spaces_and_floats_stay_single_arguments(tmp_path):
    expected = shell_loop(f"""
        for f in 'my sorted' other; do for n in $(seq 0 0.5 1); do
          run python run_cifar.py --output_dir {tmp_path} --sorting_file "$f" --noise_std_pixels $n
        done; done""")
    got = dry_run(["--grid", "sorting_file=my sorted,other", "noise_std_pixels=0:1:0.5", "--",
                   "run_cifar.py", "--output_dir", str(tmp_path)])
    assert got == expected


@pytest.mark.parametrize("first, step, last", [
    ("0", "1000", "59000"), ("0", "0.5", "2"), ("0.10", "0.1", "0.3"), ("5", "-2", "1"),
    ("1", "0.25", "1.5"), ("1.5", "1", "3"), ("1", "1", "2.5"), ("-3", "1", "-1"), ("7", "1", "7"),
])
def test_ranges_print_what_seq_prints(first, step, last):
    seq = subprocess.run(["seq", "--", first, step, last], capture_output=True, text=True,
                         check=True).stdout.split()
    assert seq_range(f"{first}:{last}:{step}", "x") == seq


@pytest.mark.parametrize("grid, command, needles", [
    (["seedd=1,2"], ["run_mnist.py"], ["seedd", "no flag"]),
    (["seed=1,2"], ["run_mnist.py", "--seed", "3"], ["seed", "fixed flag --seed"]),
    (["remove_n=5:1:1"], ["run_mnist.py"], ["remove_n", "empty"]),
    (["remove_n=0:10"], ["run_mnist.py"], ["remove_n", "start:stop:step"]),
    (["remove_n=0:x:1"], ["run_mnist.py"], ["'x' is not a number"]),
    (["remove_n=0:10:0"], ["run_mnist.py"], ["step", "0"]),
    (["seed=1,,2"], ["run_mnist.py"], ["empty value"]),
    (["seed"], ["run_mnist.py"], ["name=values"]),
    (["seed=1", "seed=2"], ["run_mnist.py"], ["seed twice"]),
    (["no_dropout=1"], ["run_mnist.py"], ["switch"]),
    (["seed=a"], ["run_mnist.py"], ["invalid int value: 'a'"]),
    (["seed=1,1"], ["run_mnist.py"], ["same run"]),
    (["seed=1"], ["run_foo.py"], ["run_foo.py", "not a training script"]),
    (["seed=1"], ["missing/run_mnist.py"], ["missing/run_mnist.py not found"]),
    (["threads=1,2"], ["run_mnist.py"], ["--cpus_per_run"]),
    (["seed=1"], ["run_mnist.py", "--resume"], ["--resume"]),
    (["seed=1"], ["run_mnist.py", "--no_ext"], ["--no_ext", "--no_extend unless given --extend"]),
])
def test_bad_grids_are_refused_before_anything_starts(tmp_path, grid, command, needles):
    out_dir = tmp_path / "out"
    old = os.getcwd()
    os.chdir(REPO)
    try:
        code, out, err = call_main(sweep.main, ["--grid", *grid, "--", *command,
                                                "--output_dir", str(out_dir)])
    finally:
        os.chdir(old)
    assert_one_line_error(code, err, *needles)
    assert out == ""
    assert not out_dir.exists()


def test_sweep_flags_are_checked(tmp_path):
    for argv, needle in ((["--workers", "1", "--cpus_per_run", "2"], "--workers 1"),
                         (["--workers", "2", "--address", "auto"], "--address"),
                         (["--retries", "-1"], "--retries"), (["--dry_run"], "no training command"),
                         (["--connect_timeout", "5"], "--connect_timeout bounds joining"),
                         (["--address", "auto", "--connect_timeout", "0"], "--connect_timeout is 0"),
                         (["--progress_every", "-1"], "--progress_every is -1")):
        tail = [] if argv == ["--dry_run"] else ["--", "run_mnist.py", "--output_dir", str(tmp_path)]
        code, _, err = call_main(sweep.main, [*argv, *tail])
        assert_one_line_error(code, err, needle)



def test_a_missing_sorting_file_is_refused_before_ray_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "start_ray", lambda args: pytest.fail("the sweep started Ray"))
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(sweep.main, [
        "--grid", "seed=1,2", "--", os.path.join(REPO, "run_mnist.py"), "--sorting_file", "absent",
        "--input_dir", "in", "--output_dir", "out"])
    assert_one_line_error(code, err, "sorting file not found", "--sorting_file absent",
                          os.path.join("in", "absent.pkl"))
    assert os.listdir(tmp_path) == []


def test_a_dry_run_into_a_closed_pipe_ends_quietly(tmp_path):
    # `sweep.py --dry_run ... | head -1`, with more lines than a pipe holds
    code, lines, err = run_into_closed_pipe(
        "sweep.py", "--dry_run", "--grid", "seed=1:3000:1", "--", "run_mnist.py",
        "--output_dir", tmp_path, lines_read=1)
    assert lines == [f"python run_mnist.py --output_dir {tmp_path} --seed 1\n"]
    assert (code, err) == (CLOSED_PIPE_EXIT, "")
