"""ResNet-18/34/50/101/152 of the CIFAR kind (the Cutout paper's, which the original used).

Input  (B, 3, 32, 32) float, already normalised (other square sizes work too).
Output (B, num_classes) logits.

Differences from the ImageNet ResNets: a 3x3 stride-1 stem with no max-pool, so the four
stages run at 32, 16, 8 and 4 pixels. ResNet-18/34 stack BasicBlocks, ResNet-50/101/152
Bottlenecks (4x wider outputs). The attribute names are the original's (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.shortcut.0``, ``linear``, ...), so a state_dict saved by the
original's code loads with ``strict=True``. ResNet-18 has about 11.17 M parameters for 10
classes.
"""
import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """conv3x3-BN-relu-conv3x3-BN, plus the input (or a 1x1 conv + BN of it when the
    stride or the channel count changes), then relu."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1-BN-relu, conv3x3 (strided)-BN-relu, conv1x1 to 4x planes-BN, plus the input
    (or a 1x1 conv + BN of it), then relu."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _shortcut(in_planes, out_planes, stride):
    """The identity (an empty Sequential, as the original: no state_dict keys), or a strided
    1x1 conv + BN when the block changes the shape."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class ResNet(nn.Module):
    """Stem conv3x3(3->64) + BN + relu, four stages of ``block`` at 64/128/256/512 planes
    with first-block strides 1, 2, 2, 2, global average pool, linear."""

    def __init__(self, block=BasicBlock, num_blocks=(2, 2, 2, 2), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), num_blocks):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(block(in_planes, planes, s))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)   # (B, 512 * expansion)
        return self.linear(out)                          # (B, num_classes)


def ResNet18(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-18 (BasicBlocks 2-2-2-2): (B, 3, 32, 32) -> (B, num_classes) logits."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def ResNet34(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-34 (BasicBlocks 3-4-6-3)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes)


def ResNet50(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-50 (Bottlenecks 3-4-6-3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


def ResNet101(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-101 (Bottlenecks 3-4-23-3)."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes)


def ResNet152(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-152 (Bottlenecks 3-8-36-3)."""
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes)
