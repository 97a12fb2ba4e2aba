"""Small text files a training run writes once, before training: ``_changed_labels.txt``
(run_cifar.py, run_images.py) and ``__examples.tsv`` (run_images.py), docs/files.md."""
from forgetting.errors import UsageError
from forgetting.files import atomic
from forgetting.files.regular import open_regular


def write_text_once(path, text):
    """Atomically write ``text`` to ``path``, unless the file already holds it (a resumed run
    computes the same text: it leaves the file, and its time stamp, alone)."""
    atomic.remove_stale_temps(path)
    try:
        with open_regular(path) as handle:
            if handle.read() == text.encode():
                return
    except OSError:
        pass
    try:
        atomic.write_text(path, text)
    except OSError as err:
        raise UsageError(f"could not write {path} ({err.strerror or err}); free space or fix "
                         "permissions") from None
