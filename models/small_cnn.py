"""The paper's "simpler" CIFAR network of the cross-architecture comparison (Sec. 6, Fig. 7
middle): two convolutional layers followed by two fully connected ones. The paper leaves the
widths to its supplementary material; the choices here are ours (docs/training.md#models,
docs/deviations.md).

Input  (B, 3, 32, 32) float, already normalised.
Output (B, num_classes) logits.
"""
import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    """conv 3->32 (5x5), batch-norm, relu, max-pool 2; conv 32->64 (5x5), batch-norm, relu,
    max-pool 2; flatten (64 x 5 x 5 = 1600); linear 512, relu; linear ``num_classes``.

    No padding, no dropout. Batch-norm after each convolution lets it train with run_cifar.py's
    SGD schedule (learning rate 0.1) like the ResNets.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 5 * 5, 512)
        self.fc2 = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # (B, 32, 14, 14)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)   # (B, 64, 5, 5)
        x = F.relu(self.fc1(x.flatten(1)))                      # (B, 512)
        return self.fc2(x)                                      # (B, num_classes)
