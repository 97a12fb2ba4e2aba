"""The numbers an analysis measures, printed one per line so that people and
reproduce_paper.py read the same output:

    measured: <key> = <value>

``<key>`` has no spaces and no ``=``; ``<value>`` is a number (printed with 4 significant
digits). plot_figures.py's subcommands print these lines for every number the paper reports
(docs/reproduce.md lists the keys); reproduce_paper.py parses them from the subcommand's output
with ``parse_measured`` and prints them beside the paper's.
"""
import math
import re

PREFIX = "measured: "
_LINE = re.compile(r"^measured: (\S+) = (\S+)$")


def measured_line(key, value):
    """The line for ``key`` measured as ``value``; ValueError for a key a parser cannot read."""
    if not key or any(c.isspace() for c in key) or "=" in key:
        raise ValueError(f"measured key {key!r} must be non-empty, without spaces or '='")
    value = float(value)
    text = "nan" if math.isnan(value) else f"{value:.4g}"
    return f"{PREFIX}{key} = {text}"


def say_measured(key, value, say=print):
    """Print (or ``say``) the measured line for ``key``."""
    say(measured_line(key, value))


def parse_measured(text):
    """{key: float} from the measured lines in ``text`` (other lines are ignored; a key
    printed twice keeps its last value)."""
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[match.group(1)] = float(match.group(2))
    return found
