"""The run record: ``<save_fname>__run.json``, a run that describes itself (docs/files.md).

A small JSON object beside the run's stats, written atomically before the first epoch, after
every epoch's commit and when the run ends, so that every tool can read how a run was made and
how far it got with ``json`` alone (no torch, no guessing from the file name):

    {"format": 1, "script": "run_mnist.py", "save_fname": ...,
     "flags": every flag's value as parsed, defaults included,
     "epochs": intended epochs, "epochs_done": committed epochs,
     "stats_pickle_epochs": epochs the legacy stats pickle holds, "finished": bool,
     "n_train", "n_test", "train_ids_sha256", "presentations",
     "final_test_acc", "best_train_acc", "best_test_acc", "diverged_at_epoch",
     "versions": {"forgetting", "torch", "numpy", "python"}, "device", "host",
     "started", "updated", "ended",
     "sha256": {"resume_state": {"sha256", "epochs_done", "legacy_epochs"},
                "stats_pickle": {"sha256", "epochs"}}}

``finished`` is true when the run committed all its intended epochs and its stats pickle holds
them all. The resume state stays the commit point: the record is written after it, so after a
kill -9 it may trail the resume state by one epoch, never lead it. Runs written before the
record existed have none; the readers fall back to what they read before.

``sha256`` holds the checksums of the files as they were written (taken from the bytes as they
were written, never by reading them back; files/atomic.py), each with what identifies the
version it belongs to: the resume state's ``epochs_done`` and ``legacy_epochs``, the stats
pickle's epochs. The stats pickle's entry is there only while the pickle is the final one (a
run that continues drops it: its child process rewrites the pickle off the record's path).
Since the record may trail the resume state after a kill -9, a state newer than its entry
cannot be checked (``resume_state_problem``); the stats log checks itself (files/stats_log.py).

Which flags can change a run's results is decided here, once: every flag except those in
``NOT_RESULT_FLAGS`` (where the files go, how fast, what is printed, what else is saved).
"""
import datetime
import functools
import hashlib
import json
import os
import platform
import socket
import subprocess

from forgetting.errors import UsageError
from forgetting.files import atomic
from forgetting.files.regular import open_regular

FORMAT = 1
# Flags that cannot change a run's statistics: every other flag can. --epochs is left out as
# well: it says how far to go (a larger one extends a run), checked on its own.
NOT_RESULT_FLAGS = frozenset({
    "output_dir", "input_dir", "data_dir", "resume", "device", "no_cuda", "threads",
    "cpu_threads", "progress_every", "save_weights_at", "epochs", "no_extend",
    "npz", "cache_dir",   # run_images.py: where its data are (the record's "data" says which)
})
PROJECT_VERSION = "0.2.0"


def utc_now():
    """The time stamp the record uses: ISO-8601, UTC, seconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def project_version():
    """This project's version, with the git commit when it runs from a git checkout
    (``0.2.0+g0f7c252``, ``+dirty`` when files differ from it)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, timeout=5,
                                capture_output=True, text=True)
        if commit.returncode != 0:
            return PROJECT_VERSION
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               timeout=5, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError):
        return PROJECT_VERSION
    suffix = ".dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
    return f"{PROJECT_VERSION}+g{commit.stdout.strip()}{suffix}"


def versions():
    """The versions that decide a run's bytes: this project, torch, numpy, Python."""
    import numpy
    import torch

    return {"forgetting": project_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def ids_digest(train_ids):
    """sha256 of the training ids as little-endian int64, in training order."""
    import numpy as np

    return hashlib.sha256(np.asarray(train_ids, dtype="<i8").tobytes()).hexdigest()


def _json_value(value):
    """A flag value as JSON keeps it (tuples and lists as lists)."""
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def flags_of(args):
    """Every flag of a parsed ``args`` namespace, defaults included, as JSON values."""
    return {name: _json_value(value) for name, value in sorted(vars(args).items())
            if name != "cpu_threads"}


def new_record(script, save_fname, args, n_test):
    """The part of the record a training script knows before training: ``script`` is its file
    name (``run_mnist.py``), ``args`` its parsed flags. The saver fills in the rest."""
    return {"format": FORMAT, "script": script, "save_fname": save_fname,
            "flags": flags_of(args), "epochs": int(args.epochs), "epochs_done": 0,
            "stats_pickle_epochs": 0, "finished": False, "n_train": None, "n_test": int(n_test),
            "train_ids_sha256": None, "presentations": 0, "final_test_acc": None,
            "best_train_acc": None, "best_test_acc": None, "diverged_at_epoch": None,
            "versions": None, "device": None, "host": None,
            "started": None, "updated": None, "ended": None, "sha256": {}}


def state_entry(sha256, state):
    """The ``sha256`` entry of a resume state ``state`` (its plain values suffice) written
    with that digest."""
    return {"sha256": sha256, "epochs_done": state["epochs_done"],
            "legacy_epochs": state["legacy_epochs"]}


def resume_state_problem(record, state, sha256):
    """Why the resume state whose plain values are ``state`` and whose bytes hash to
    ``sha256`` is not the one ``record`` describes, or None when it is or cannot be told.

    The record is written after the state, so a state NEWER than the record's entry (more
    epochs, or the same with its stats pickle marked complete since) is one whose record a
    kill -9 or a full disk kept from being written: it cannot be checked, and passes. The
    same version with other bytes is damaged; an older one is not this run's latest."""
    entry = (record.get("sha256") or {}).get("resume_state")
    if entry is None:  # written before checksums, or before its first commit
        return None
    try:
        mine = (int(state["epochs_done"]), int(state["legacy_epochs"]))
    except (KeyError, TypeError, ValueError):
        return "damaged (its epoch counts are unreadable)"
    recorded = (entry["epochs_done"], entry["legacy_epochs"])
    if mine > recorded:
        return None
    if mine < recorded:
        return (f"older than its run record says (after epoch {mine[0]}, the record says "
                f"{recorded[0]}): restored from a copy?")
    if sha256 != entry["sha256"]:
        return "damaged (its sha256 differs from the one its run record holds)"
    return None


def pickle_problem(record, sha256_of_pickle):
    """Why the stats pickle is not the one ``record`` holds the checksum of, or None (also
    when the record holds none). ``sha256_of_pickle()`` is called only when there is one."""
    entry = (record.get("sha256") or {}).get("stats_pickle")
    if entry is None:
        return None
    if sha256_of_pickle() != entry["sha256"]:
        return "damaged (its sha256 differs from the one its run record holds)"
    return None


def file_sha256(path, chunk=1 << 22):
    """sha256 of the file at ``path`` (hex), read in 4 MiB chunks (hashlib releases the GIL
    on each: a thread can hash beside other work)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def write_record(path, record):
    """Atomically replace the record at ``path``."""
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    atomic.write_text(path, text)


def read_record(path):
    """The record at ``path`` as a dict, or None when there is none (a run written before
    records existed). ValueError when the file is not a run record."""
    try:
        with open_regular(path) as handle:  # a FIFO would block: refused (a ValueError)
            raw = handle.read(1 << 20)  # a record is a few KB; a larger file is not one
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a run record ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT \
            or not isinstance(record.get("flags"), dict):
        raise ValueError(f"{path} is not a run record of format {FORMAT}")
    return record


def result_flags(flags):
    """The flags of ``flags`` (a record's ``flags``) that can change a run's statistics.
    ``--learning_rate`` does not with ``--optimizer adam``, which ignores it (as the original)."""
    ignored = NOT_RESULT_FLAGS | ({"learning_rate"} if flags.get("optimizer") == "adam" else set())
    return {name: value for name, value in flags.items() if name not in ignored}


def check_resume_flags(recorded, current, path):
    """Refuse to resume a run whose result-changing flags differ from ``recorded`` (the
    record's ``flags``); ``current`` are this command's. Flags that one side lacks (a newer
    version's flag, or an older one's) are compared against nothing and pass. With
    --no_extend, a differing --epochs is refused too: the run is neither extended nor taken
    for finished at another length (sweep.py relies on it when the run is not its own)."""
    if current.get("no_extend") and recorded.get("epochs", current["epochs"]) != current["epochs"]:
        raise UsageError(f"--epochs is {current['epochs']} but the run in {path} was started with "
                         f"--epochs {recorded['epochs']}, and --no_extend keeps that; give --epochs "
                         f"{recorded['epochs']}, or drop --no_extend to change it (sweep.py: --extend)")
    old, new = result_flags(recorded), result_flags(current)
    for name in sorted(old.keys() & new.keys()):
        if old[name] != new[name]:
            if isinstance(old[name], bool):
                fix = f"resume {'with' if old[name] else 'without'} --{name}"
            else:
                fix = f"resume with --{name} {old[name]}"
            raise UsageError(f"--{name} is {new[name]} but the run in {path} used {old[name]}; "
                             f"{fix} or start over without --resume")


def describe_host(device):
    """``{"device", "host"}`` for the record: where this part of the run trains."""
    return {"device": str(device), "host": socket.gethostname()}

