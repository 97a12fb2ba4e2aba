"""Shapes, output kinds, dropout switch, WRN init and parameter counts of the networks."""
import pytest
import torch
from torch import nn

from models import CIFAR_MODELS, MnistNet, ResNet18, WideResNet, build_cifar_model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mnist_net_gives_log_probabilities():
    torch.manual_seed(0)
    out = MnistNet()(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(2))


def test_mnist_net_without_dropout_is_the_same_in_train_and_eval():
    torch.manual_seed(0)
    net = MnistNet(dropout=False)
    x = torch.randn(4, 1, 28, 28)
    assert not any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in net.modules())
    train_out = net.train()(x)
    assert torch.equal(train_out, net.train()(x))
    assert torch.equal(train_out, net.eval()(x))


def test_mnist_net_with_dropout_is_random_in_train_only():
    torch.manual_seed(0)
    net = MnistNet()
    x = torch.randn(4, 1, 28, 28)
    assert not torch.equal(net.train()(x), net.train()(x))
    assert torch.equal(net.eval()(x), net.eval()(x))


def test_mnist_net_keeps_original_state_dict_keys():
    assert set(MnistNet().state_dict()) == {
        f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2")
        for kind in ("weight", "bias")}
    assert n_params(MnistNet()) == 21840


@pytest.mark.parametrize("num_classes", [10, 100])
def test_resnet18_outputs_logits(num_classes):
    torch.manual_seed(0)
    out = ResNet18(num_classes)(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, num_classes)


def test_resnet18_parameter_count():
    assert n_params(ResNet18(10)) == 11_173_962


@pytest.fixture(scope="module")
def wrn():
    torch.manual_seed(0)
    return WideResNet(depth=28, num_classes=10, widen_factor=10, dropout=0.3)


def test_wide_resnet_outputs_logits(wrn):
    with torch.no_grad():
        out = wrn(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_wide_resnet_parameter_count(wrn):
    assert abs(n_params(wrn) - 36.5e6) < 0.1e6


def test_wide_resnet_init(wrn):
    bns = [m for m in wrn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 2 * 12 + 1
    for bn in bns:
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert torch.all(wrn.linear.bias == 0)
    # He-normal, fan_out: std sqrt(2 / (k*k*out_channels)); check the largest conv.
    conv = wrn.block3[1].conv2
    expected_std = (2.0 / (3 * 3 * conv.out_channels)) ** 0.5
    assert abs(conv.weight.std().item() / expected_std - 1) < 0.02
    assert all(m.bias is None for m in wrn.modules() if isinstance(m, nn.Conv2d))


def test_small_wide_resnet_uses_dropout_only_in_training():
    torch.manual_seed(0)
    net = WideResNet(depth=10, num_classes=5, widen_factor=1, dropout=0.5)
    x = torch.randn(2, 3, 32, 32)
    assert net.train()(x).shape == (2, 5)
    assert torch.equal(net.eval()(x), net.eval()(x))


def test_build_cifar_model():
    assert set(CIFAR_MODELS) == {"resnet18", "wideresnet"}
    model = build_cifar_model("resnet18", 100)
    assert model.linear.out_features == 100
    with pytest.raises(KeyError, match="resnet18, wideresnet"):
        build_cifar_model("vgg", 10)
