"""plot_figures.py datamap: the cartography statistics it draws, the PNG, and refusals."""
import math
import pickle
import statistics

import numpy as np
import pytest

import plot_figures
from forgetting.analysis import datamap

RUNS = {  # seed -> {id: (losses, accs)}
    1: {0: ([0.1, 0.2, 0.05], [1, 1, 1]), 1: ([2.0, 1.0, 3.0], [0, 1, 0]), 2: ([5.0, 4.0, 6.0], [0, 0, 0])},
    2: {0: ([0.3, 0.1, 0.1], [1, 1, 1]), 1: ([1.0, 2.0, 0.5], [1, 0, 1]), 2: ([3.0, 5.0, 4.0], [0, 0, 1])},
}


def write_runs(directory):
    directory.mkdir()
    for seed, run in RUNS.items():
        stats = {i: [losses, accs, [0.0] * 3] for i, (losses, accs) in run.items()}
        stats.update({"train": [[], [50.0]], "test": [[], [50.0]]})
        name = (f"dataset_mnist_5k__no_dropout_True__seed_{seed}__sorting_file_none__remove_n_0__"
                "keep_lowest_n_0__stats_dict.pkl")
        with open(directory / name, "wb") as handle:
            pickle.dump(stats, handle)


def test_datamap_draws_the_mean_statistics(tmp_path, monkeypatch):
    write_runs(tmp_path / "runs")
    drawn = {}
    real = datamap.datamap_figure

    def spy(v, c, k, title):
        drawn.update(v=v, c=c, k=k)
        return real(v, c, k, title)

    monkeypatch.setattr(datamap, "datamap_figure", spy)
    plot_figures.main(["datamap", "--input_dir", str(tmp_path / "runs"), "--epochs", "3",
                       "--output", str(tmp_path / "map.png")])
    for i in range(3):
        probs = [[math.exp(-loss) for loss in RUNS[s][i][0]] for s in (1, 2)]
        assert drawn["c"][i] == pytest.approx(statistics.fmean(statistics.fmean(p) for p in probs))
        assert drawn["v"][i] == pytest.approx(statistics.fmean(statistics.pstdev(p) for p in probs))
        assert drawn["k"][i] == pytest.approx(statistics.fmean(statistics.fmean(RUNS[s][i][1]) for s in (1, 2)))


def test_datamap_writes_a_png(tmp_path):
    write_runs(tmp_path / "runs")
    plot_figures.main(["datamap", "--input_dir", str(tmp_path / "runs"), "--epochs", "3",
                       "--output", str(tmp_path / "figs" / "map.png")])
    assert (tmp_path / "figs" / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_datamap_without_matching_runs_is_refused(tmp_path, capsys):
    write_runs(tmp_path / "runs")
    with pytest.raises(SystemExit) as exit_info:
        plot_figures.main(["datamap", "--input_dir", str(tmp_path / "runs"), "--input_fname_args", "seed", "9",
                           "--output", str(tmp_path / "figs" / "map.png")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: No input files found")
    assert not (tmp_path / "figs").exists()


def test_region_names_are_drawn_under_the_points_they_share_a_corner_with():
    # hard-to-learn examples (low confidence, low variability) fill the bottom-left corner,
    # where the "hard-to-learn" name sits
    n = 200
    fig = datamap.datamap_figure(np.full(n, 0.01), np.linspace(0.0, 0.05, n), np.zeros(n), "t")
    ax = fig.axes[0]
    (points,) = ax.collections
    fig.canvas.draw()
    drawn_at = ax.transData.transform(np.column_stack(points.get_offsets().T))
    names = {text.get_text(): text for text in ax.texts}
    assert set(names) == {"easy-to-learn", "hard-to-learn", "ambiguous"}
    box = names["hard-to-learn"].get_bbox_patch().get_window_extent()
    inside = [box.contains(x, y) for x, y in drawn_at]
    assert any(inside)  # the name does share the corner with points
    for text in names.values():
        assert text.get_zorder() < points.get_zorder()  # and is drawn first, under them
