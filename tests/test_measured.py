"""The measured-line protocol between plot_figures.py and reproduce_paper.py."""
import math

import pytest

from forgetting.analysis.measured import measured_line, parse_measured, say_measured


def test_measured_lines_read_back_among_other_output():
    lines = []
    say_measured("unforgettable_percent[mnist_sorted]", 91.7234, say=lines.append)
    say_measured("spearman_margin", -0.7412, say=lines.append)
    text = "wrote fig.png\n" + "\n".join(lines) + "\nmeasured: bad line\n"
    assert lines[0] == "measured: unforgettable_percent[mnist_sorted] = 91.72"
    assert parse_measured(text) == {"unforgettable_percent[mnist_sorted]": 91.72,
                                    "spearman_margin": -0.7412}


def test_nan_is_printed_and_read_as_nan():
    assert math.isnan(parse_measured(measured_line("x", float("nan")))["x"])


@pytest.mark.parametrize("key", ["", "two words", "a=b"])
def test_keys_a_parser_could_not_read_are_refused(key):
    with pytest.raises(ValueError):
        measured_line(key, 1.0)
