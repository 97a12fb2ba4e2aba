"""The sweep's progress on stderr: a bar on a terminal, a line now and then anywhere else.

On a terminal, a tqdm bar of the runs ended (done, skipped or failed), with how many are
running and queued, redrawn as they change. Anywhere else (a log file, a pipe) a redrawn bar
is noise (about 150 bytes a second), so at most one line every ``interval`` seconds
(sweep.py --progress_every, 30 by default, as the training scripts), e.g.::

    sweep: 14/120 runs ended (12 done, 2 skipped, 0 failed); 2 running, 104 queued; 95 s

The final summary is sweep.py's own (``report``).
"""
import sys
import time

from forgetting.training.progress import is_terminal

PLAIN_LINE = ("sweep: {ended}/{total} runs ended ({done} done, {skipped} skipped, {failed} "
              "failed); {running} running, {queued} queued; {elapsed:.0f} s")


class SweepProgress:
    """``show(...)`` after every change (cheap: it draws only when due), ``write(line)`` for a
    message, ``close()`` at the end. ``interval`` 0 shows nothing but the messages."""

    def __init__(self, total, interval, stream=None, clock=time.monotonic):
        self.total, self.interval, self.clock = total, interval, clock
        self.stream = sys.stderr if stream is None else stream
        self.started = clock()
        self.due = self.started + interval
        self.bar = None
        if interval > 0 and is_terminal(self.stream):
            from tqdm import tqdm  # only when a terminal will show it

            self.bar = tqdm(total=total, unit="run", file=self.stream, dynamic_ncols=True)

    def show(self, done, skipped, failed, running, queued, elsewhere=0):
        counts = dict(done=done, skipped=skipped, failed=failed, running=running, queued=queued)
        ended = done + skipped + failed
        if self.bar is not None:
            self.bar.n = ended
            self.bar.set_postfix(**counts, **({"elsewhere": elsewhere} if elsewhere else {}),
                                 refresh=True)
            return
        now = self.clock()
        if self.interval <= 0 or now < self.due:
            return
        self.due = now + self.interval
        line = PLAIN_LINE.format(ended=ended, total=self.total, elapsed=now - self.started,
                                 **counts)
        if elsewhere:  # waited for: another process trains them
            line += f"; {elsewhere} running elsewhere"
        print(line, file=self.stream, flush=True)

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
