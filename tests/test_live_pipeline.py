"""The live loop: newest-frame processing, pacing by repeats, reconnects, shutdown.

Bounds are deliberately generous (counts and ratios, not tight timings): the machine is
shared and slow.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import InvertEngine, NumberedSource, frame_number

from engines.errors import KdcamError
from vcam.live.pipeline import run_loop
from vcam.live.controls.state import Controls
from vcam.live.mailbox import LatestFrame
from vcam.live.sender import PacedSender, PhaseLock
from vcam.live.stats import LiveStats

SHAPE = (48, 64, 3)


class SentLog:
    """An observer: (pos, fresh, number decoded from the sent pixels) per sent frame."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, bool, int]] = []

    def __call__(self, slot, fresh: bool) -> None:
        self.rows.append((slot.pos, fresh, 255 - frame_number(slot.frame)))


def _loop(source, engine, *, fps=30.0, factory=None, duration=None, max_frames=None, observers=()):
    stats = LiveStats(engine=engine.describe())
    summary = run_loop(
        source=source,
        factory=factory or (lambda: (_ for _ in ()).throw(AssertionError("no reopen expected"))),
        engine=engine,
        shape=SHAPE,
        fps=fps,
        controls=Controls(strength=1.0),
        stats=stats,
        stop=threading.Event(),
        observers=observers,
        duration=duration,
        max_frames=max_frames,
        report_every=None,
        log=lambda _line: None,
    )
    return summary


def test_slow_engine_processes_the_newest_frames_and_the_sender_repeats_to_hold_fps():
    engine = InvertEngine(delay=0.08)  # about 12 fps of processing
    sent = SentLog()
    seconds = 2.0
    summary = _loop(NumberedSource(shape=SHAPE, fps=60), engine, fps=30, duration=seconds, observers=[sent])

    numbers = engine.numbers
    gaps = np.diff(numbers)
    assert np.all(gaps > 0), "frames are processed in capture order, never twice"
    # A queue would process every frame (gap 1); a newest-frame mailbox skips the stale ones.
    assert np.median(gaps) >= 3, f"stale frames were processed: {numbers}"
    assert summary["captured"] > 2 * summary["processed"]

    # The sender keeps the target rate by repeating the last processed frame.
    assert 0.7 * 30 * seconds <= summary["sent"] <= 1.2 * 30 * seconds + 1, summary
    assert summary["repeated"] >= summary["sent"] // 3
    # Latency stays bounded: the newest frame is always what gets processed.
    assert summary["latency_p95_ms"] < 500, summary

    # Every sent frame is the engine's output for the frame it claims to come from, and a
    # repeat is the same frame as the send before it.
    for i, (pos, fresh, number) in enumerate(sent.rows):
        assert number == pos % 256
        if not fresh:
            assert pos == sent.rows[i - 1][0]


def test_fast_engine_sends_mostly_fresh_frames():
    summary = _loop(NumberedSource(shape=SHAPE, fps=30), InvertEngine(), fps=30, max_frames=45)
    assert summary["sent"] == 45
    assert summary["repeated"] <= 20, summary  # generous: the CI machine may be busy


def test_a_finite_source_ends_the_run_after_its_last_frame():
    sent = SentLog()
    summary = _loop(
        NumberedSource(shape=SHAPE, fps=100, fail_after=5, finite=True), InvertEngine(), fps=100, observers=[sent]
    )
    assert summary["captured"] == 5
    assert sent.rows[-1][0] == 4, "the file's last frame is processed and sent before the run ends"


def test_a_lost_source_is_reopened_while_the_last_frame_keeps_going_out():
    reopened = []

    def factory():
        if not reopened:
            reopened.append("failed")
            raise KdcamError("camera 0 is gone")
        source = NumberedSource(shape=SHAPE, fps=60, start=200)
        reopened.append(source)
        return source

    sent = SentLog()
    summary = _loop(
        NumberedSource(shape=SHAPE, fps=60, fail_after=10),
        InvertEngine(),
        fps=30,
        factory=factory,
        duration=1.5,
        observers=[sent],
    )
    positions = [pos for pos, _, _ in sent.rows]
    assert summary["reconnects"] == 1
    assert any(p >= 200 for p in positions), "frames of the reopened source were sent"
    # During the outage the sender repeated the last frame (pos 9) instead of stopping.
    assert positions.count(9) >= 2
    assert summary["sent"] >= 0.6 * 30 * 1.5


def test_an_engine_error_stops_every_stage_and_is_raised():
    class Broken(InvertEngine):
        def sharpen(self, frame, *, strength=1.0, out=None):
            raise KdcamError("engine blew up")

    before = threading.active_count()
    with pytest.raises(KdcamError, match="engine blew up"):
        _loop(NumberedSource(shape=SHAPE, fps=60), Broken(), duration=5)
    time.sleep(0.2)
    assert threading.active_count() <= before


def test_phase_lock_moves_the_grid_toward_the_arrivals_within_bounds():
    lock = PhaseLock(fps=10, margin_s=0.002)  # 10 ticks per window, period 100 ms
    shifts = [lock.tick(0.020) for _ in range(10)]  # fresh frames waited 20 ms each
    assert shifts[:-1] == [0.0] * 9
    assert shifts[-1] == pytest.approx(0.018)  # pull the ticks 18 ms earlier
    # Frames that just missed their tick (waited ~a whole period) push the grid later.
    shifts = [lock.tick(0.095) for _ in range(10)]
    assert shifts[-1] == pytest.approx(-0.007)
    # Far off: capped at a quarter period per window.
    shifts = [lock.tick(0.049) for _ in range(10)]
    assert shifts[-1] == pytest.approx(0.025)
    # A slower source at a steady phase (every third tick) moves it the same way.
    shifts = [lock.tick(0.020 if i % 3 == 0 else None) for i in range(10)]
    assert shifts[-1] == pytest.approx(0.018)
    # A slower source whose frames land all over the period does not move it.
    shifts = [lock.tick((0.010, 0.050, 0.090, 0.030)[i // 3] if i % 3 == 0 else None) for i in range(10)]
    assert shifts[-1] == 0.0


@pytest.mark.parametrize("being_made, expected", [(True, [(1, True), (2, True)]), (False, [(1, True), (1, False)])])
def test_a_frame_being_made_at_its_tick_goes_out_a_little_late_not_a_period_late(being_made, expected):
    """Processing that runs a little past the tick: the sender waits for the frame being
    made (up to a third of a period) instead of repeating the last one and sending the new
    one a whole period later. A tick with nothing in the making repeats at once."""
    box = LatestFrame(shape=SHAPE)
    sends, first_sent = [], threading.Event()

    def observe(slot, fresh):
        sends.append((slot.seq, fresh))
        first_sent.set()

    def writer():
        box.writable().seq = 1
        box.publish()
        first_sent.wait(5)
        if being_made:
            box.making()
        time.sleep(0.5 + 0.06)  # fps 2: lands 60 ms after the second tick (the grace is 167 ms)
        slot = box.writable()
        slot.seq, slot.t_ready = 2, time.perf_counter()
        box.publish()

    thread = threading.Thread(target=writer)
    thread.start()
    PacedSender(fps=2, sinks=(), stats=LiveStats(), observers=[observe]).run(
        mailbox=box, stop=threading.Event(), max_frames=2
    )
    thread.join()
    assert sends == expected


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_stops_cleanly_and_finalizes_the_recording(tmp_path, signum):
    """A real ``kdcam start`` process, stopped by a signal mid-run (Ctrl-C, a service manager,
    a closed terminal), finishes cleanly: its recording renamed into place and playable, the
    summary printed, and the exit code a shell expects (130, 143, 129)."""
    repo = Path(__file__).resolve().parents[1]
    output = tmp_path / "rec.avi"
    cmd = [
        sys.executable,
        "-m",
        "vcam.cli",
        "start",
        "--device",
        str(repo / "samples" / "vtest_clip.avi"),
        "--loop",
        "--no-vcam",
        "--output",
        str(output),
        "--engine",
        "onnxruntime",
        "--fps",
        "10",
    ]
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:  # the first live stats line means frames are flowing
            lines.append(line)
            if line.startswith("capture"):
                break
        proc.send_signal(signum)
        out, rest = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines += [rest, out]
    assert proc.returncode == 128 + signum, "".join(lines)[-2000:]
    assert output.is_file() and not list(tmp_path.glob(".rec.avi.partial-*")), "renamed into place"
    summary = re.search(r"kdcam: .* sent (\d+) \(", "".join(lines))
    assert summary, "".join(lines)[-2000:]
    sent = int(summary.group(1))
    cap = cv2.VideoCapture(str(output))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == sent > 0, "the recording plays, one frame per send"


def test_the_summary_says_how_long_after_the_start_the_first_frame_went_out():
    import subprocess
    import sys

    from vcam.live.stats import format_summary, process_age_s

    before = process_age_s()
    summary = _loop(NumberedSource(shape=SHAPE, fps=60), InvertEngine(), fps=30, max_frames=5)
    after = process_age_s()
    assert before <= summary["first_frame_s"] <= after, "measured from this process's start"
    # a process that has lived about 0.5 s says so (to its 10 ms clock ticks, not psutil's whole seconds)
    age = subprocess.run([sys.executable, "-c", "import time; t0 = time.monotonic(); from vcam.live.stats import "
                          "process_age_s; time.sleep(0.5); print(process_age_s(), time.monotonic() - t0)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert float(age[1]) <= float(age[0]) <= float(age[1]) + 30, "at least the time it slept, from its start"
    assert f"first frame sent {summary['first_frame_s']:.2f} s after the command started" in format_summary(summary)
