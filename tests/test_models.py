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
    assert torch.all(wrn.fc.bias == 0)
    # He-normal, fan_out: std sqrt(2 / (k*k*out_channels)); check the largest conv.
    conv = wrn.block3.layer[1].conv2
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
    assert list(CIFAR_MODELS) == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wideresnet",
                                 "small_cnn"]
    model = build_cifar_model("resnet18", 100)
    assert model.linear.out_features == 100
    with pytest.raises(KeyError, match="resnet50, small_cnn, wideresnet"):
        build_cifar_model("vgg", 10)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_small_cnn_shapes_and_parameter_count(num_classes):
    """Two 5x5 convolutions (32, 64 channels, batch-norm, 2x2 max-pool) then 512 and
    num_classes units (docs/training.md#models): shapes and counts from that description."""
    from models import SmallCNN

    model = build_cifar_model("small_cnn", num_classes)
    assert isinstance(model, SmallCNN)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {"conv1.weight": (32, 3, 5, 5), "conv1.bias": (32,), "bn1.weight": (32,),
                      "bn1.bias": (32,), "conv2.weight": (64, 32, 5, 5), "conv2.bias": (64,),
                      "bn2.weight": (64,), "bn2.bias": (64,), "fc1.weight": (512, 64 * 5 * 5),
                      "fc1.bias": (512,), "fc2.weight": (num_classes, 512), "fc2.bias": (num_classes,)}
    convs = (3 * 25 + 1) * 32 + 2 * 32 + (32 * 25 + 1) * 64 + 2 * 64
    assert sum(p.numel() for p in model.parameters()) == convs + 1601 * 512 + 513 * num_classes
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (4, num_classes)
    model.eval()
    with torch.no_grad():  # logits: no softmax at the end, and no dropout (eval is deterministic)
        out = model(x)
        assert not torch.allclose(out.exp().sum(dim=1), torch.ones(4))
        assert torch.equal(out, model(x))


def test_run_cifar_help_names_every_model(capsys):
    import run_cifar
    with pytest.raises(SystemExit):
        run_cifar.parse_args(["--help"])
    model_help = " ".join(capsys.readouterr().out.split("--model {", 2)[2].split())
    for name in CIFAR_MODELS:
        assert name in model_help.split("(default")[0]
    assert run_cifar.parse_args(["--model", "resnet152", "--output_dir", "x"]).model == "resnet152"


# ----------------------------------------------------------------------------- the original's names
# A state_dict saved by the original's code (its Cutout/model/resnet.py and wide_resnet.py) must
# load with strict=True. The expected keys and shapes are re-enacted here from the original's
# structure, independently of models/.

def bn_entries(name, planes):
    return {f"{name}.weight": (planes,), f"{name}.bias": (planes,), f"{name}.running_mean": (planes,),
            f"{name}.running_var": (planes,), f"{name}.num_batches_tracked": ()}


def original_resnet_entries(bottleneck, num_blocks, num_classes=10):
    """Key -> shape of the original's ResNet(block, num_blocks, num_classes)."""
    expansion = 4 if bottleneck else 1
    entries = {"conv1.weight": (64, 3, 3, 3), **bn_entries("bn1", 64)}
    in_planes = 64
    for stage, (planes, stride, n) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2), num_blocks), 1):
        for index, s in enumerate([stride] + [1] * (n - 1)):
            name = f"layer{stage}.{index}"
            if bottleneck:
                convs = [(in_planes, planes, 1), (planes, planes, 3), (planes, planes * 4, 1)]
            else:
                convs = [(in_planes, planes, 3), (planes, planes, 3)]
            for k, (cin, cout, size) in enumerate(convs, 1):
                entries[f"{name}.conv{k}.weight"] = (cout, cin, size, size)
                entries.update(bn_entries(f"{name}.bn{k}", cout))
            if s != 1 or in_planes != planes * expansion:
                entries[f"{name}.shortcut.0.weight"] = (planes * expansion, in_planes, 1, 1)
                entries.update(bn_entries(f"{name}.shortcut.1", planes * expansion))
            in_planes = planes * expansion
    entries.update({"linear.weight": (num_classes, 512 * expansion), "linear.bias": (num_classes,)})
    return entries


class OriginalWideBlock(nn.Module):
    """The original's WRN BasicBlock: its names and its forward."""

    def __init__(self, in_planes, out_planes, stride, drop_rate):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(in_planes), nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(out_planes), nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride=stride,
                                                                      bias=False)

    def forward(self, x):
        if self.equal_in_out:
            out = self.conv1(self.relu1(self.bn1(x)))
        else:
            x = self.relu1(self.bn1(x))
            out = self.conv1(x)
        out = torch.nn.functional.dropout(self.relu2(self.bn2(out)), p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return (x if self.equal_in_out else self.convShortcut(x)) + out


class OriginalNetworkBlock(nn.Module):
    def __init__(self, n, in_planes, out_planes, stride, drop_rate):
        super().__init__()
        self.layer = nn.Sequential(*[OriginalWideBlock(in_planes if i == 0 else out_planes, out_planes,
                                                       stride if i == 0 else 1, drop_rate) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class OriginalWideResNet(nn.Module):
    def __init__(self, depth, num_classes, widen_factor, drop_rate):
        super().__init__()
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, channels[0], 3, stride=1, padding=1, bias=False)
        self.block1 = OriginalNetworkBlock(n, channels[0], channels[1], 1, drop_rate)
        self.block2 = OriginalNetworkBlock(n, channels[1], channels[2], 2, drop_rate)
        self.block3 = OriginalNetworkBlock(n, channels[2], channels[3], 2, drop_rate)
        self.bn1, self.relu = nn.BatchNorm2d(channels[3]), nn.ReLU()
        self.fc = nn.Linear(channels[3], num_classes)
        self.channels = channels[3]

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = torch.nn.functional.avg_pool2d(self.relu(self.bn1(out)), 8)
        return self.fc(out.view(-1, self.channels))


def random_state(entries, seed):
    """A state_dict with the given key -> shape, random values (positive running variances)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in entries.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


def shapes(model):
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


@pytest.mark.parametrize("name, bottleneck, num_blocks", [
    ("resnet18", False, (2, 2, 2, 2)), ("resnet34", False, (3, 4, 6, 3)), ("resnet50", True, (3, 4, 6, 3)),
    ("resnet101", True, (3, 4, 23, 3)), ("resnet152", True, (3, 8, 36, 3))])
def test_resnets_have_the_original_keys_and_shapes(name, bottleneck, num_blocks):
    with torch.device("meta"):   # shapes only: no memory, no init cost
        model = build_cifar_model(name, 100)
    assert shapes(model) == original_resnet_entries(bottleneck, num_blocks, 100)


@pytest.mark.parametrize("name, bottleneck, num_blocks", [("resnet18", False, (2, 2, 2, 2)),
                                                          ("resnet50", True, (3, 4, 6, 3))])
def test_an_original_resnet_state_dict_loads_strictly(name, bottleneck, num_blocks):
    state = random_state(original_resnet_entries(bottleneck, num_blocks), seed=1)
    model = build_cifar_model(name, 10)
    model.load_state_dict(state, strict=True)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_wide_resnet_28_10_has_the_original_keys_and_shapes():
    with torch.device("meta"):
        ours, original = build_cifar_model("wideresnet", 100), OriginalWideResNet(28, 100, 10, 0.3)
    assert list(shapes(ours).items()) == list(shapes(original).items())


def test_an_original_wide_resnet_state_dict_loads_strictly_and_computes_the_same():
    original = OriginalWideResNet(depth=10, num_classes=10, widen_factor=2, drop_rate=0.3)
    state = random_state(shapes(original), seed=2)
    original.load_state_dict(state, strict=True)
    ours = WideResNet(depth=10, num_classes=10, widen_factor=2, dropout=0.3)
    ours.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), original.eval()(x), rtol=1e-5, atol=1e-5)


def test_mlp_flattens_its_input_and_gives_logits_or_log_probabilities():
    from models import MLP, build_model

    torch.manual_seed(0)
    net = MLP(in_features=28 * 28, num_classes=10, hidden=(32, 16))
    out = net(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert [m.out_features for m in net.hidden] == [32, 16]
    log_net = build_model("mlp", {"in_features": 30, "num_classes": 2, "log_probabilities": True})
    torch.testing.assert_close(log_net(torch.randn(5, 30)).exp().sum(dim=1), torch.ones(5))
