"""The small MNIST network of the forgetting experiments (docs/training.md#models).

Input  (B, 1, 28, 28) float, already normalised.
Output (B, 10) log-probabilities (log_softmax over the class dimension).
"""
import torch
import torch.nn.functional as F
from torch import nn


class MnistNet(nn.Module):
    """conv 1->10 k5, max-pool 2, relu, conv 10->20 k5, [Dropout2d], max-pool 2, relu,
    flatten 320, fc 50, relu, [dropout p=0.5], fc 10, log_softmax.

    ``dropout=False`` (``--no_dropout``) removes both dropouts entirely, so train and eval
    mode compute the same function. ``num_classes`` (run_images.py) is the width of fc2: 10
    for MNIST. The attribute names (conv1, conv2, fc1, fc2) match the
    original's state_dict keys; neither dropout has parameters.
    """

    def __init__(self, dropout: bool = True, num_classes: int = 10):
        super().__init__()
        self.dropout = dropout
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d() if dropout else nn.Identity()
        self.fc1 = nn.Linear(320, 50)
        self.fc_drop = nn.Dropout(p=0.5) if dropout else nn.Identity()
        self.fc2 = nn.Linear(50, int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))                   # (B, 10, 12, 12)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # (B, 20, 4, 4)
        x = x.flatten(1)                                             # (B, 320)
        x = self.fc_drop(F.relu(self.fc1(x)))                        # (B, 50)
        return F.log_softmax(self.fc2(x), dim=1)                     # (B, 10)
