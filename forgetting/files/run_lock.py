"""One process trains a run at a time: an exclusive ``fcntl.flock`` on ``<save_fname>__lock``.

Two sweeps, or a sweep and a hand-run, must never write the same run's files at once. The
training scripts call ``hold_run_lock`` once the output directory exists and before any file
of the run is written; a second process then stops with one line naming the run and the
holder's pid and host and exit status 75 (``RunHeld``; EX_TEMPFAIL of sysexits.h: not bad
input, the same command can succeed later), which sweep.py tells apart from bad input (2) and
waits for (``is_held``). The kernel releases a flock when the holder's last descriptor closes,
so a killed holder (kill -9, a lost node) leaves no stale lock: at most the file, which the
next holder takes over.

A holder that ends normally removes the file, so a finished run's directory holds the same
files as before locks existed. Removing a lock file is only safe with the inode check in
``_acquire``: a process that opened the file just before it was unlinked holds a lock on an
orphaned inode, notices that the path now names another file (or none) and tries again.

The lock works on local file systems and on NFS (v4, or v3 with lockd), where flock becomes
a POSIX lock; the file carries ``pid host`` so the message can name a holder on another node.
"""
import errno
import fcntl
import os
import socket

from forgetting.errors import UsageError
from forgetting.files.naming import lock_path
from forgetting.files.regular import open_regular

_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class RunHeld(UsageError):
    """Another process holds the run's lock: one ``error:`` line like bad input, but exit 75,
    since the same command may succeed once the holder is done."""

    exit_status = 75


class RunLock:
    """An acquired lock on one run, a context manager: leaving the block (returning, an
    exception, ``sys.exit`` after SIGINT/SIGTERM) removes the file and unlocks."""

    def __init__(self, path, fd):
        self.path, self.fd = path, fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: see the module docstring
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _holder(path):
    """'pid P on host H' from the lock file, or a placeholder while it is being written."""
    try:
        with open_regular(path, "r") as handle:
            pid, host = handle.read().split()
        return f"pid {int(pid)} on host {host}"
    except (OSError, ValueError):
        return "a process that has not written its pid yet"


def _acquire(path):
    """The fd of ``path``, exclusively flocked, or None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # umask applies, as to every run file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in _HELD:
                return None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: try again


def hold_run_lock(output_dir, fname):
    """The lock of run ``fname`` in ``output_dir``, to hold in a ``with`` block around the
    run's work, or RunHeld naming the holder. The kernel releases it on kill -9."""
    path = lock_path(output_dir, fname)
    try:
        fd = _acquire(path)
    except OSError as err:
        raise UsageError(f"could not lock the run at {path} ({err.strerror or err}); check that "
                         "--output_dir is writable and its file system supports locks") from None
    if fd is None:
        raise RunHeld(f"run {fname} in {output_dir} is being trained by {_holder(path)}; "
                      "wait for it to finish or stop it, then run again (with --resume)")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError:  # a full disk: the lock holds all the same, only the message is vaguer
        pass
    return RunLock(path, fd)


def is_held(output_dir, fname):
    """Whether a process holds the lock of run ``fname`` now; creates nothing. For sweep.py,
    which waits for runs held elsewhere: it probes with a non-blocking flock that it drops at
    once, so a process that tries to take the lock in those microseconds is refused as if
    the run were held (a sweep's run then waits as well). False when the probe itself fails
    (permissions): the run, started again, reports what is wrong."""
    try:
        fd = os.open(lock_path(output_dir, fname), os.O_RDWR)
    except OSError:  # none: never locked, or its last holder ended and removed it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in _HELD
    finally:
        os.close(fd)  # drops the probe's lock, if it got it
    return False
