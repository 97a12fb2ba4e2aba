"""reproduce_paper.py (issue 17): the experiment list, the commands of both scales against the
paper's settings written out here, the skipping of finished steps, the comparison tables,
the refusals, and one experiment end to end on the digits."""
import os
import pickle
import shlex

import pytest

import reproduce_paper
from forgetting.paper.commands import Plan
from forgetting.paper.compare import comparison_table
from forgetting.paper.experiments import BY_ID
from forgetting.paper.runner import outputs_current, run_steps
from forgetting.paper.scales import FULL, MINI

IDS = ["fig1", "first_learning", "fig2_margin", "fig2_gallery", "fig3", "fig4", "fig5_left",
       "fig5_right", "fig6", "seeds", "fig7_left", "fig7_mid", "fig7_right", "pixel_noise",
       "cifar100"]


def dry_run(capsys, *argv):
    reproduce_paper.main([*argv, "--dry_run"])
    return capsys.readouterr().out.splitlines()


def flags_of(words):
    """{flag: value, or a list of values, or True for a switch} of a command's words."""
    flags, i = {}, 0
    while i < len(words):
        name, values = words[i][2:], []
        i += 1
        while i < len(words) and not words[i].startswith("--"):
            values.append(words[i])
            i += 1
        flags[name] = True if not values else values[0] if len(values) == 1 else values
    return flags


def seq(text):
    """An inclusive start:stop:step range, or a comma list of them, as the numbers it holds."""
    values = []
    for item in text.split(","):
        if ":" in item:
            start, stop, step = map(int, item.split(":"))
            values += [str(v) for v in range(start, stop + 1, step)]
        else:
            values.append(item)
    return values


def sweeps(lines, directories=False):
    """(script, fixed flags, {axis: values}) of each sweep line; without --output_dir and
    --input_dir unless ``directories``."""
    found = []
    for line in lines:
        words = shlex.split(line)
        if words[1] != "sweep.py":
            continue
        cut = words.index("--")
        own = flags_of(words[2:cut])
        grid = own.get("grid", [])
        grid = [grid] if isinstance(grid, str) else grid
        axes = {axis.split("=")[0]: seq(axis.split("=")[1]) for axis in grid}
        fixed = flags_of(words[cut + 2:])
        for where in () if directories else ("output_dir", "input_dir"):
            fixed.pop(where, None)
        found.append((words[cut + 1], fixed, axes))
    return found


# The paper's runs as the original code's README gives them (seeds range(1,6), removal
# range(0,50000,1000) / range(0,60000,1000), windows of 5000 at range(0,50000,1000) and -1,
# label noise 20, pixel noise [0.5,1,2,10] on 100% of the pixels, 200 epochs, the defaults
# otherwise), plus the paper's text: 10 seeds (Sec. 6), WRN on ResNet18's ordering and a
# 2-conv/2-FC network (Fig. 7), two tasks of 5k for 20 epochs each (Sec. 4.2).
SEEDS = [str(s) for s in range(1, 6)]
KEEP = ["0", "-1"]
CIFAR_REMOVE = [str(r) for r in range(0, 50000, 1000)]
MNIST_REMOVE = [str(r) for r in range(0, 60000, 1000)]
E = "200"


def cifar(dataset="cifar10", **more):
    return {"dataset": dataset, "data_augmentation": True, "epochs": E, **more}


PAPER_SWEEPS = [
    ("run_mnist.py", {"dataset": "mnist", "no_dropout": True, "epochs": E}, {"seed": SEEDS}),
    ("run_mnist.py", {"dataset": "permuted_mnist", "no_dropout": True, "epochs": E},
     {"seed": SEEDS}),
    ("run_cifar.py", cifar(), {"seed": SEEDS}),
    ("run_cifar.py", cifar(), {"seed": [str(s) for s in range(6, 11)]}),
    ("run_cifar.py", cifar(seed="1", noise_percent_labels="20"), {}),
    ("run_cifar.py", cifar(seed="1", noise_percent_pixels="100"),
     {"noise_std_pixels": ["0.5", "1", "2", "10"]}),
    ("run_cifar.py", cifar(model="small_cnn"), {"seed": SEEDS}),
    ("run_cifar.py", cifar(cutout=True, sorting_file="cifar10_sorted"),
     {"seed": SEEDS, "remove_n": CIFAR_REMOVE, "keep_lowest_n": KEEP}),
    ("run_cifar.py", cifar(cutout=True, sorting_file="cifar10_sorted", remove_n="5000"),
     {"seed": SEEDS, "keep_lowest_n": CIFAR_REMOVE + ["-1"]}),
    ("run_cifar.py", cifar(cutout=True, sorting_file="cifar10_sorted", model="wideresnet"),
     {"seed": SEEDS, "remove_n": CIFAR_REMOVE, "keep_lowest_n": KEEP}),
    ("run_mnist.py", {"dataset": "mnist", "sorting_file": "mnist_sorted", "epochs": E},
     {"seed": SEEDS, "remove_n": MNIST_REMOVE, "keep_lowest_n": KEEP}),
    ("run_mnist.py", {"dataset": "permuted_mnist", "sorting_file": "permuted_mnist_sorted",
                      "epochs": E},
     {"seed": SEEDS, "remove_n": MNIST_REMOVE, "keep_lowest_n": KEEP}),
    ("run_continual.py", {"dataset": "cifar10", "task_size": "5000", "epochs_per_task": "20",
                          "sorting_file": "cifar10_sorted"},
     {"seed": SEEDS, "split": ["random", "forgetting"], "tasks": ["AB", "BA"]}),
    ("run_cifar.py", cifar("cifar100"), {"seed": SEEDS}),
    ("run_cifar.py", cifar("cifar100", cutout=True, sorting_file="cifar100_sorted"),
     {"seed": SEEDS, "remove_n": CIFAR_REMOVE, "keep_lowest_n": KEEP}),
]

# The subcommand that draws each experiment.
SUBCOMMANDS = {"fig1": "histogram", "first_learning": "first_learning", "fig2_margin": "margin",
               "fig2_gallery": "gallery", "fig3": "noise", "fig4": "continual",
               "fig5_left": "removal", "fig5_right": "window", "fig6": "removal",
               "seeds": "seeds", "fig7_left": "epoch_budget", "fig7_mid": "cross_arch",
               "fig7_right": "removal", "pixel_noise": "histogram", "cifar100": "removal"}


def test_list_names_every_experiment_once_with_what_it_shows(capsys):
    reproduce_paper.main(["--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == IDS
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)


def test_an_unknown_experiment_is_one_line_naming_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce_paper.main(["fig1", "fig8", "--scale", "mini"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: unknown experiment 'fig8'; known: ")
    assert all(i in err for i in IDS)


def test_the_full_scale_runs_the_papers_settings_each_once_in_order(capsys, tmp_path):
    lines = dry_run(capsys, "all", "--scale", "full", "--output_dir", str(tmp_path),
                    "--gpus_per_run", "0.5", "--address", "auto")
    found = sweeps(lines)
    assert len(found) == len(PAPER_SWEEPS)
    for expected in PAPER_SWEEPS:
        assert expected in found, expected
    # Ray's flags reach every sweep.
    assert all(line.startswith("python sweep.py --address auto --gpus_per_run 0.5 ")
               for line in lines if " sweep.py " in line)
    # Every sorting file a command reads was written by an ordering before it.
    written = set()
    for line in lines:
        words = shlex.split(line)
        flags = flags_of(words[2:] if words[1] != "sweep.py" else words[words.index("--") + 2:])
        if words[1] == "order_examples_by_forgetting.py":
            written.add(os.path.join(flags["output_dir"], flags["output_name"] + ".pkl"))
        elif "sorting_file" in flags:
            files = flags["sorting_file"]
            for name in [files] if isinstance(files, str) else files:
                path = name if name.endswith(".pkl") else os.path.join(flags["input_dir"],
                                                                        name + ".pkl")
                assert path in written, line
    drawn = {}
    for line in lines:
        words = shlex.split(line)
        if words[1] == "plot_figures.py":
            drawn[os.path.basename(os.path.dirname(flags_of(words[3:])["output"]))] = words[2]
    assert drawn == SUBCOMMANDS


def test_the_miniature_trains_only_the_digits_for_10_epochs(capsys, tmp_path):
    lines = dry_run(capsys, "all", "--scale", "mini", "--output_dir", str(tmp_path))
    runs = set()
    for script, fixed, axes in sweeps(lines, directories=True):
        assert script in ("run_mnist.py", "run_continual.py")
        assert fixed["dataset"] in ("mnist_5k", "permuted_mnist_5k")
        assert fixed.get("epochs", "10") == "10"
        points = [{}]
        for axis, values in axes.items():
            points = [{**p, axis: v} for p in points for v in values]
        runs |= {(script, tuple(sorted({**fixed, **p}.items()))) for p in points}
    # uniform 3 + 3 (seeds) + 3 (permuted) + 3 (mlp); removal 5 x 2 x 3 per dataset;
    # windows at 4 more starts x 3; mlp removal 5 x 2 x 2; label noise 1; pixel noise 4;
    # continual 2 x 2 x 2 (the windows at 0 and random are runs of the removal grid, in its
    # directory: the same runs)
    assert len(runs) == 12 + 60 + 12 + 20 + 1 + 4 + 8
    assert any(dict(flags).get("model") == "mlp" for _, flags in runs)
    assert any(dict(flags).get("noise_percent_labels") == "20" for _, flags in runs)


def fake_steps(ran):
    """A runner that makes every step's files (a sweep: one run file of its own in its
    --output_dir), and the sweeps it ran are finished."""
    finished_sweeps = set()

    def run(step):
        ran.append(step)
        if step.kind == "sweep":
            words = list(step.argv)
            where = words[words.index("--output_dir") + 1]
            os.makedirs(where, exist_ok=True)
            with open(os.path.join(where, f"{abs(hash(step.argv))}_stats_dict.pkl"), "w") as file:
                file.write("run")
            finished_sweeps.add(step)
        for path in step.outputs:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as file:
                file.write("measured: removable_percent = 40\n")
        return 0

    def is_finished(step):
        return step in finished_sweeps if step.kind == "sweep" else outputs_current(step)

    return run, is_finished


def test_a_rerun_of_everything_finished_runs_nothing(tmp_path):
    plan = Plan(MINI, str(tmp_path))
    for experiment in IDS:
        plan.build(experiment)
    ran, said = [], []
    run, is_finished = fake_steps(ran)
    run_steps(plan.steps, is_finished=is_finished, run=run, say=said.append)
    assert ran == plan.steps
    assert len({step.argv for step in ran}) == len(ran)  # each command once
    ran.clear()
    run_steps(plan.steps, is_finished=is_finished, run=run, say=said.append)
    assert ran == []
    assert said[-len(plan.steps):] == [f"finished, skipped: {s.line()}" for s in plan.steps]


def test_a_changed_run_redoes_its_ordering_and_the_figure_after_it(tmp_path):
    plan = Plan(MINI, str(tmp_path))
    for experiment in ("fig1", "fig5_left"):
        plan.build(experiment)
    ran = []
    run, is_finished = fake_steps(ran)
    run_steps(plan.steps, is_finished=is_finished, run=run, say=lambda line: None)
    ran.clear()
    uniform = tmp_path / "runs" / "mnist_5k" / "uniform" / "seeds_1-3"
    stats = next(uniform.glob("*_stats_dict.pkl"))
    later = os.path.getmtime(plan.figures["fig5_left"].outputs[0]) + 5
    os.utime(stats, (later, later))
    run_steps(plan.steps, is_finished=is_finished, run=run, say=lambda line: None)
    assert [(s.kind, s.argv[0]) for s in ran] == [("order", "order_examples_by_forgetting.py"),
                                                 ("figure", "plot_figures.py")]
    assert ran[1] is plan.figures["fig1"]


def test_the_comparison_table_puts_the_papers_numbers_beside_ours():
    measured = {"unforgettable_percent[mnist_5k_sorted]": 93.25,
                "unforgettable_percent[permuted_mnist_5k_sorted]": 70.1}
    table = comparison_table(BY_ID["fig1"], MINI, measured).splitlines()
    assert ("| unforgettable examples, MNIST (%) | 91.7 | 93.25 | MnistNet on mnist "
            "(--no_dropout), seeds 1-5, 200 epochs | MnistNet on mnist_5k (--no_dropout), "
            "seeds 1-3, 10 epochs |") in table
    assert table[-2].startswith("| unforgettable examples, permuted MNIST (%) | 75.3 | 70.1 |")
    assert table[-1] == ("| unforgettable examples, CIFAR-10 (%) | 31.3 | not at this scale | "
                         "ResNet18 on cifar10 (--data_augmentation), seeds 1-5, 200 epochs | "
                         "not at this scale |")
    seeds = comparison_table(BY_ID["seeds"], FULL, {"pearson_pairwise": 0.9012}).splitlines()
    assert seeds[-2].startswith("| Pearson, one seed vs another (mean) | 0.892 | 0.9012 | "
                                "ResNet18 on cifar10 (--data_augmentation), seeds 1-10, "
                                "200 epochs |")
    assert seeds[-1].split(" | ")[2] == "not measured"
    budgets = comparison_table(BY_ID["fig7_left"], MINI, {"spearman@4": 0.5, "pearson@6": 0.7}).splitlines()
    # the paper's Figure 7 left ranks: Spearman, not Pearson
    assert [row.split(" | ")[2] for row in budgets[-4:]] == ["not measured", "0.5",
                                                             "not measured", "not measured"]
    assert "Spearman after 4 epochs" in budgets[-3]


def test_the_table_is_read_from_the_figures_output_and_written_beside_it(tmp_path, capsys):
    plan = Plan(MINI, str(tmp_path))
    plan.build("cifar100")
    log = plan.figures["cifar100"].log
    os.makedirs(os.path.dirname(log))
    with open(log, "w") as file:
        file.write("wrote x.png\nmeasured: test_acc[selected@20] = 91.5\n"
                   "measured: test_acc[random@20] = 90.25\n")
    reproduce_paper.write_tables(["cifar100"], plan)
    written = (tmp_path / "cifar100" / "cifar100.md").read_text()
    assert written in capsys.readouterr().out
    paper = ("ResNet18 on cifar100 (--data_augmentation --cutout), seeds 1-5, --remove_n "
             "0:49000:1000, least forgotten and random, 200 epochs")
    ours = ("MnistNet on permuted_mnist_5k (--no_dropout), seeds 1-3, --remove_n 0:3200:800, "
            "least forgotten and random, 10 epochs")
    assert (f"| test accuracy, 20% removed by forgetting (%) | 76.8 | 91.5 | {paper} | {ours} |"
            in written)
    assert f"| test accuracy, 20% removed at random (%) | 75.2 | 90.25 | {paper} |" in written


@pytest.mark.slow
def test_fig1_in_miniature_end_to_end_then_nothing_to_redo(tmp_path, capsys, monkeypatch):
    import dataclasses

    # one dataset (the permuted digits' half of the figure is the same pipeline): 1 seed, 2 epochs
    tiny = dataclasses.replace(MINI, epochs=2, seeds=1,
                               datasets={**MINI.datasets, "permuted": None})
    monkeypatch.setitem(reproduce_paper.SCALES, "mini", tiny)
    argv = ["fig1", "--scale", "mini", "--output_dir", str(tmp_path), "--workers", "2",
            "--no_progress"]
    reproduce_paper.main(argv)
    out = capsys.readouterr().out
    assert out.count("running: ") == 3  # the sweep, the ordering, the histogram
    assert (tmp_path / "fig1" / "fig1.png").stat().st_size > 10_000
    table = (tmp_path / "fig1" / "fig1.md").read_text()
    assert "| unforgettable examples, MNIST (%) | 91.7 | " in table
    assert "| MnistNet on mnist_5k (--no_dropout), seed 1, 2 epochs |" in table
    assert "| unforgettable examples, permuted MNIST (%) | 75.3 | not at this scale |" in table
    with open(tmp_path / "sorting" / "mnist_5k_sorted.pkl", "rb") as file:
        counts = pickle.load(file)["forgetting counts"]
    ours = table.split("| unforgettable examples, MNIST (%) | 91.7 | ")[1].split(" |")[0]
    assert float(ours) == pytest.approx(100 * (counts == 0).mean(), abs=0.01)
    reproduce_paper.main(argv)
    again = capsys.readouterr().out
    assert "running: " not in again and again.count("finished, skipped: ") == 3


@pytest.mark.parametrize("scale", ["full", "mini"])
def test_every_training_command_passes_its_scripts_own_checks(capsys, tmp_path, scale):
    """What each sweep would start (its first grid point) parses with the training script's
    parser and passes the script's refusals, so no run of the plan fails on its flags."""
    import run_cifar
    import run_continual
    import run_mnist
    from forgetting.cli import check_common_flags, check_image_flags

    checks = {"run_mnist.py": (run_mnist, [check_common_flags, run_mnist.check_mnist_flags]),
              "run_cifar.py": (run_cifar, [check_common_flags, check_image_flags]),
              "run_continual.py": (run_continual, [run_continual.check_continual_flags])}
    lines = dry_run(capsys, "all", "--scale", scale, "--output_dir", str(tmp_path))
    found = sweeps(lines, directories=True)
    assert found
    for script, fixed, axes in found:
        argv = []
        for name, value in {**fixed, **{axis: values[0] for axis, values in axes.items()}}.items():
            argv += [f"--{name}"] + ([] if value is True else
                                     value if isinstance(value, list) else [value])
        module, script_checks = checks[script]
        args = module.parse_args(argv)
        for check in script_checks:
            check(args)
