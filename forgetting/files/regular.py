"""Refuse a project file that is not a regular file, before anything reads it.

A FIFO (or a socket, a character device such as /dev/zero, a directory) named like a stats,
sorting, resume or log file would make a reader block forever on ``open`` or read without
end. Every reader of a project file goes through here first:

* ``open_regular(path, mode)`` opens without blocking (``O_NONBLOCK``: opening a FIFO with no
  writer returns at once), checks the open descriptor with ``fstat`` (so the path cannot be
  swapped between the check and the read), and hands back an ordinary blocking file object;
* ``require_regular_file(path)`` is the same check by ``stat``, for code that lists files
  for others to read (``run_selection.find_runs``: the reading tools refuse a FIFO before
  loading any run) or must hand a path to a library; a window remains between check and
  open there, which only someone replacing the file on purpose could use.

Both raise ``NotRegularFile`` (a ``UsageError`` and a ``ValueError``, so the command-line
scripts print it as one ``error:`` line and the readers that report damaged files as
ValueError keep doing so) naming the path and what it is. A missing or unreadable path
raises the usual ``OSError`` (``FileNotFoundError``, ``PermissionError``), untouched, so
callers keep their own handling of those.
"""
import os
import stat

from forgetting.errors import UsageError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


class NotRegularFile(UsageError, ValueError):
    """A path that exists but is not a regular file (message: the path, what it is, the fix)."""


def _check(path, mode):
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise NotRegularFile(f"{path} is {kind}, not a regular file; refusing to read it "
                             "(give the path of the file itself)")


def require_regular_file(path):
    """Raise ``NotRegularFile`` unless ``path`` (symbolic links followed) is a regular file."""
    _check(path, os.stat(path).st_mode)


def open_regular(path, mode="rb"):
    """``open(path, mode)`` for reading (``'rb'`` or ``'r'``), refusing a non-regular file
    without blocking on it."""
    if mode not in ("rb", "r"):
        raise ValueError(f"open_regular reads only ('rb' or 'r'), not {mode!r}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise
