"""One kind of error for bad input, and the wrapper that turns it into a one-line exit.

Every check on user input raises ``UsageError(message)`` where the message names the
problem and the fix. The command-line entry points run under ``exit_on_usage_error``,
which prints ``error: <message>`` to stderr and exits with status 2, no traceback.
"""
import argparse
import functools
import sys


class UsageError(Exception):
    """Bad input (flags, files, environment) that the user can fix; never a bug."""


def exit_on_usage_error(main):
    """Decorate a CLI ``main`` so a UsageError becomes one line on stderr and exit code 2, and
    a Ctrl-C one line and exit code 130, not a traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C outside the epoch loop (loading data, the last write)
            print("interrupted; every file already written is complete (a training run "
                  "continues with --resume)", file=sys.stderr)
            sys.exit(130)

    return wrapped


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``error: ...``) and exit code 2, like UsageError."""

    def error(self, message):
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)
