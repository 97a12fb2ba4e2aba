"""The paper's experiments: their ids, what each shows, and the paper's numbers.

Each ``Experiment`` names its figure, says in one line what it shows, and lists its ``Claim``s:
a quantity, the paper's value or statement as the paper gives it (Toneva et al., ICLR 2019,
arXiv 1812.05159; the text is quoted where there is no number), and the key of the measured
line (forgetting/analysis/measured.py) that the experiment's plot_figures.py subcommand
prints for it. Keys hold ``{mnist}``, ``{permuted}``, ``{cifar10}``, ``{main}``, ``{cifar100}``:
the dataset of that role at the scale run (forgetting/paper/scales.py). docs/reproduce.md
lists every experiment with its commands.
"""
import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Claim:
    quantity: str
    paper: str                  # the paper's value (in the key's unit) or its words
    key: Optional[str] = None   # the measured line's key; None: the figure shows it
    role: str = "main"          # the dataset it is about
    setting: str = "uniform"    # which runs measure it (forgetting/paper/compare.py: settings)


@dataclasses.dataclass(frozen=True)
class Experiment:
    id: str
    figure: str
    shows: str
    claims: Tuple[Claim, ...]


_REMOVAL = "removal"

EXPERIMENTS = (
    Experiment("fig1", "Figure 1", "histogram of forgetting events per example: how many "
               "examples are never forgotten (MNIST, permuted MNIST, CIFAR-10)", (
                   Claim("unforgettable examples, MNIST (%)", "91.7",
                         "unforgettable_percent[{mnist}_sorted]", "mnist"),
                   Claim("unforgettable examples, permuted MNIST (%)", "75.3",
                         "unforgettable_percent[{permuted}_sorted]", "permuted"),
                   Claim("unforgettable examples, CIFAR-10 (%)", "31.3",
                         "unforgettable_percent[{cifar10}_sorted]", "cifar10"))),
    Experiment("first_learning", "Sec. 4.1, Supp. Fig. 9", "presentation at which an example "
               "is first learned vs its forgetting events", (
                   Claim("Spearman, first learning event vs forgetting events", "0.56",
                         "spearman_first_learning"),)),
    Experiment("fig2_margin", "Figure 2 left", "forgetting events vs mean misclassification "
               "margin over the forgetting events", (
                   Claim("Spearman, forgetting events vs misclassification margin", "-0.74",
                         "spearman_margin"),)),
    Experiment("fig2_gallery", "Figure 2 middle, right", "pictures of unforgettable and most "
               "forgotten examples", (
                   Claim("what they look like", "\"Unforgettable samples are easily recognizable "
                         "and contain the most obvious class attributes or centered objects\"; "
                         "the most forgotten \"exhibit more ambiguous characteristics\""),)),
    Experiment("fig3", "Figure 3", "examples with flipped labels (20%) are forgotten most; their "
               "counts with and without the noise", (
                   Claim("flipped examples never forgotten (%)", "0 (\"no noisy examples are "
                         "unforgettable\")", "noisy_unforgettable_percent", setting="noise"),
                   Claim("clean examples never forgotten (%)", "(not given)",
                         "clean_unforgettable_percent", setting="noise"),
                   Claim("mean forgetting events, flipped examples", "higher than the clean "
                         "ones' (\"the most forgotten examples are those with noisy labels\")",
                         "noisy_mean_count", setting="noise"),
                   Claim("mean forgetting events, clean examples", "(not given)",
                         "clean_mean_count", setting="noise"),
                   Claim("mean forgetting events, flipped examples with their true labels",
                         "lower (\"a much higher degree of forgetting in the noisy case\")",
                         "noisy_mean_count_before", setting="seed_1"))),
    Experiment("fig4", "Figure 4", "two tasks trained in turn: random halves vs never-forgotten "
               "(f0) and forgotten (fN) examples", (
                   Claim("random split", "\"some forgetting of the second task when we only "
                         "train on the first task\"", setting="continual"),
                   Claim("split by forgetting", "fN \"suffer a more drastic form of forgetting\" "
                         "than a random split; f0 \"suffer very mild forgetting when training "
                         "on task fN\"", setting="continual"))),
    Experiment("fig5_left", "Figure 5 left", "test accuracy after removing the least forgotten "
               "examples vs random ones", (
                   Claim("training set removable at no cost (%)", "30 (35 with less than 0.2 "
                         "points lost)", "removable_percent", setting=_REMOVAL),)),
    Experiment("fig5_right", "Figure 5 right", "test accuracy after removing a window of "
               "examples, vs the window's forgetting events", (
                   Claim("Spearman, window's mean forgetting events vs test accuracy",
                         "(no number) \"removing the same number of examples with increasingly "
                         "more forgetting events results in worse generalization for most of "
                         "the curve\"", "spearman_window", setting="window"),)),
    Experiment("fig6", "Figure 6", "removal curves of MNIST, permuted MNIST and CIFAR-10 "
               "side by side", (
                   Claim("MNIST removable at no cost (%)", "80", "removable_percent[{mnist}]",
                         "mnist", _REMOVAL),
                   Claim("permuted MNIST removable at no cost (%)", "50",
                         "removable_percent[{permuted}]", "permuted", _REMOVAL),
                   Claim("CIFAR-10 removable at no cost (%)", "30",
                         "removable_percent[{cifar10}]", "cifar10", _REMOVAL))),
    Experiment("seeds", "Sec. 6, across seeds", "stability of the forgetting counts over "
               "random seeds", (
                   Claim("Pearson, one seed vs another (mean)", "0.892", "pearson_pairwise",
                         setting="seeds"),
                   Claim("Pearson, summed counts of two halves of the seeds", "0.976",
                         "pearson_split_half", setting="seeds"))),
    Experiment("fig7_left", "Figure 7 left", "counts after a budget of epochs vs after all "
               "epochs", (
                   Claim("ranking vs the final one", "\"very stable after 75 epochs\"; 25 "
                         "epochs \"a reasonable number\"", "spearman@{budgets}"),)),
    Experiment("fig7_mid", "Figure 7 middle", "a smaller network's unforgettable examples vs "
               "ResNet18's", (
                   Claim("precision", "(plot) \"a reasonably strong agreement\"", "precision",
                         setting="small"),
                   Claim("recall", "(plot)", "recall", setting="small"))),
    Experiment("fig7_right", "Figure 7 right", "another architecture trained without the "
               "examples ResNet18 forgets least", (
                   Claim("training set removable at no cost (%)", "30 (\"still performs near "
                         "optimally with 30% of the dataset removed\")", "removable_percent",
                         setting="other"),)),
    Experiment("pixel_noise", "Supp. Fig. 11", "forgetting events with Gaussian noise added to "
               "every pixel (std 0.5, 1, 2, 10)", (
                   Claim("unforgettable examples (%), per noise std", "(no number in the text)",
                         "unforgettable_percent[{main}_pixels_std_{std}_sorted]",
                         setting="pixels"),
                   Claim("unforgettable examples (%), no noise, same seed", "(no number)",
                         "unforgettable_percent[{main}_seed_1_sorted]", setting="seed_1"))),
    Experiment("cifar100", "Supp., CIFAR-100", "removing the least forgotten 20% of CIFAR-100 "
               "vs 20% at random", (
                   Claim("test accuracy, 20% removed by forgetting (%)", "76.8",
                         "test_acc[selected@20]", "cifar100", _REMOVAL),
                   Claim("test accuracy, 20% removed at random (%)", "75.2",
                         "test_acc[random@20]", "cifar100", _REMOVAL))),
)

BY_ID = {experiment.id: experiment for experiment in EXPERIMENTS}
IDS = tuple(BY_ID)
