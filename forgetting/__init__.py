"""Library shared by run_mnist.py, run_cifar.py and order_examples_by_forgetting.py.

Data flows one way: CLI flags -> data + selection -> training loop (records per-example
statistics) -> stats files -> ordering -> sorting file -> the next run's selection.

For notebooks: ``forgetting.load_stats(path)`` (a stats file as a long pandas DataFrame) and
``forgetting.load_sorting(path)`` (a sorting file as one), from ``forgetting.analysis.tables``.
``forgetting.Recorder`` is what the training scripts record and save through, and a loop the
user writes calls it the same way (forgetting/training/custom.py). They are looked up on first
use: importing the package imports nothing (the refresher child process and the ordering
script import it and must start fast: no numpy, pandas or torch).
"""

__all__ = ["Recorder", "load_sorting", "load_stats"]


def __getattr__(name):
    if name == "Recorder":
        from forgetting.training.custom import Recorder
        return Recorder
    if name in __all__:
        from forgetting.analysis import tables
        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
