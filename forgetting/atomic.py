"""Atomic file replacement: a reader or a crash sees the old complete file or the new one.

Write to a temporary file in the same directory, flush and fsync it, give it the mode a
plain ``open()`` would (the user's umask, not mkstemp's 0600), rename it over the target,
then fsync the directory so the rename itself survives a power cut. A failure at any point
removes the temporary file and leaves the target untouched.
"""
import contextlib
import os
import pickle
import tempfile


def _umask_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(directory):
    """Make a rename inside ``directory`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Context manager yielding a file object whose content replaces ``path`` on success."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def write_bytes(path, data):
    """Atomically replace ``path`` with ``data`` (bytes)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (no newline added)."""
    write_bytes(path, text.encode())


def write_pickle(path, obj):
    """Atomically replace ``path`` with ``pickle.dumps(obj)`` (highest protocol)."""
    with atomic_open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
