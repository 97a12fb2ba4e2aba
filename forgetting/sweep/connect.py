"""Start the sweep's own Ray, or join the cluster at ``--address``: never someone else's by
accident, never a wait without end.

Without ``--address`` the sweep starts a local Ray of its own (``address="local"``) whatever
else runs on the machine. A plain ``ray.init()`` would instead join the cluster that
``RAY_ADDRESS`` or the host's last ``ray start`` names (another user's, another project's) and
then refuse the sweep's CPU count; ``--address auto`` is how a user asks for that cluster.

Joining is bounded by ``--connect_timeout``: first a TCP probe of the address Ray will dial
(Ray replaces 127.0.0.1 and localhost by the host's network address) until it answers, then
``ray.init`` under ``_guard``. Ray's client retries inside C++ for many minutes, during which
Python runs no signal handler, so the guard watches the signal wakeup fd from a thread:
SIGINT, SIGTERM or the deadline end the process at once with one line. Nothing has been
started or written by then.
"""
import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time

from forgetting.errors import UsageError

QUIET = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
CONNECT_TIMEOUT_S = 60.0  # sweep.py --connect_timeout's default
PROBE_EVERY_S = 0.5     # between TCP probes of a cluster that does not answer yet
USAGE_EXIT, INTERRUPTED_EXIT = 2, 130
_STOP = b"\0"           # written to the wakeup pipe by the guard itself; signals are 1..64


def start_ray(address, workers, connect_timeout):
    """The ``ray`` module, initialised: joined to ``address`` (HOST:PORT or 'auto') within
    ``connect_timeout`` seconds, or, when ``address`` is None, a new local Ray with
    ``workers`` CPUs (None: the machine's cores)."""
    if address is None:
        # Ray's own choice for a new local cluster (token authentication), made explicitly so
        # that Ray does not warn about having made it; read when Ray is imported. A mode the
        # user set is kept.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray  # only a sweep that runs something pays for importing Ray

    if address is None:
        with _guard("starting the sweep's local Ray", deadline=None, timeout_message=None):
            ray.init(address="local", num_cpus=workers or os.cpu_count(), **QUIET)
        return ray

    deadline = time.monotonic() + connect_timeout
    target = bootstrap_address(address)
    said = address if target == address else f"{address} (Ray dials it as {target})"
    wait_for_listener(target, deadline,
                      f"nothing answers at {said} after {connect_timeout:g} s; start the cluster "
                      "with ray start --head and give the address it prints, or wait longer "
                      "with --connect_timeout")
    with _guard(f"joining the Ray cluster at {target}", deadline,
                f"something answers at {said} but no Ray cluster joined within "
                f"{connect_timeout:g} s; give the address ray start --head printed, or wait "
                f"longer with --connect_timeout{_auth_hint()}"):
        try:
            # the address as given: Ray treats 'auto' apart (it sends a local token to it)
            ray.init(address=address, **QUIET)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UsageError(f"could not join the Ray cluster at {said} ({err}); start it with "
                             f"ray start --head, or drop --address{_auth_hint()}") from None
    return ray


def _auth_hint():
    """What to try when a join fails without token authentication: recent Rays turn it on for
    every ``ray start --head`` but never send the token to an address given explicitly."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return ("; if the cluster uses token authentication (ray start's default), set "
            "RAY_AUTH_MODE=token, with its token in ~/.ray/auth_token or RAY_AUTH_TOKEN")


def bootstrap_address(address):
    """HOST:PORT that ``ray.init(address=address)`` connects to ('auto': RAY_ADDRESS or the
    host's last ``ray start``), or a UsageError."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        target = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as err:
        raise UsageError(f"--address {address}: {err}") from None
    if target is None:  # 'local': a new cluster, which is what leaving out --address does
        raise UsageError(f"--address {address} names no running cluster; leave --address out "
                         "for a local Ray")
    return target


def wait_for_listener(target, deadline, message):
    """Return once a TCP connection to ``target`` (HOST:PORT) succeeds; a UsageError with
    ``message`` when none has by ``deadline`` (time.monotonic). Interruptible: plain sockets."""
    host, _, port = target.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=max(min(left, 2.0), 0.1)):
                return
        except OSError:
            pass
        if deadline - time.monotonic() <= 0:
            raise UsageError(message)
        time.sleep(min(PROBE_EVERY_S, max(deadline - time.monotonic(), 0)))


@contextlib.contextmanager
def _guard(doing, deadline, timeout_message):
    """Run the block with SIGINT and SIGTERM ending the process (exit 130), and, with a
    ``deadline`` (time.monotonic), its end ending it too (``timeout_message``, exit 2).

    Python queues a signal's handler until the main thread returns from C code; the signal
    number is also written to the wakeup fd at once, which a thread here reads.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd)

    def watch():
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                _exit(f"error: {timeout_message}", USAGE_EXIT)
            for number in os.read(read_fd, 64):
                if number == _STOP[0]:
                    return
                if number in (signal.SIGINT, signal.SIGTERM):
                    _exit(f"interrupted while {doing}; nothing was started", INTERRUPTED_EXIT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.write(write_fd, _STOP)
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)


def _exit(line, code):
    """End the process from the watcher thread: the main thread is inside Ray's C++ and would
    not see an exception (Ray's own processes die with it, as they share its fate)."""
    print(line, file=sys.stderr, flush=True)
    os._exit(code)
