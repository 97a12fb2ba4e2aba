"""One kind of error for bad input, and the wrapper that turns it into a one-line exit.

Every check on user input raises ``UsageError(message)`` where the message names the
problem and the fix. The command-line entry points run under ``exit_on_usage_error``,
which prints ``error: <message>`` to stderr and exits with status 2, no traceback (a
subclass may name another ``exit_status``: forgetting/files/run_lock.py ``RunHeld``, 75).
"""
import argparse
import functools
import os
import select
import sys


class UsageError(Exception):
    """Bad input (flags, files, environment) that the user can fix; never a bug."""

    exit_status = 2


# A closed pipe (`script | head`): the exit status of a program killed by SIGPIPE, as the
# shell reports `seq 1 100000 | head`'s.
CLOSED_PIPE_EXIT = 128 + 13


def exit_on_usage_error(main):
    """Decorate a CLI ``main`` so a UsageError becomes one line on stderr and its exit status
    (2), a Ctrl-C one line and exit code 130, and a reader that closed stdout (``| head``) a
    quiet exit (CLOSED_PIPE_EXIT), not a traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            result = main(*args, **kwargs)
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
            return result
        except BrokenPipeError:
            if not _stdout_reader_gone():
                raise  # another pipe: a bug to see, not the user's `| head`
            # Whatever is still buffered cannot be written: point stdout at /dev/null so that
            # Python's flush at exit does not report the closed pipe again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            sys.exit(CLOSED_PIPE_EXIT)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_status)
        except KeyboardInterrupt:  # Ctrl-C outside the epoch loop (loading data, the last write)
            print("interrupted; every file already written is complete (a training run "
                  "continues with --resume)", file=sys.stderr)
            sys.exit(130)

    return wrapped


def _stdout_reader_gone():
    """True when stdout is a pipe whose reading end is closed (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no fd (replaced stdout), or no poll
        return False


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``error: ...``) and exit code 2, like UsageError;
    and ``options``, {'--flag': its Action} over every option string, for sweep.py's checks of
    a grid. argparse keeps that table private, so it is built here from the public API: the
    Action that ``add_argument`` returns, on the parser and on its groups."""

    def __init__(self, *args, **kwargs):
        self.options = {}
        super().__init__(*args, **kwargs)  # adds --help through add_argument: options exists

    def _remember(self, action):
        for option in action.option_strings:
            self.options[option] = action
        return action

    def add_argument(self, *args, **kwargs):
        return self._remember(super().add_argument(*args, **kwargs))

    def _recording(self, group):
        add = group.add_argument
        group.add_argument = lambda *args, **kwargs: self._remember(add(*args, **kwargs))
        return group

    def add_argument_group(self, *args, **kwargs):
        return self._recording(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, *args, **kwargs):
        return self._recording(super().add_mutually_exclusive_group(*args, **kwargs))

    def error(self, message):
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)
