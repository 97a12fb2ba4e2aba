"""The saved-weights file of ``--save_weights_at E``: ``<save_fname>__weights_epoch_<E>.pt``.

It loads with ``torch.load(path, weights_only=True)`` (tensors, numbers, strings, plain
containers) and holds what the model-based scores (el2n, grand) need to rebuild the model
and the run's training set without the training script's flags:

    {'format': 1, 'epoch': E (epochs trained; 0 = before the first step),
     'state_dict': the model's weights (CPU tensors),
     'model': 'mnist_net' | 'mlp' | a run_cifar.py --model, 'model_options': constructor kwargs,
     'dataset': the --dataset value, 'permutation': the pixel permutation (permuted_mnist*)
     or None, 'train_ids': int64 example ids in training order, 'train_labels': the labels
     the run trained on (after label noise), 'label_noise_percent': int,
     'pixel_noise': (percent, std) of --noise_percent_pixels/--noise_std_pixels,
     'pixel_noise_state': numpy's generator state right before the pixel noise was drawn
     ({'keys': int64 tensor of 624, 'pos', 'has_gauss', 'cached_gaussian'}; None without
     pixel noise), from which the noisy images are drawn again (files written before it lack
     the key),
     'data_source': run_images.py's data (its run record's "data": kind, path, image_size,
     split, mean, std, ...) or None for the datasets of the other scripts}

torch is imported by the functions, not the module: files/ stays importable without it.
"""
from forgetting.errors import UsageError
from forgetting.files import atomic
from forgetting.files.regular import NotRegularFile, open_regular

FORMAT = 1
RUN_KEYS = ("model", "model_options", "dataset", "permutation", "train_ids", "train_labels",
            "label_noise_percent", "pixel_noise")


def run_description(model, model_options, dataset, train_ids, train_labels, permutation=None,
                    label_noise_percent=0, pixel_noise=(0, 0), pixel_noise_state=None,
                    data_source=None):
    """The run's part of every weights file (CPU tensors), built once by the training script.
    ``pixel_noise_state``: forgetting.data.noise.generator_state() taken before the pixel noise."""
    import numpy as np
    import torch

    state = None
    if pixel_noise_state is not None:
        state = {"keys": torch.from_numpy(np.asarray(pixel_noise_state["keys"], dtype=np.int64)),
                 "pos": int(pixel_noise_state["pos"]),
                 "has_gauss": int(pixel_noise_state["has_gauss"]),
                 "cached_gaussian": float(pixel_noise_state["cached_gaussian"])}

    return {
        "model": model, "model_options": dict(model_options), "dataset": dataset,
        "permutation": None if permutation is None else torch.as_tensor(permutation).cpu().clone(),
        "train_ids": torch.as_tensor(train_ids, dtype=torch.int64).cpu().clone(),
        "train_labels": torch.as_tensor(train_labels, dtype=torch.int64).cpu().clone(),
        "label_noise_percent": int(label_noise_percent),
        "pixel_noise": (int(pixel_noise[0]), float(pixel_noise[1])),
        "pixel_noise_state": state,
        "data_source": data_source,
    }


def write_weights(path, epoch, state_dict, run):
    """Atomically write the weights after ``epoch`` epochs (``state_dict``: CPU tensors)."""
    import torch

    record = {"format": FORMAT, "epoch": int(epoch), "state_dict": state_dict, **run}
    with atomic.atomic_open(path, "wb") as handle:
        torch.save(record, handle)


def load_weights(path):
    """A weights file as written by ``write_weights``; a damaged one is a one-line error."""
    import torch

    try:
        with open_regular(path) as handle:
            record = torch.load(handle, map_location="cpu", weights_only=True)
    except NotRegularFile:
        raise
    except Exception as err:  # any failure to read it means the same thing to the user
        raise UsageError(f"{path} is not a readable weights file ({type(err).__name__}); "
                         "rerun the training with --save_weights_at") from None
    missing = [key for key in ("format", "epoch", "state_dict", *RUN_KEYS)
               if not isinstance(record, dict) or key not in record]
    if missing:
        raise UsageError(f"{path} is not a weights file of this project (no {', '.join(missing)}); "
                         "rerun the training with --save_weights_at")
    return record
