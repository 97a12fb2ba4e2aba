"""The two scales of reproduce_paper.py: the paper's setting and its miniature on the digits.

``FULL`` is the paper's setting as the original code's README gives its commands (docs/reproduce.md
lists the sources): MnistNet on MNIST and permuted MNIST, ResNet18 on CIFAR-10/100, 5 seeds of
200 epochs, removal grids in steps of 1,000, windows of 5,000, 10 seeds for the stability of
the counts. ``MINI`` runs the same pipeline on the 4,000 bundled training digits (``mnist_5k``,
``permuted_mnist_5k``) in minutes on 2 CPU cores: 3 seeds of 10 epochs, removal grids in steps
of 20%, windows of 800 (docs/reproduce.md has every difference). A dataset role the miniature has no analogue for is None.

Roles: ``mnist``, ``permuted``, ``cifar10`` (Figures 1 and 6: one series each), ``main`` (the
dataset of every CIFAR-10 experiment: Figures 2-5 and 7, the seeds and noise experiments) and
``cifar100``.
"""
import dataclasses
from typing import Dict, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str                 # --dataset
    script: str               # the training script
    model: str                # the network, as the tables name it
    uniform: Tuple[str, ...]  # flags of the runs on the whole training set, besides --dataset
    removal: Tuple[str, ...]  # flags of the runs that remove examples, besides --dataset
    remove_n: str             # the removal grid (a sweep.py range of --remove_n)
    n_train: int              # training examples

    @property
    def sorted_name(self):
        """The sorting file of its uniform runs (the original's name, e.g. cifar10_sorted)."""
        return f"{self.name}_sorted"


@dataclasses.dataclass(frozen=True)
class Scale:
    name: str
    epochs: int                              # --epochs of every run_mnist/run_cifar run
    seeds: int                               # seeds 1..seeds of every grid
    seeds_more: int                          # the seeds experiment's: 1..seeds_more
    datasets: Dict[str, Optional[Dataset]]   # role -> dataset (None: not at this scale)
    window: Tuple[int, str]                  # Figure 5 right: (--remove_n, range of starts)
    label_noise: int                         # Figure 3: --noise_percent_labels
    pixel_stds: Tuple[str, ...]              # pixel noise: --noise_std_pixels, all pixels
    small_model: Tuple[str, str]             # Figure 7 middle: (--model, its name in tables)
    other_model: Tuple[str, str]             # Figure 7 right: (--model, its name in tables)
    other_model_seeds: int
    budgets: Tuple[int, ...]                 # Figure 7 left: epoch budgets
    continual: Tuple[str, ...]               # Figure 4: run_continual.py's flags
    continual_epochs: int                    # Figure 4: epochs per run (for the tables)
    continual_seeds: int                     # Figure 4: seeds 1..continual_seeds

    def dataset(self, role):
        return self.datasets[role]

    @property
    def main(self):
        return self.datasets["main"]

    def datasets_of(self, roles):
        """The datasets of ``roles`` this scale has, each once, in order."""
        found = {}
        for role in roles:
            ds = self.datasets[role]
            if ds is not None:
                found.setdefault(ds.name, ds)
        return list(found.values())


MNIST = Dataset("mnist", "run_mnist.py", "MnistNet", ("--no_dropout",), (), "0:59000:1000", 60000)
PERMUTED = dataclasses.replace(MNIST, name="permuted_mnist")
CIFAR10 = Dataset("cifar10", "run_cifar.py", "ResNet18", ("--data_augmentation",),
                  ("--data_augmentation", "--cutout"), "0:49000:1000", 50000)
CIFAR100 = dataclasses.replace(CIFAR10, name="cifar100")

FULL = Scale(
    name="full", epochs=200, seeds=5, seeds_more=10,
    datasets={"mnist": MNIST, "permuted": PERMUTED, "cifar10": CIFAR10, "main": CIFAR10,
              "cifar100": CIFAR100},
    window=(5000, "0:49000:1000"), label_noise=20, pixel_stds=("0.5", "1", "2", "10"),
    small_model=("small_cnn", "small CNN (2 conv + 2 FC)"),
    other_model=("wideresnet", "WRN-28-10"), other_model_seeds=5,
    budgets=(25, 50, 75, 100, 150),
    continual=("--dataset", "cifar10", "--task_size", "5000", "--epochs_per_task", "20"),
    continual_epochs=40, continual_seeds=5)

# The demo's choices (demo.py): no dropout, also in the removal runs (10 epochs with dropout
# leave the digits' accuracy too noisy to compare removals).
DIGITS = Dataset("mnist_5k", "run_mnist.py", "MnistNet", ("--no_dropout",),
                 ("--no_dropout",), "0:3200:800", 4000)
PERMUTED_DIGITS = dataclasses.replace(DIGITS, name="permuted_mnist_5k")

MINI = Scale(
    name="mini", epochs=10, seeds=3, seeds_more=6,
    datasets={"mnist": DIGITS, "permuted": PERMUTED_DIGITS, "cifar10": None, "main": DIGITS,
              "cifar100": PERMUTED_DIGITS},
    window=(800, "0:3200:800"), label_noise=20, pixel_stds=("0.5", "1", "2", "10"),
    small_model=("mlp", "MLP (784-100-10)"),
    other_model=("mlp", "MLP (784-100-10)"), other_model_seeds=2,
    budgets=(2, 4, 6, 8),
    # 2 seeds of 15 epochs per task cost what 3 of 10 do; after 10 epochs the random halves
    # are still learning, and a drop while the other half trains cannot show
    continual=("--dataset", "mnist_5k", "--no_dropout", "--task_size", "1000",
               "--epochs_per_task", "15"),
    continual_epochs=30, continual_seeds=2)

SCALES = {"full": FULL, "mini": MINI}
