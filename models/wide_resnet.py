"""Wide residual network (Zagoruyko & Komodakis 2016), as used with Cutout on CIFAR.

Input  (B, 3, 32, 32) float, already normalised.
Output (B, num_classes) logits.

WRN-28-10 (the default) has about 36.5 M parameters for 10 classes. The parameter names are
the original's (its Cutout/model/wide_resnet.py): ``conv1``, ``block1.layer.0.bn1`` ...
``block3.layer.3.conv2``, ``blockN.layer.0.convShortcut``, ``bn1``, ``fc``; a state_dict saved
by the original's code loads with ``strict=True``.
"""
import torch
import torch.nn.functional as F
from torch import nn


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-relu-conv3x3-BN-relu-dropout-conv3x3, plus the shortcut.

    When the block keeps the shape the shortcut is the raw input; otherwise it is a 1x1
    (strided) conv applied to the pre-activated input relu(bn1(x)), as in the reference
    WRN code.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = stride == 1 and in_planes == planes
        self.convShortcut = (None if self.equal_in_out
                             else nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        shortcut = x if self.equal_in_out else self.convShortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.drop(F.relu(self.bn2(out))))
        return out + shortcut


class NetworkBlock(nn.Module):
    """A group of blocks, held as ``.layer`` (a Sequential) as the original's code named it."""

    def __init__(self, blocks):
        super().__init__()
        self.layer = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor: stem conv3x3 (3->16), three groups of (depth-4)/6 blocks
    at 16k, 32k, 64k channels (k = widen_factor) with first-block strides 1, 2, 2,
    final BN-relu, global average pool, linear.

    Init: every conv weight He-normal with mode='fan_out' (std sqrt(2 / (k*k*out_ch)),
    what the reference WRN / Cutout code does); BN weight 1, bias 0; linear bias 0
    (linear weight keeps PyTorch's default init).
    """

    def __init__(self, depth: int = 28, num_classes: int = 10, widen_factor: int = 10,
                 dropout: float = 0.3):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        in_planes = widths[0]
        groups = []
        for planes, stride in zip(widths[1:], (1, 2, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(WideBasicBlock(in_planes, planes, s, dropout))
                in_planes = planes
            groups.append(NetworkBlock(blocks))
        self.block1, self.block2, self.block3 = groups
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.block3(self.block2(self.block1(out)))
        out = F.relu(self.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)   # (B, 64k)
        return self.fc(out)                              # (B, num_classes)


def WideResNet28_10(num_classes: int = 10) -> WideResNet:
    """WRN-28-10 with dropout 0.3, the run_cifar.py ``--model wideresnet`` network."""
    return WideResNet(depth=28, num_classes=num_classes, widen_factor=10, dropout=0.3)
