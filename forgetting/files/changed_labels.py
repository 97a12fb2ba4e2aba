"""``<save_fname>_changed_labels.txt``, the label-noise record of both training scripts
(docs/files.md#changed-labels)."""
from forgetting.errors import UsageError
from forgetting.files import atomic
from forgetting.files.regular import open_regular


def write_changed_labels(path, text):
    """Atomically write ``<fname>_changed_labels.txt``, unless it already holds ``text`` (a
    resumed run draws the same flips: it leaves the file, and its time stamp, alone)."""
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
