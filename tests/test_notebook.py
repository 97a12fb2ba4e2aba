"""notebooks/forgetting_analyses.ipynb: committed without outputs, calling the package's
public functions only; and (slow: trains three tiny runs of the bundled digits and starts a
Jupyter kernel) executed as a user would run it: no error on the runs FORGETTING_RUNS_DIR
names, every figure drawn, and the numbers plot_figures.py prints for the same runs and
results table.

nbclient starts the ``python3`` kernel that ipykernel installs into the environment's
share/jupyter (nothing to register: ``pip install -e '.[test]'`` is enough).
"""
import os
import re

import pytest

import collect_results
import order_examples_by_forgetting
import plot_figures
import run_mnist
from forgetting.analysis.measured import parse_measured
from helpers import MNIST_5K, REPO, call_main
from run_files import mnist_fname, write_run

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK = os.path.join(REPO, "notebooks", "forgetting_analyses.ipynb")
EPOCHS = 2
# histogram, first learning, margin, seeds, epoch budget, gallery, per-class gallery, removal
FIGURES = 8


def removal_table(tmp_path):
    """A results table of made-up removal runs (2 seeds, selected and random, 0/10/20 of 40
    examples removed), as collect_results.py writes it."""
    runs = tmp_path / "removal"
    for seed in (1, 2):
        for remove_n in (0, 10, 20):
            for keep in (0, -1):
                name = mnist_fname(seed=seed, sorting_file="sorted", remove_n=remove_n,
                                   keep_lowest_n=keep)
                accuracy = 90.0 - 0.2 * remove_n * (1 + (keep < 0)) + seed
                write_run(runs, name, [50.0, accuracy], n_train=40 - remove_n)
    csv = tmp_path / "results.csv"
    code, _, err = call_main(collect_results.main, ["--input_dir", runs, "--epochs", EPOCHS,
                                                    "--output", csv])
    assert code == 0, err
    return csv


def cli_measured(tmp_path, *args):
    """The measured lines of one plot_figures.py subcommand."""
    code, out, err = call_main(plot_figures.main, [*args, "--output", tmp_path / "cli.png"])
    assert code == 0, err
    return parse_measured(out)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_notebook_is_committed_clear_and_uses_public_functions():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert all(not cell.outputs and cell.execution_count is None for cell in cells), \
        "commit the notebook with its outputs cleared"
    source = "\n".join(cell.source for cell in cells)
    assert "subprocess" not in source and not re.search(r"^\s*!", source, re.M)
    imported = re.findall(r"^from (forgetting\S*) import (.+)$", source, re.M)
    assert imported, "the notebook imports the package"
    names = [name.strip() for _, names in imported for name in names.split(",")]
    assert not [name for name in names if name.startswith("_")], names
    assert not re.search(r"\b(figures|gallery|removal|stat_figures)\._", source)


@pytest.mark.slow
def test_notebook_draws_every_analysis_with_the_numbers_of_plot_figures(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)

    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        code, _, err = call_main(run_mnist.main, [*MNIST_5K, "--epochs", EPOCHS, "--batch_size",
                                                  128, "--seed", seed, "--output_dir", runs])
        assert code == 0, err
    csv = removal_table(tmp_path)
    monkeypatch.setenv("FORGETTING_RUNS_DIR", str(runs))
    monkeypatch.setenv("FORGETTING_RESULTS_CSV", str(csv))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    # Raises CellExecutionError, with the cell and its traceback, if a cell fails.
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": REPO}}).execute()

    outputs = [out for cell in code_cells(nb) for out in cell.outputs]
    printed = "".join(out.text for out in outputs
                      if out.output_type == "stream" and out.name == "stdout")
    images = [out for out in outputs
              if out.output_type == "display_data" and "image/png" in out.data]
    assert len(images) == FIGURES, printed
    assert f"3 runs of mnist_5k (seed 1, seed 2, seed 3), {EPOCHS} presentations each" in printed
    assert "split-half: needs at least 4 runs, there are 3; not measured" in printed

    measured = parse_measured(printed)
    expected = {}
    for command in ("first_learning", "margin", "seeds"):
        expected.update(cli_measured(tmp_path, command, "--input_dir", runs))
    expected.update(cli_measured(tmp_path, "epoch_budget", "--input_dir", runs,
                                 "--budgets", *range(1, EPOCHS + 1)))
    expected.update(cli_measured(tmp_path, "removal", "--results", csv))
    code, _, err = call_main(order_examples_by_forgetting.main, [
        "--input_dir", runs, "--output_dir", tmp_path, "--output_name", "sorted"])
    assert code == 0, err
    expected.update(cli_measured(tmp_path, "histogram", "--sorting_file", tmp_path / "sorted.pkl",
                                 "--labels", "mnist_5k"))
    assert {"spearman_first_learning", "spearman_margin", "pearson_pairwise",
            "removable_percent", "test_acc[random@50]", f"recall@{EPOCHS}",
            "unforgettable_percent[mnist_5k]"} <= set(expected)
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, nan_ok=True), key
