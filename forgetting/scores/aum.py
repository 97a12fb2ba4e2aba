"""Area Under the Margin (Pleiss et al., NeurIPS 2020). Pure, vectorised numpy.

An example's AUM is the mean, over its presentations, of the margin recorded before each
optimiser step: the output for the assigned label minus the largest other output
(docs/training.md#each-epoch; the training scripts record exactly this, on logits for CIFAR and on
log-probabilities for MNIST, where the difference of log-probabilities equals the
difference of logits). High AUM = easy; a negative AUM marks an example the network keeps
assigning to another class (the paper's sign of a mislabelled example).
"""
from forgetting.scores.stats_arrays import first_presentations, mean_over_presentations


def area_under_margin(margins, epochs, lengths=None):
    """Mean margin over the first ``epochs`` presentations, per example.

    ``margins``: 2-D float array (examples, presentations); ``lengths`` as in
    ``forgetting_counts``. Returns float64 (n,), NaN for an example never presented.
    """
    values, lengths = first_presentations(margins, epochs, lengths)
    return mean_over_presentations(values, lengths)
