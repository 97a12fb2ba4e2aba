"""EL2N (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021): the L2 norm of the error
vector, ``|| softmax(f(x)) - onehot(y) ||_2``, for every training example at saved weights.

Eval mode (dropout off, batch-norm running statistics), no augmentation, no gradients: the
cost is one forward pass over the training set, batched like the test pass. Low = easy. The
paper averages over 10 runs at an early epoch (~20 on CIFAR-10); score_examples.py averages
over the selected runs at ``--weights_epoch``.

``softmax`` of MnistNet's log-probabilities is the same distribution as the softmax of its
logits, so the score is the same whichever the network outputs.
"""
import numpy as np
import torch

EVAL_BATCH = 1000


def el2n_scores(model, images, labels, prepare, batch_size=EVAL_BATCH):
    """EL2N per example, float64 numpy (n,), in the order of ``images``.

    ``images``: uint8 (n, C, H, W) on the model's device; ``labels``: int64 (n,) there too;
    ``prepare``: uint8 batch -> model input (normalisation only). One host copy at the end.
    """
    model.eval()
    dtype = next(model.parameters()).dtype  # float32 (float64 in the tests' oracles)
    scores = torch.empty(len(labels), dtype=dtype, device=labels.device)
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            targets = labels[start:start + batch_size]
            error = model(prepare(images[start:start + batch_size])).to(dtype).softmax(dim=1)
            error[torch.arange(len(targets), device=error.device), targets] -= 1.0  # minus onehot(y)
            scores[start:start + batch_size] = error.norm(dim=1)
    return scores.cpu().numpy().astype(np.float64)
