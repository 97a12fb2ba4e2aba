"""The resume state: everything needed to continue a run exactly after its last finished epoch.

``<save_fname>__resume_state.pt`` holds the model, optimizer, every random generator, the
number of finished epochs, the best accuracies so far and the run's result-relevant flags.
It is written atomically after the epoch's record is in the log, so it is the commit point
of an epoch, and it loads with ``torch.load(weights_only=True)`` (tensors, numbers, strings).
"""
import hashlib
import io
import sys

import numpy as np
import torch

from forgetting.files import atomic
from forgetting.files.regular import NotRegularFile, open_regular
from forgetting.errors import UsageError


def capture_rng(device, generator=None):
    """The state of numpy's and torch's global generators (and ``generator``), as tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"numpy_keys": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_has_gauss": int(has_gauss), "numpy_cached": float(cached),
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state, device, generator=None):
    """Put back what ``capture_rng`` took (device generators only on the same kind of device)."""
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"],
                         state["numpy_cached"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    if device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def _canonical(obj):
    """``obj`` with every string interned, in new containers (tensors are shared, not copied).

    The pickler writes a string once and refers back to it when the SAME object appears
    again, so the bytes depend on object identity: an optimizer restored by ``--resume`` holds
    the strings ``torch.load`` made, not the interned ones a fresh run has, and the state file
    would differ from an uninterrupted run's although its content is equal. With every string
    interned, equal strings are one object, and the bytes depend only on the content.
    """
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):  # not namedtuples or torch.Size: kept as they are
        return type(obj)(_canonical(v) for v in obj)
    return obj


def save_state(path, state):
    """Atomically replace the resume state file (same content, same bytes); returns the
    sha256 of the bytes written (for the run record), taken as they are written."""
    with atomic.atomic_open(path, "wb", digest=True) as handle:
        torch.save(_canonical(state), handle)
    return handle.sha256


def load_state(path, with_sha256=False):
    """The saved state (CPU tensors); a damaged file is a one-line error. ``with_sha256``:
    ``(state, sha256 of the file)``, from one read of it."""
    try:
        with open_regular(path) as handle:
            if not with_sha256:
                return torch.load(handle, map_location="cpu", weights_only=True)
            data = handle.read()
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return state, hashlib.sha256(data).hexdigest()
    except NotRegularFile:
        raise
    except Exception as err:  # any failure to read it means the same thing to the user
        raise UsageError(f"{path} is not a readable resume state ({type(err).__name__}); "
                         "start the run again without --resume") from None


def check_same_config(saved, current, path):
    """Refuse to resume when a flag that changes results (but not the file name) differs."""
    for name, value in current.items():
        if name in saved and saved[name] != value:
            if isinstance(saved[name], bool):  # a switch: --amp, not --amp False
                fix = f"resume {'with' if saved[name] else 'without'} --{name}"
            else:
                fix = f"resume with --{name} {saved[name]}"
            raise UsageError(f"--{name} is {value} but the run in {path} used {saved[name]}; "
                             f"{fix} or start over without --resume")
