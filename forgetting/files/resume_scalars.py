"""Read a resume state's small entries without torch and without reading its weights.

``<save_fname>__resume_state.pt`` (forgetting/training/resume_state.py) is a ``torch.save``
zip archive: ``<dir>/data.pkl`` holds the dict's structure and plain values, and every
tensor lives in its own ``<dir>/data/<n>`` entry. The entries a results table needs
(``epochs_done``, ``legacy_epochs``, ``best_train``, ``best_test``, ``config``) are plain
numbers in ``data.pkl``, a few KB, while the weights can be hundreds of MB (ResNet18 with
its optimizer state: ~90 MB). So ``read_scalars`` opens the zip, reads only ``data.pkl``
and unpickles it with every global replaced by an inert placeholder and every tensor
storage by None: nothing is imported or called, no tensor data is read, and it needs
neither torch nor a trusted file.
"""
import pickle
import zipfile

from forgetting.files.regular import open_regular


class _Inert(dict):
    """Stands for any class or function the pickle names (a tensor rebuild, OrderedDict,
    a storage type): takes any arguments and state, accepts items, keeps nothing."""

    def __init__(self, *args, **kwargs):  # dict's own __init__ would read the arguments
        super().__init__()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        return _Inert

    def persistent_load(self, pid):  # a tensor's storage: its bytes stay in the zip
        return None


def _plain(value):
    """``value`` if it holds only numbers, strings, None and dicts of them; else None."""
    if isinstance(value, _Inert):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None


def read_scalars(path):
    """The resume state's top-level entries that are plain values (numbers, strings, dicts of
    them, e.g. ``{'epochs_done': 3, 'best_test': 79.2, 'config': {...}, ...}``); tensors
    and other objects come back as None. ValueError if ``path`` is not a readable resume state
    (``regular.NotRegularFile``, a ValueError, if it is a FIFO or another non-regular file);
    OSError if it cannot be opened."""
    try:
        with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                raise ValueError("no data.pkl in the archive")
            state = _NoGlobals(archive.open(names[0])).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, IndexError,
            TypeError, AttributeError, UnicodeDecodeError) as err:
        raise ValueError(f"not a readable resume state ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise ValueError("not a readable resume state (no dict inside)")
    return {key: _plain(value) for key, value in state.items()}
