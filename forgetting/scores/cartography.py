"""Dataset cartography (Swayamdipta et al., EMNLP 2020): confidence, variability and
correctness from the recorded losses and accuracies. Pure, vectorised numpy.

The paper's statistics are over the probability the model gives the true label at each
presentation. Our losses are cross-entropies of log-softmax outputs (``F.nll_loss`` on
MnistNet's log_softmax, ``F.cross_entropy`` on the CIFAR logits), so that probability is
``exp(-loss)`` exactly. A model whose loss is not a log-softmax cross-entropy would need
the probabilities recorded instead: ``exp(-loss)`` would then not be a probability.

- confidence: mean of ``exp(-loss)``. High = easy.
- variability: population standard deviation of ``exp(-loss)`` (numpy's default ddof=0,
  as the authors' code). Low = easy-to-learn or hard-to-learn, high = ambiguous.
- correctness: fraction of presentations classified correctly. High = easy.
"""
import numpy as np

from forgetting.scores.stats_arrays import first_presentations, mean_over_presentations


def true_label_probabilities(losses, epochs, lengths=None):
    """``(exp(-loss), lengths)`` over the first ``epochs`` presentations."""
    values, lengths = first_presentations(losses, epochs, lengths)
    probs = np.negative(values, dtype=np.float64)  # a new array: the caller's losses stay
    return np.exp(probs, out=probs), lengths


def confidence(losses, epochs, lengths=None):
    """Mean probability of the true label per example (float64 (n,); NaN if never presented)."""
    probs, lengths = true_label_probabilities(losses, epochs, lengths)
    return mean_over_presentations(probs, lengths)


def variability(losses, epochs, lengths=None):
    """Population standard deviation of the probability of the true label per example."""
    probs, lengths = true_label_probabilities(losses, epochs, lengths)
    mean = mean_over_presentations(probs, lengths)
    # Two passes (mean, then squared deviations) rather than E[p^2] - E[p]^2, which cancels
    # badly when p barely moves (a confidently learned example: p ~ 1 at every presentation).
    probs -= mean[:, None]   # in place: probs is ours (true_label_probabilities made it)
    np.square(probs, out=probs)
    return np.sqrt(mean_over_presentations(probs, lengths))


def correctness(accs, epochs, lengths=None):
    """Fraction of the first ``epochs`` presentations classified correctly, per example."""
    values, lengths = first_presentations(accs, epochs, lengths)
    return mean_over_presentations(values, lengths)
