"""Library shared by run_mnist.py, run_cifar.py and order_examples_by_forgetting.py.

Data flows one way: CLI flags -> data + selection -> training loop (records per-example
statistics) -> stats files -> ordering -> sorting file -> the next run's selection.
"""
