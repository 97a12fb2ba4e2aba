"""Nothing replaced silently: a run started again without ``--resume`` first moves the earlier
run's files under ``<output_dir>/replaced/<save_fname>/<UTC time>/`` (docs/files.md).

The original overwrote them; a finished run's statistics are too costly to lose to a command
recalled from the shell history without ``--resume``. Moving is a rename within the output
directory's file system: no copy, no extra space, and the earlier files stay complete.
"""
import datetime
import os

from forgetting.files import atomic
from forgetting.files.naming import REPLACED_DIR


def make_room(paths, output_dir, fname, resume, say):
    """Before a run writes anything (holding its lock): unless it continues from its resume
    state (``resume`` and the state exists), move the files of an earlier run of the same
    name aside (``set_aside``)."""
    if resume and os.path.exists(paths.resume_state):
        return None
    return set_aside(paths, output_dir, fname, say)


def set_aside(paths, output_dir, fname, say):
    """Move every file of the run ``fname`` now on disk (``paths``: its ``RunPaths``) to a new
    folder below ``<output_dir>/replaced/<fname>/``; say where in one line. Returns that
    folder, or None when the run had no files. Call it holding the run's lock."""
    for path in paths.written_by_training() + paths.written_once():
        atomic.remove_stale_temps(path)  # what a kill -9 left is no file of a run
    present = [p for p in paths.all_files() if os.path.lexists(p)]
    if not present:
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = os.path.join(output_dir, REPLACED_DIR, fname, stamp)
    os.makedirs(folder)
    for path in present:
        os.replace(path, os.path.join(folder, os.path.basename(path)))
    atomic.fsync_dir(folder)
    for directory in {os.path.dirname(os.path.abspath(p)) for p in present}:
        atomic.fsync_dir(directory)
    say(f"moved the earlier run's {len(present)} files to {folder} (to continue a run instead, "
        "add --resume)")
    return folder
