"""The CLI wrapper: bad input and Ctrl-C end in one line and a non-zero exit, no traceback."""
import pytest

from forgetting.errors import ArgumentParser, UsageError, exit_on_usage_error


def _exit_of(function, capsys):
    with pytest.raises(SystemExit) as stopped:
        function()
    return stopped.value.code, capsys.readouterr().err


def test_usage_error_is_one_line_and_exit_2(capsys):
    @exit_on_usage_error
    def main():
        raise UsageError("--epochs is 0; it must be at least 1")

    code, err = _exit_of(main, capsys)
    assert code == 2
    assert err == "error: --epochs is 0; it must be at least 1\n"


def test_ctrl_c_outside_the_epoch_loop_is_one_line_and_exit_130(capsys):
    @exit_on_usage_error
    def main():
        raise KeyboardInterrupt

    code, err = _exit_of(main, capsys)
    assert code == 130
    assert err.count("\n") == 1 and "interrupted" in err and "--resume" in err


def test_bad_flag_is_one_line_naming_the_flag(capsys):
    parser = ArgumentParser(prog="run_mnist.py")
    parser.add_argument("--dataset", choices=("mnist", "mnist_5k"))
    code, err = _exit_of(lambda: parser.parse_args(["--dataset", "cifar"]), capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: argument --dataset") and "--help" in err


def test_a_usage_error_subclass_exits_with_its_own_status(capsys):
    from forgetting.files.run_lock import RunHeld

    @exit_on_usage_error
    def main():
        raise RunHeld("run r in out is being trained by pid 1 on host h; wait for it")

    code, err = _exit_of(main, capsys)
    assert code == 75
    assert err == "error: run r in out is being trained by pid 1 on host h; wait for it\n"


@pytest.mark.parametrize("script", ["run_mnist", "run_cifar"])
def test_the_options_table_holds_every_option_of_the_scripts(script):
    """sweep.py checks grids against ``options``, built from what add_argument returns; the
    oracle is argparse's own (private) table, options in argument groups included."""
    parser = __import__(script).build_parser()
    assert parser.options == parser._option_string_actions
    assert parser.options["--prune_ratio"].dest == "prune_ratio"  # one of a group's
