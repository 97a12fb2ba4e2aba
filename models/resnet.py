"""ResNet-18 of the CIFAR kind (the network of kuangliu/pytorch-cifar and the Cutout paper).

Input  (B, 3, 32, 32) float, already normalised (other square sizes work too).
Output (B, num_classes) logits.

Differences from the ImageNet ResNet-18: a 3x3 stride-1 stem with no max-pool, so the four
stages run at 32, 16, 8 and 4 pixels. About 11.17 M parameters for 10 classes.
"""
import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """conv3x3-BN-relu-conv3x3-BN, plus the input (or a 1x1 conv + BN of it when the
    stride or the channel count changes), then relu."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv3x3(3->64) + BN + relu, four stages of BasicBlocks at 64/128/256/512
    channels with first-block strides 1, 2, 2, 2, global average pool, linear."""

    def __init__(self, num_blocks=(2, 2, 2, 2), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), num_blocks):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)   # (B, 512)
        return self.linear(out)                          # (B, num_classes)


def ResNet18(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-18: (B, 3, 32, 32) -> (B, num_classes) logits."""
    return ResNet((2, 2, 2, 2), num_classes)
