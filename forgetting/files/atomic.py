"""Atomic file replacement: a reader or a crash sees the old complete file or the new one.

Write to a temporary file in the same directory, flush and fsync it, give it the mode a
plain ``open()`` would (the user's umask, not mkstemp's 0600), rename it over the target,
then fsync the directory so the rename itself survives a power cut. A failure at any point
removes the temporary file and leaves the target untouched. Only a kill -9 (or a power
cut) can leave one behind, as ``.<name>.XXXXXXXX.tmp`` next to the target; the training
scripts remove those of their own files with ``remove_stale_temps`` when a run starts.

A failed write is always raised as the ``OSError`` that the write met (ENOSPC, EFBIG), named
after the target, even when the code writing through the handle turns it into an error of its
own (torch.save's zip writer raises ``RuntimeError: ... unexpected pos``). ``atomic_open(...,
digest=True)`` also gives the sha256 of the bytes written (``handle.sha256``), taken as they
pass, so that a file's checksum never costs a second read.
"""
import contextlib
import hashlib
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


class _Writer:
    """The temporary file as the caller writes it: keeps the first ``OSError`` a write or
    flush meets (which the caller's library may swallow or wrap) and, if asked, the sha256
    of what was written."""

    def __init__(self, raw, digest):
        self.raw, self.error = raw, None
        self._hash = hashlib.sha256() if digest else None

    def write(self, data):
        try:
            written = self.raw.write(data)
        except OSError as err:
            self.error = self.error or err
            raise
        if self._hash is not None:
            self._hash.update(data)
        return written

    def flush(self):
        try:
            self.raw.flush()
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name):  # tell, seek, ... as the file has them (matplotlib's PDF)
        return getattr(self.raw, name)

    @property
    def sha256(self):
        """Hex sha256 of the bytes written so far (``digest=True`` only)."""
        return self._hash.hexdigest()


@contextlib.contextmanager
def atomic_open(path, mode="wb", digest=False):
    """Context manager yielding a binary file object whose content replaces ``path`` on success; with ``digest``, its ``sha256`` attribute
    is the hex sha256 of the content (read it after the ``with`` block)."""
    if mode != "wb":
        raise ValueError("atomic_open writes bytes: mode 'wb' only")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as err:
        raise _naming(err, path) from err
    handle = None
    try:
        with os.fdopen(fd, mode) as raw:
            handle = _Writer(raw, digest)
            yield handle
            handle.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if handle is not None and handle.error is not None and not isinstance(err, OSError):
            err = handle.error  # a disk-full error that the writer's library wrapped
        if isinstance(err, OSError):
            raise _naming(err, path) from None
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
