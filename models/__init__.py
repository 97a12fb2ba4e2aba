"""The networks: MnistNet and MLP for run_mnist.py (MLP also for vectors, models/mlp.py); the
original's ResNets and WideResNet, and the paper's small CNN, for run_cifar.py.

``build_cifar_model(name, num_classes)`` is what run_cifar.py's ``--model`` maps to.
"""
from torch import nn

from .mlp import MLP
from .mnist_net import MnistNet
from .resnet import ResNet18, ResNet34, ResNet50, ResNet101, ResNet152
from .small_cnn import SmallCNN
from .wide_resnet import WideResNet, WideResNet28_10

# --model name -> constructor taking num_classes.
CIFAR_MODELS = {
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "resnet152": ResNet152,
    "wideresnet": WideResNet28_10,
    "small_cnn": SmallCNN,
}


# A saved weights file's 'model' -> constructor taking its 'model_options' as keywords.
MODELS = {"mnist_net": MnistNet, "mlp": MLP, **CIFAR_MODELS}
# run_images.py's --model torchvision:<name>: torchvision's classification model <name>.
TORCHVISION_PREFIX = "torchvision:"


def torchvision_model(name: str, num_classes: int) -> nn.Module:
    """torchvision's classification model ``name`` with ``num_classes`` outputs and random
    weights (``weights=None``: nothing is downloaded); KeyError naming the known ones."""
    from torchvision import models as tv_models

    known = tv_models.list_models(module=tv_models)  # the classification models only
    if name not in known:
        raise KeyError(f"unknown torchvision model {name!r}; known: {', '.join(known)}")
    return tv_models.get_model(name, weights=None, num_classes=num_classes)


def build_model(name: str, options: dict) -> nn.Module:
    """The network a weights file describes (``name`` and constructor keyword ``options``)."""
    if name.startswith(TORCHVISION_PREFIX):
        return torchvision_model(name[len(TORCHVISION_PREFIX):], **options)
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**options)


def build_cifar_model(name: str, num_classes: int) -> nn.Module:
    """The CIFAR network called ``name``; KeyError naming the known models otherwise."""
    try:
        constructor = CIFAR_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: "
                       f"{', '.join(sorted(CIFAR_MODELS))}") from None
    return constructor(num_classes)


__all__ = ["MLP", "MnistNet", "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152",
           "SmallCNN", "WideResNet", "WideResNet28_10", "CIFAR_MODELS", "MODELS", "TORCHVISION_PREFIX",
           "build_cifar_model", "build_model", "torchvision_model"]
