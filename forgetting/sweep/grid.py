"""A grid of runs: ``--grid name=values ...`` expanded into the commands a shell loop runs.

``--grid seed=1,2 remove_n=0:1000:500 -- run_mnist.py --output_dir out`` is the loop

    for s in 1 2; do for r in $(seq 0 500 1000); do
      python run_mnist.py --output_dir out --seed $s --remove_n $r
    done; done

first axis outermost, each command the fixed flags followed by one ``--name value`` per axis,
in the order the axes were given. A value list is split on commas; an item ``a:b:s`` is the
inclusive range that ``seq a s b`` prints (same numbers, same formatting: as many decimals
as the first value or the step has), so ``keep_lowest_n=0:49000:1000,-1`` is
``$(seq 0 1000 49000) -1``. Values are passed as single arguments, never through a shell;
``shell_line`` quotes them for printing.
"""
import shlex
from decimal import Decimal, InvalidOperation
from itertools import product

from forgetting.errors import UsageError


def _decimal(text, axis):
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise UsageError(f"--grid {axis}: '{text}' is not a number; a range is start:stop:step, "
                         "e.g. 0:1000:250")
    return value


def _decimals(value):
    return max(0, -value.as_tuple().exponent)


def seq_range(text, axis):
    """The values of the range ``start:stop:step`` as ``seq start step stop`` prints them."""
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(f"--grid {axis}: '{text}' is not a range; write start:stop:step "
                         "(inclusive, as seq start step stop), e.g. 0:1000:250")
    start, stop, step = (_decimal(part, axis) for part in parts)
    if step == 0:
        raise UsageError(f"--grid {axis}: the step of '{text}' is 0; give a non-zero step")
    places = max(_decimals(start), _decimals(step))
    quantum = Decimal(1).scaleb(-places)
    values = []
    value = start
    while (value <= stop) if step > 0 else (value >= stop):
        values.append(str(value.quantize(quantum)))
        value = start + step * len(values)  # no accumulated rounding, like seq
    if not values:
        raise UsageError(f"--grid {axis}: the range '{text}' is empty (seq {start} {step} {stop} "
                         "prints nothing); check the order of start, stop and step")
    return values


def axis_values(axis, text):
    """The values of one axis from ``a,b,c`` (items may be ``start:stop:step`` ranges)."""
    values = []
    for item in text.split(","):
        if item == "":
            raise UsageError(f"--grid {axis}={text} has an empty value; separate values by single "
                             f"commas, e.g. {axis}=1,2,3")
        values.extend(seq_range(item, axis) if ":" in item else [item])
    return values


def parse_grid(specs):
    """``[(axis, values), ...]`` from the ``--grid`` words ``name=values``, in order."""
    axes = []
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name or not text:
            raise UsageError(f"--grid '{spec}' is not name=values; write e.g. seed=1,2,3 or "
                             "remove_n=0:1000:250")
        name = name.lstrip("-")
        if any(name == seen for seen, _ in axes):
            raise UsageError(f"--grid names {name} twice; give each axis once with all its values")
        axes.append((name, axis_values(name, text)))
    return axes


def expand(script, fixed, axes):
    """Every grid point as an argv without the interpreter: ``[script, *fixed, --a, v, ...]``,
    first axis outermost (the nesting of the shell loop)."""
    names = [name for name, _ in axes]
    commands = []
    for values in product(*(values for _, values in axes)):
        point = [word for name, value in zip(names, values) for word in (f"--{name}", value)]
        commands.append([script, *fixed, *point])
    return commands


def shell_line(argv, program="python"):
    """One command as a shell would take it: ``python run_mnist.py --seed 1 ...``, quoted."""
    return " ".join(shlex.quote(word) for word in [program, *argv])
