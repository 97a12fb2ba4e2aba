"""``TrainingJob``: everything one training run needs, filled by the training scripts
(training/loop.py ``flag_fields`` and the script's own fields) and by ``Recorder`` for a
user's loop (training/custom.py)."""
import dataclasses
from typing import Callable, Optional

import numpy as np
import torch

from forgetting.files.naming import RunPaths
from forgetting.training.sampling import UniformOrder


@dataclasses.dataclass
class TrainingJob:
    """Everything the loop needs. Tensors are already on ``device``; ``train_x``/``train_y``
    are the selected training set in training order, ``train_ids`` their example ids.
    ``sampler`` decides which positions each epoch presents (default: ``UniformOrder``)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable          # (outputs, targets) -> per-example losses
    prepare_train: Callable    # uint8 batch -> model input (normalise, augment)
    prepare_test: Callable     # uint8 batch -> model input (normalise)
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_ids: np.ndarray
    batch_size: int
    epochs: int
    device: torch.device
    paths: RunPaths
    config: dict               # result-relevant flags not in the file name
    lr_for_epoch: Optional[Callable] = None
    generator: Optional[torch.Generator] = None
    amp: bool = False
    resume: bool = False
    say: Callable = print      # progress messages for the user
    progress_every: float = 30.0   # seconds between progress lines within an epoch (0: none)
    sampler: object = dataclasses.field(default_factory=UniformOrder)
    save_weights_at: tuple = ()  # --save_weights_at: epochs whose weights are saved (0 = initial)
    run_description: Optional[dict] = None  # files/weights.py run_description, for those files
    record: Optional[dict] = None  # files/run_record.py new_record: the script, its flags, ...
    # Called after each epoch's test pass as after_test(job, epoch, test_acc, test_loss), in
    # eval mode, before the sampler observes the epoch (run_continual.py: the per-task table).
    after_test: Optional[Callable] = None
    # side_files(resume state) -> {path: text}: small files derived from the resume state,
    # written atomically after each epoch's commit point and with the final stats pickle.
    side_files: Optional[Callable] = None
