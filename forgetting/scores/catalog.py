"""Every score that score_examples.py writes as a sorting file: its name, its key in the file,
its direction, and how it is computed. Torch-free: the model-based scores (el2n, grand) are
named here and imported only when asked for.

A sorting file is ``{'indices': example ids easiest first, <key>: the matching values}``
(ties by ascending id), so ``--remove_n r --keep_lowest_n 0`` removes the r easiest examples
under any score. "Easiest first" is ascending values for a score where low = easy and
descending values where high = easy.
"""
import dataclasses
from typing import Callable, Optional

from forgetting.scores import aum, cartography
from forgetting.scores.forgetting import forgetting_counts
from forgetting.scores.mli import max_loss_increase


@dataclasses.dataclass(frozen=True)
class Score:
    name: str                   # --score value
    key: str                    # the sorting file's key for the values
    high_is_easy: bool          # True: sorted by descending value
    summary: str                # one line for --help and the README
    from_stats: Optional[Callable] = None  # (RunArrays, epochs) -> (n,) values of one run
    needs: tuple = ()           # stats matrices read: 'accs', 'losses', 'margins'
    total: str = "mean"         # how runs combine: 'mean', or 'sum' (forgetting, as the original)
    from_weights: Optional[str] = None     # module under forgetting.scores with <name>_scores

    @property
    def direction(self):
        return "high = easy (descending values)" if self.high_is_easy else "low = easy (ascending values)"


def _losses(fn):
    return lambda run, epochs: fn(run.losses, epochs, run.lengths)


SCORES = {score.name: score for score in (
    Score("forgetting", "forgetting counts", False,
          "forgetting events summed over runs (Toneva et al. 2019); the ordering script's file",
          lambda run, epochs: forgetting_counts(run.accs, epochs, run.lengths), needs=("accs",),
          total="sum"),
    Score("mli", "max loss increase", False,
          "Max Loss Increase, the largest loss rise between consecutive presentations",
          _losses(max_loss_increase), needs=("losses",)),
    Score("aum", "aum", True,
          "Area Under the Margin (Pleiss et al. 2020): mean recorded margin",
          lambda run, epochs: aum.area_under_margin(run.margins, epochs, run.lengths),
          needs=("margins",)),
    Score("confidence", "confidence", True,
          "cartography (Swayamdipta et al. 2020): mean probability of the label, exp(-loss)",
          _losses(cartography.confidence), needs=("losses",)),
    Score("variability", "variability", False,
          "cartography: population std of exp(-loss); high = ambiguous, low = easy or hard",
          _losses(cartography.variability), needs=("losses",)),
    Score("correctness", "correctness", True,
          "cartography: fraction of presentations classified correctly",
          lambda run, epochs: cartography.correctness(run.accs, epochs, run.lengths),
          needs=("accs",)),
    Score("el2n", "el2n", False,
          "EL2N (Paul et al. 2021): ||softmax(f(x)) - onehot(y)||_2 at saved weights",
          from_weights="el2n"),
    Score("grand", "grand", False,
          "GraNd (Paul et al. 2021): ||grad of the example's loss||_2 at saved weights",
          from_weights="grand"),
)}
