"""Output directories: refuse an unusable one before any work, create it only when writing.

Used by the training scripts (``--output_dir``) and the ordering script (``--output_dir``,
``--output_dir_MLI``). Torch-free, so the ordering script starts quickly.
"""
import os

from forgetting.errors import UsageError
from forgetting.files.atomic import write_pickle


def check_output_dir(path, flag="--output_dir"):
    """An existing writable directory, or a path whose nearest existing parent is one;
    otherwise a UsageError naming ``flag``. Touches nothing."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            kind = " (it is a file)" if os.path.isfile(path) else ""
            raise UsageError(f"{flag} {path} exists and is not a directory{kind}; "
                             "choose another path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path} is not writable; choose a directory you can write to")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} cannot be created ({parent} is not a writable "
                         "directory); choose a directory you can write to")


def make_output_dir(path, flag="--output_dir"):
    """Create ``path`` (and missing parents) after the checks; the OS can still say no
    (read-only file system, quota, a race, root ignoring the mode bits that os.access read):
    that is a one-line UsageError too, not a traceback."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag} {path} cannot be created ({err.strerror or err}); "
                         "choose a directory you can write to") from None


def write_output_pickle(path, obj, flag="--output_dir"):
    """Create the directory of ``path`` (checked before with ``check_output_dir``) and write
    ``obj`` there atomically; the OS saying no is a one-line UsageError."""
    make_output_dir(os.path.dirname(path) or ".", flag)
    try:
        write_pickle(path, obj)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
