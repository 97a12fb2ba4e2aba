"""Progress within an epoch, on stderr, without a host sync per batch.

A CIFAR epoch on a CPU takes half an hour; the epoch's summary line comes only at its end.
While it runs:

* stderr is a terminal: a tqdm bar (batches done of the epoch), its loss and accuracy
  refreshed about every ``TTY_READ_S`` seconds;
* otherwise (a log file, a pipe): at most one line every ``interval`` seconds (--progress_every,
  30 by default), in the original's format::

      | Epoch [  0/200] Iter[ 40/391]		Loss: 2.0312 Acc@1: 24.121%

  with the 0-based epoch, the batches done, the mean loss and the accuracy of the epoch so far
  (the original rewrote this line after a '\\r' every batch, with the last batch's loss).

Why it costs nothing per batch: the loss and accuracy are not tracked batch by batch. Reading
them is a reduction over the recorder's buffers of the batches since the last reading, then one
``.tolist()`` (the only host sync), done only when the clock says a display is due. Per batch
there is a clock read (and the bar's counter).
"""
import sys
import time

TTY_READ_S = 1.0   # a terminal bar's loss/accuracy: one host sync about every second
PLAIN_LINE = "| Epoch [%3d/%3d] Iter[%3d/%3d]\t\tLoss: %.4f Acc@1: %.3f%%"


class EpochProgress:
    """Shows one epoch's progress; ``batch_done(k)`` after the k-th batch, ``close()`` (or the
    end of a ``with`` block) at the end.

    ``recorder``: the epoch's ``EpochRecorder`` (read for the loss and accuracy so far).
    ``interval``: seconds between plain lines; 0 or less shows nothing, not even the bar.
    ``stream``: where to show it (default ``sys.stderr``); ``clock``: seconds, for tests.
    """

    def __init__(self, recorder, epoch, epochs, n_batches, interval, stream=None, clock=time.monotonic):
        self.recorder, self.epoch, self.epochs, self.n_batches = recorder, epoch, epochs, n_batches
        self.stream = sys.stderr if stream is None else stream
        self.clock = clock
        self.enabled = interval > 0
        self.bar = None
        if self.enabled and is_terminal(self.stream):
            from tqdm import tqdm   # only when a terminal will show it
            self.bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                            file=self.stream, leave=False, dynamic_ncols=True)
        self.every = TTY_READ_S if self.bar is not None else interval
        self.due = clock() + self.every
        self.read_up_to = 0     # presentations already summed into self.sums
        self.sums = None        # device tensor: [loss sum, correct count] so far

    def batch_done(self, batches_done):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        now = self.clock()
        if now < self.due:
            return
        self.due = now + self.every
        loss, acc = self._read(batches_done)
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} acc {acc:.3f}%")
        else:
            print(PLAIN_LINE % (self.epoch, self.epochs, batches_done, self.n_batches, loss, acc),
                  file=self.stream, flush=True)

    def _read(self, batches_done):
        """(mean loss, accuracy in percent) of the epoch's first ``batches_done`` batches."""
        end = self.recorder.presented(batches_done)
        part = self.recorder.totals(self.read_up_to, end)
        self.sums = part if self.sums is None else self.sums + part
        self.read_up_to = end
        loss_sum, correct = self.sums.tolist()   # the one host sync
        return loss_sum / end, 100.0 * correct / end

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def is_terminal(stream):
    """True when ``stream`` is a terminal (a bar is drawn there; elsewhere, lines)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # no isatty, or a closed stream
        return False
