"""A small fully connected network for inputs that are not images, or images taken as flat
vectors: run_mnist.py's smaller network for the cross-architecture experiment, and
run_images.py's ``--model mlp`` for feature vectors.

Input  (B, *shape) float, already normalised; flattened to (B, in_features).
Output (B, num_classes) logits (run_mnist.py's loss takes log_softmax of them itself when
``log_probabilities=True``, the MNIST net's convention).
"""
import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """flatten, then per width in ``hidden``: linear, relu; then linear to ``num_classes``.

    ``log_probabilities=True`` ends with log_softmax, so the network is a drop-in for the
    MNIST net (whose loss is nll_loss); the default gives logits (cross-entropy losses).
    """

    def __init__(self, in_features: int, num_classes: int, hidden=(100,),
                 log_probabilities: bool = False):
        super().__init__()
        self.log_probabilities = log_probabilities
        widths = [int(in_features), *(int(h) for h in hidden)]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(widths[-1], int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        x = self.out(x)
        return F.log_softmax(x, dim=1) if self.log_probabilities else x
