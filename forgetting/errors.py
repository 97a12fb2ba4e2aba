"""One kind of error for bad input, and the wrapper that turns it into a one-line exit.

Every check on user input raises ``UsageError(message)`` where the message names the
problem and the fix. The command-line entry points run under ``exit_on_usage_error``,
which prints ``error: <message>`` to stderr and exits with status 2, no traceback (a
subclass may name another ``exit_status``: forgetting/files/run_lock.py ``RunHeld``, 75).
"""
import argparse
import functools
import sys


class UsageError(Exception):
    """Bad input (flags, files, environment) that the user can fix; never a bug."""

    exit_status = 2


def exit_on_usage_error(main):
    """Decorate a CLI ``main`` so a UsageError becomes one line on stderr and its exit status
    (2), and a Ctrl-C one line and exit code 130, not a traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_status)
        except KeyboardInterrupt:  # Ctrl-C outside the epoch loop (loading data, the last write)
            print("interrupted; every file already written is complete (a training run "
                  "continues with --resume)", file=sys.stderr)
            sys.exit(130)

    return wrapped


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
