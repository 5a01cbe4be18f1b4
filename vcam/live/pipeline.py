"""The live loop's stages: capture -> sharpen -> send, and their shutdown.

Three threads, each with one job, joined by one-slot mailboxes (``LatestFrame``):

- capture (``CaptureThread``): reads the source, keeps only the newest frame;
- processing (``ProcessThread``): sharpens the newest captured frame into one of three
  preallocated output slots (``engine.sharpen(..., out=slot)``), so the sender can hold
  the last processed frame while the next one is made;
- sending (``PacedSender``, on the calling thread): one frame per tick at the target fps,
  repeating the last frame when processing falls behind.

OpenCV runs on ``LIVE_THREADS`` threads meanwhile: the stages already run side by side, and its
thread pool cost more CPU than it saved on the loop's 1 ms calls (a 720p resize 1.97 -> 1.40 ms
of CPU, a grey conversion 0.73 -> 0.27 ms, on a 2-core AMD EPYC).

Setting the stop event ends every stage normally; ``vcam.live.session`` (``kdcam start``) opens what
the stages run on and sets it on Ctrl-C, SIGTERM, SIGHUP or the ``q`` key.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from engines.foundation.values import LIVE_THREADS
from vcam.live.capture import CaptureThread
from vcam.live.mailbox import FrameSlot, LatestFrame
from vcam.live.on_demand import Demand
from vcam.live.profile import StageProfile
from vcam.live.sources import FrameSource, SourceFactory
from vcam.live.stage import StageThread, default_log
from vcam.live.controls.state import Controls
from vcam.live.sender import Observer, PacedSender, Sink
from vcam.live.controls.split_view import draw_split
from vcam.live.stats import LiveStats

JOIN_TIMEOUT_S = 5.0


class ProcessThread(StageThread):
    """Sharpens the newest captured frame, drops the ones it had no time for.

    Reads the controls once per frame (effect, strength, split view) and asks
    ``current_engine()`` for the engine each time round, so a switched model takes over
    between two frames (``vcam.live.engine_switch``).
    """

    def __init__(
        self,
        *,
        current_engine: Callable[[], object],
        inbox: LatestFrame,
        outbox: LatestFrame,
        controls: Controls,
        stats: LiveStats,
        stop: threading.Event,
        clock: Callable[[], float] = time.perf_counter,
        wants_before: Callable[[], bool] = lambda: True,
        profile: StageProfile | None = None,
    ) -> None:
        super().__init__(name="kdcam-process", stop=stop, output=outbox, profile=profile)
        self._wants_before = wants_before
        self._current_engine = current_engine
        self._inbox = inbox
        self._outbox = outbox
        self._controls = controls
        self._stats = stats
        self._clock = clock

    def _work(self) -> None:
        inbox, outbox, controls, stats, clock = self._inbox, self._outbox, self._controls, self._stats, self._clock
        keep_before = outbox.writable().before is not None  # only a preview or an open panel needs the input
        wants_before = self._wants_before
        profile, cpu = self._profile, time.thread_time
        profiled, own_split = None, False
        while not self._halt.is_set():
            engine = self._current_engine()
            if profile is not None and engine is not profiled:
                profiled, own_split = engine, hasattr(engine, "profile")
                if own_split:  # a CPU engine splits its frame itself: colour conversion, network
                    engine.profile = profile.engine
            src = inbox.take(timeout=0.1)
            if src is None:
                if inbox.closed:
                    return
                continue
            outbox.making()
            dst = outbox.writable()
            effect, strength, split = controls.effect, controls.strength, controls.split
            if effect:
                t0 = cpu()
                engine.sharpen(src.frame, strength=strength, out=dst.frame)
                if profile is not None and not own_split:  # a GPU engine: the whole call is its network
                    profile.add("network", cpu() - t0)
            else:
                np.copyto(dst.frame, src.frame)
            if split != "off":
                draw_split(dst.frame, src.frame, labels=split == "labels")
            if keep_before and wants_before():
                np.copyto(dst.before, src.frame)
            dst.seq, dst.pos, dst.t_capture = src.seq, src.pos, src.t_capture
            dst.effect, dst.strength, dst.split, dst.model = effect, strength, split, controls.model
            dst.t_ready = clock()
            outbox.publish()
            stats.processed += 1


class StatsReporter(threading.Thread):
    """Prints the live stats line every ``every`` seconds until ``done``."""

    def __init__(
        self, *, stats: LiveStats, controls: Controls, every: float, done: threading.Event, stream=None
    ) -> None:
        super().__init__(name="kdcam-stats", daemon=True)
        self._stats = stats
        self._controls = controls
        self._every = every
        self._done = done
        self._stream = stream or sys.stderr
        # On a terminal the line rewrites itself; in a log each report is its own line.
        self._tty = self._stream.isatty()

    def run(self) -> None:
        stream = self._stream
        while not self._done.wait(self._every):
            line = f"{self._stats.line()} | {self._controls.line()}"
            stream.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
            stream.flush()
        if self._tty:
            stream.write("\n")


class FrameLog:
    """Which captured frame each sent frame came from, and the controls it was made with
    (for checks and debugging)."""

    COLUMNS = ("sent", "seq", "pos", "fresh", "effect", "strength", "split", "model")

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def __call__(self, slot: FrameSlot, fresh: bool) -> None:
        self.rows.append((slot.seq, slot.pos, int(fresh), int(slot.effect), slot.strength, slot.split, slot.model))

    def write(self, path: Path) -> None:
        lines = [",".join(self.COLUMNS)] + [",".join(map(str, (i, *row))) for i, row in enumerate(self.rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_loop(
    *,
    source: FrameSource,
    factory: SourceFactory,
    engine,
    shape: tuple[int, int, int],
    fps: float,
    controls: Controls,
    current_engine: Callable[[], object] | None = None,
    stats: LiveStats,
    stop: threading.Event,
    sinks: Sequence[Sink] = (),
    observers: Sequence[Observer] = (),
    keep_before: bool | Callable[[], bool] = False,
    max_frames: int | None = None,
    duration: float | None = None,
    report_every: float | None = 1.0,
    demand: Demand | None = None,
    profile: StageProfile | None = None,
    log: Callable[[str], None] = default_log,
) -> dict:
    """Run the three stages over an opened ``source`` until stopped; returns the summary.

    ``factory`` reopens the source after a failure. ``shape`` is the published frame
    shape (``capture.output_shape``). An error in any stage stops the others and is
    re-raised here. ``current_engine`` (a switchable engine's ``current``) replaces ``engine``.
    ``keep_before``: keep each frame's input beside it (the preview's and the panel's "before"),
    always, or, as a callable, only while it says so (the panel, while a page is open).
    ``demand``: on demand, the camera is released and a still frame sent while it is idle.
    ``profile``: where each stage's CPU time goes (``kdcam bench --pipeline``).
    """
    inbox = LatestFrame(shape=shape)
    outbox = LatestFrame(shape=shape, with_before=bool(keep_before))
    capture = CaptureThread(source=source, factory=factory, mailbox=inbox, stats=stats, stop=stop, log=log,
                            demand=demand, profile=profile)
    process = ProcessThread(
        current_engine=current_engine or (lambda: engine),
        inbox=inbox,
        outbox=outbox,
        controls=controls,
        stats=stats,
        stop=stop,
        wants_before=keep_before if callable(keep_before) else lambda: True,
        profile=profile,
    )
    sender = PacedSender(fps=fps, sinks=sinks, observers=observers, stats=stats, demand=demand, profile=profile)
    stats.demand = demand
    reporting_done = threading.Event()
    reporter = (
        StatsReporter(stats=stats, controls=controls, every=report_every, done=reporting_done) if report_every else None
    )
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(LIVE_THREADS)  # the stages already run side by side; a pool per 1 ms call costs more
    stats.restart_clock()
    capture.start()
    process.start()
    if reporter is not None:
        reporter.start()
    sender_cpu = time.thread_time()
    try:
        sender.run(mailbox=outbox, stop=stop, max_frames=max_frames, duration=duration)
    finally:
        if profile is not None:
            profile.threads["kdcam-send"] = time.thread_time() - sender_cpu
        stop.set()
        inbox.close()  # wakes the processing thread if it waits for a frame
        process.join(JOIN_TIMEOUT_S)
        capture.join(JOIN_TIMEOUT_S)
        reporting_done.set()
        if reporter is not None:
            reporter.join(JOIN_TIMEOUT_S)
        cv2.setNumThreads(opencv_threads)
    for stage in (capture, process):
        if stage.error is not None:
            raise stage.error
    if capture.is_alive():
        log("kdcam: the capture thread did not stop in time (a read is stuck); the camera is released at exit")
    return stats.summary()
