"""GraNd (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021): the L2 norm of the
gradient of an example's loss with respect to all parameters, ``|| grad_theta loss(f(x), y)
||_2``, at saved weights (epoch 0 = at initialisation, as in the paper). Low = easy.

Per-example gradients are batched with ``torch.func``: ``vmap`` over ``grad`` of a
``functional_call`` of the model on one example, so a chunk of examples is one batched
backward pass rather than a Python loop. The model is in eval mode: batch norm uses its
running statistics, so an example's gradient does not depend on the rest of its chunk
(batch statistics under vmap would be per example anyway, i.e. wrong), and dropout is off.
The loss is ``F.cross_entropy`` on the outputs, the training loss: on MnistNet's
log-probabilities it equals the NLL, log_softmax being idempotent.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

# Per-example gradients take (chunk x parameters) floats at once: ~1 GiB of float32 by
# default, i.e. 256 MNIST examples (21,840 parameters) or 23 for ResNet18 (11.2 M).
GRADIENT_FLOATS = 2 ** 28
MAX_CHUNK = 256


def default_chunk(model):
    """Examples per vmap call so that their gradients fit in ``GRADIENT_FLOATS`` floats."""
    n_params = sum(p.numel() for p in model.parameters())
    return max(1, min(MAX_CHUNK, GRADIENT_FLOATS // max(n_params, 1)))


def grand_scores(model, images, labels, prepare, chunk=None):
    """GraNd per example, float64 numpy (n,), in the order of ``images``.

    ``images``: uint8 (n, C, H, W) on the model's device; ``labels``: int64 (n,) there too;
    ``prepare``: uint8 batch -> model input. ``chunk``: examples per batched backward pass
    (default: ``default_chunk``). Squared norms are summed over parameters inside the
    vmapped function, so only one chunk's gradients exist at a time.
    """
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def example_loss(params, x, y):
        output = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(output, y.unsqueeze(0))

    def squared_norm(params, x, y):
        grads = grad(example_loss)(params, x, y)
        return sum(g.square().sum() for g in grads.values())

    batched = vmap(squared_norm, in_dims=(None, 0, 0))
    chunk = chunk or default_chunk(model)
    # the parameters' dtype, not float64: Apple GPUs have no float64
    squares = torch.empty(len(labels), dtype=next(iter(params.values())).dtype, device=labels.device)
    for start in range(0, len(labels), chunk):
        inputs = prepare(images[start:start + chunk])
        squares[start:start + chunk] = batched(params, inputs, labels[start:start + chunk])
    return np.sqrt(squares.cpu().numpy().astype(np.float64))
