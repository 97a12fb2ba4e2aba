"""run_images.py's ``--model``: the network for the user's data, checked against its shape.

- ``mnist_net``: models.MnistNet (needs 1 x 28 x 28 images; log-probabilities, nll_loss);
- run_cifar.py's networks (models.CIFAR_MODELS): colour (3-channel) images of any size the
  network's pooling takes;
- ``mlp``: models.MLP(in_features = the example's size, hidden=(100,)) for vectors or images;
- ``torchvision:<name>``: torchvision's classification model, ``weights=None`` (nothing is
  downloaded), ``num_classes`` outputs.

Every network is tried on two zero inputs of the data's shape (eval mode, no gradient: no
random draw, no state changed) so a shape it cannot take is one line before training, not a
traceback in the first batch.
"""
import torch

from forgetting.errors import UsageError
from models import CIFAR_MODELS, TORCHVISION_PREFIX, build_model

MODEL_NAMES = ("mnist_net", *CIFAR_MODELS, "mlp")
MNIST_SHAPE = (1, 28, 28)


def model_options(name, shape, num_classes, dropout):
    """The constructor keywords of ``name`` (what a weights file keeps) for examples of
    ``shape`` ((C, H, W) or (D,)) and ``num_classes`` classes; a one-line error for a model the
    shape does not fit or an unknown name."""
    images = len(shape) == 3
    described = " x ".join(map(str, shape))
    if name == "mnist_net":
        if tuple(shape) != MNIST_SHAPE:
            raise UsageError(f"--model mnist_net needs 1 x 28 x 28 grayscale images, not "
                             f"{described}; use --model mlp, a CIFAR network or torchvision:<name>"
                             + (", or --image_size 28 for grayscale files" if images else ""))
        return {"dropout": dropout, "num_classes": num_classes}
    if name == "mlp":
        return {"in_features": int(torch.Size(shape).numel()), "num_classes": num_classes,
                "hidden": (100,)}
    if name in CIFAR_MODELS or name.startswith(TORCHVISION_PREFIX):
        if name.startswith(TORCHVISION_PREFIX):
            _check_torchvision_name(name[len(TORCHVISION_PREFIX):])
        if not images:
            raise UsageError(f"--model {name} takes images, but the data are feature vectors of "
                             f"{described}; use --model mlp")
        return {"num_classes": num_classes}
    raise UsageError(f"unknown --model {name}; give one of {', '.join(MODEL_NAMES)}, or "
                     "torchvision:<name> (e.g. torchvision:resnet18)")


def _check_torchvision_name(name):
    from torchvision import models as tv_models

    if name not in tv_models.list_models(module=tv_models):
        raise UsageError(f"--model torchvision:{name}: torchvision has no classification model "
                         f"{name!r}; see torchvision.models.list_models() (e.g. resnet18)")


def build_user_model(name, shape, num_classes, dropout=True):
    """``(model, options)``: the network for examples of ``shape``, tried on two zero inputs."""
    options = model_options(name, shape, num_classes, dropout)
    try:
        model = build_model(name, options)
    except KeyError as err:
        raise UsageError(f"--model {name}: {err.args[0]}") from None
    probe = torch.zeros(2, *shape)
    try:
        model.eval()
        with torch.no_grad():
            outputs = model(probe)
    except Exception as err:  # the network's own shape error, in whatever words it has
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UsageError(f"--model {name} cannot take inputs of {' x '.join(map(str, shape))} "
                         f"({reason}); use --image_size to resize, or another --model") from None
    finally:
        model.train()
    if not isinstance(outputs, torch.Tensor) or tuple(outputs.shape) != (2, num_classes):
        raise UsageError(f"--model {name} does not give one score per class for these inputs; "
                         "use another --model")
    return model, options


def gives_log_probabilities(name):
    """Whether the network ends in log_softmax (its loss is nll_loss; the others' is
    cross-entropy of their logits)."""
    return name == "mnist_net"
