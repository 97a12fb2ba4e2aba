"""Atomic file replacement: a reader or a crash sees the old complete file or the new one.

Write to a temporary file in the same directory, flush and fsync it, give it the mode a
plain ``open()`` would (the user's umask, not mkstemp's 0600), rename it over the target,
then fsync the directory so the rename itself survives a power cut. A failure at any point
removes the temporary file and leaves the target untouched. Only a kill -9 (or a power
cut) can leave one behind, as ``.<name>.XXXXXXXX.tmp`` next to the target; the training
scripts remove those of their own files with ``remove_stale_temps`` when a run starts.
"""
import contextlib
import os
import pickle
import re
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
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as err:
        raise _naming(err, path) from err
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _naming(err, path) from err
        raise
    fsync_dir(directory)


def _naming(err, path):
    """The OSError ``err`` about ``path``, the file being replaced, rather than about the
    temporary file (or no file at all, as a failed write says): the name users know."""
    if err.errno is None or err.filename == path:
        return err
    return OSError(err.errno, err.strerror or str(err), path)  # OSError picks the subclass


def _temp_name_pattern(path):
    # mkstemp's names: prefix, 8 characters from "a-z0-9_", suffix (see atomic_open).
    return re.compile(re.escape("." + os.path.basename(path) + ".") + r"[a-z0-9_]{8}" + re.escape(".tmp"))


def remove_stale_temps(path):
    """Remove the temporary files that ``atomic_open(path)`` left behind when its process was
    killed (kill -9, power cut) before the rename. ``path`` itself is never touched. Returns
    the removed names. Call it only when no other process is writing ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = _temp_name_pattern(path)
    try:
        names = os.listdir(directory)
    except OSError:  # no directory yet: nothing to clean
        return []
    removed = []
    for name in names:
        if pattern.fullmatch(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed


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
