"""Run a plan's steps in order, skipping the finished ones.

- A sweep is finished when every run of its grid is (the sweep's own plan:
  forgetting/sweep/plan.py reads each run's record, as ``sweep.py`` does before starting
  anything); otherwise sweep.py runs, and itself skips the finished runs and continues the
  others with --resume.
- Any other step (ordering, table, figure) is finished when each of its outputs exists and is
  at least as new as every file of its inputs (directories: every file below them); so a
  sorting file is redone after its runs changed, and the figure after it.

A figure's output is kept in its log beside it, where the comparison table reads its measured
lines, also when the figure is skipped. ``execute`` is what runs a step (a child process,
from the repository's directory); tests give their own.
"""
import contextlib
import os
import subprocess
import sys

from forgetting.files import atomic
from forgetting.paper.commands import repo_path

REPO = repo_path()


class StepFailed(Exception):
    def __init__(self, step, returncode):
        super().__init__(f"{step.line()} exited with status {returncode}")
        self.step, self.returncode = step, returncode


def _newest(path):
    """The newest modification time of the file ``path`` or of the files below it; None when
    there is none."""
    if os.path.isfile(path):
        return os.path.getmtime(path)
    times = [os.path.getmtime(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names]
    return max(times) if times else None


def outputs_current(step, root=REPO):
    """Every output of ``step`` exists and is no older than any file of its inputs."""
    outputs = [os.path.join(root, path) for path in step.outputs]
    if not outputs or not all(os.path.isfile(path) for path in outputs):
        return False
    made = min(os.path.getmtime(path) for path in outputs)
    for path in step.inputs:
        newest = _newest(os.path.join(root, path))
        if newest is None or newest > made:
            return False
    return True


@contextlib.contextmanager
def _in_directory(path):
    """contextlib.chdir, which Python 3.9 and 3.10 lack."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def sweep_finished(step, root=REPO):
    """Every run of the sweep ``step`` has finished its epochs (its record says so). A grid
    the plan refuses (a flag its script lacks, ...) is not finished: sweep.py says why."""
    from forgetting.errors import UsageError
    from forgetting.sweep.grid import expand, parse_grid
    from forgetting.sweep.plan import load_script, plan_runs

    argv = list(step.argv)
    cut = argv.index("--")
    grid = argv[argv.index("--grid") + 1:cut] if "--grid" in argv[:cut] else []
    script, fixed = argv[cut + 1], argv[cut + 2:]
    try:
        with _in_directory(root):  # the commands' paths are the repository's
            runs = plan_runs(load_script(script), expand(script, fixed, parse_grid(grid)))
    except UsageError:
        return False
    return all(run.finished for run in runs)


def finished(step, root=REPO):
    return sweep_finished(step, root) if step.kind == "sweep" else outputs_current(step, root)


def _wait(child):
    """The exit status of ``child``. A Ctrl-C reaches the child too (same terminal): wait for
    it to save its finished epochs and stop (sweep.py exits 130), never kill it midway."""
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def execute(step, root=REPO):
    """Run ``step`` as a child process from ``root``; a figure's output is shown and kept in
    its log. Its exit status."""
    command = [sys.executable, *step.argv]
    if step.log is None:
        return _wait(subprocess.Popen(command, cwd=root))
    child = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        output = child.stdout.read()
    except KeyboardInterrupt:
        output = ""
    returncode = _wait(child)
    print(output, end="", flush=True)
    if returncode == 0:
        atomic.write_text(os.path.join(root, step.log), output)
    return returncode


def _say(line):
    print(line, flush=True)  # before the child's own output, also into a file


def run_steps(steps, dry_run=False, say=_say, is_finished=finished, run=execute):
    """Run the unfinished ``steps`` in order (raising StepFailed at the first that fails);
    with ``dry_run`` print every command instead, a finished one as a comment. The steps run."""
    ran = []
    for step in steps:
        done = is_finished(step)
        if dry_run:
            say(f"# finished, not run: {step.line()}" if done else step.line())
            continue
        if done:
            say(f"finished, skipped: {step.line()}")
            continue
        say(f"running: {step.line()}")
        returncode = run(step)
        if returncode != 0:
            raise StepFailed(step, returncode)
        ran.append(step)
    return ran
