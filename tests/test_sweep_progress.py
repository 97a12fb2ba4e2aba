"""The sweep's progress off a terminal: at most one line every --progress_every seconds."""
import io

from forgetting.sweep.progress import SweepProgress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_file_gets_a_line_at_most_every_interval_and_no_bar():
    clock, stream = Clock(), io.StringIO()
    progress = SweepProgress(10, 30, stream=stream, clock=clock)
    shown_at = []
    for second in range(0, 95):  # the sweep shows after every change, about once a second
        clock.now = 100.0 + second
        before = stream.getvalue().count("\n")
        progress.show(done=second // 10, skipped=1, failed=0, running=2, queued=3)
        if stream.getvalue().count("\n") > before:
            shown_at.append(second)
    progress.close()
    assert shown_at == [30, 60, 90]
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sweep: 4/10 runs ended (3 done, 1 skipped, 0 failed); 2 running, 3 queued; 30 s"
    assert "\r" not in stream.getvalue()


def test_interval_0_shows_nothing_but_messages():
    clock, stream = Clock(), io.StringIO()
    progress = SweepProgress(3, 0, stream=stream, clock=clock)
    clock.now += 1000
    progress.show(done=1, skipped=0, failed=0, running=1, queued=1)
    progress.write("stopping")
    progress.close()
    assert stream.getvalue() == "stopping\n"
