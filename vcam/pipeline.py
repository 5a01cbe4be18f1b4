"""The live loop: capture -> sharpen -> send (virtual camera, recording), and its shutdown.

Three threads, each with one job, joined by one-slot mailboxes (``LatestFrame``):

- capture (``CaptureThread``): reads the source, keeps only the newest frame;
- processing (``ProcessThread``): sharpens the newest captured frame into one of three
  preallocated output slots (``engine.sharpen(..., out=slot)``), so the sender can hold
  the last processed frame while the next one is made;
- sending (``PacedSender``, on the calling thread): one frame per tick at the target fps,
  repeating the last frame when processing falls behind.

Ctrl-C, SIGTERM and SIGHUP only set the stop event: every stage then ends normally, the
camera and the virtual device are released, and a recording is finalized and renamed into
place (``engines.signals``; the command then exits with 128 + the signal number).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engines.atomic import check_writable
from engines.signals import stop_on_signals
from vcam.capture import (
    CaptureThread,
    FrameSlot,
    FrameSource,
    LatestFrame,
    SourceFactory,
    StageThread,
    default_log,
    describe_source,
    output_shape,
    source_factory,
)
from vcam.config import LiveSettings
from vcam.preview import Controls, Preview, check_display
from vcam.recorder import Recording, codec_for, describe_codec
from vcam.sender import Observer, PacedSender, Sink
from vcam.stats import LiveStats, format_summary

JOIN_TIMEOUT_S = 5.0


class ProcessThread(StageThread):
    """Sharpens the newest captured frame, drops the ones it had no time for."""

    def __init__(
        self,
        *,
        engine,
        inbox: LatestFrame,
        outbox: LatestFrame,
        controls: Controls,
        stats: LiveStats,
        stop: threading.Event,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(name="kdcam-process", stop=stop, output=outbox)
        self._engine = engine
        self._inbox = inbox
        self._outbox = outbox
        self._controls = controls
        self._stats = stats
        self._clock = clock

    def _work(self) -> None:
        inbox, outbox, controls, stats, clock = self._inbox, self._outbox, self._controls, self._stats, self._clock
        sharpen = self._engine.sharpen
        keep_before = outbox.writable().before is not None  # only a preview needs the input
        while not self._halt.is_set():
            src = inbox.take(timeout=0.1)
            if src is None:
                if inbox.closed:
                    return
                continue
            dst = outbox.writable()
            if controls.effect:
                sharpen(src.frame, strength=controls.strength, out=dst.frame)
            else:
                np.copyto(dst.frame, src.frame)
            if keep_before:
                np.copyto(dst.before, src.frame)
            dst.seq, dst.pos, dst.t_capture = src.seq, src.pos, src.t_capture
            dst.t_ready = clock()
            outbox.publish()
            stats.processed += 1


class StatsReporter(threading.Thread):
    """Prints the live stats line every ``every`` seconds until ``done``."""

    def __init__(self, *, stats: LiveStats, every: float, done: threading.Event, stream=None) -> None:
        super().__init__(name="kdcam-stats", daemon=True)
        self._stats = stats
        self._every = every
        self._done = done
        self._stream = stream or sys.stderr
        # On a terminal the line rewrites itself; in a log each report is its own line.
        self._tty = self._stream.isatty()

    def run(self) -> None:
        stream = self._stream
        while not self._done.wait(self._every):
            line = self._stats.line()
            stream.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
            stream.flush()
        if self._tty:
            stream.write("\n")


class FrameLog:
    """Which captured frame each sent frame came from (for checks and debugging)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, bool]] = []

    def __call__(self, slot: FrameSlot, fresh: bool) -> None:
        self.rows.append((slot.seq, slot.pos, fresh))

    def write(self, path: Path) -> None:
        lines = ["sent,seq,pos,fresh"] + [f"{i},{seq},{pos},{int(fresh)}" for i, (seq, pos, fresh) in enumerate(self.rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def warm_up(engine, *, shape: tuple[int, int, int], strength: float) -> None:
    """First runs are several times slower (compilation, allocation): pay that before the
    first real frame so it does not show up as latency."""
    frame = np.zeros(shape, np.uint8)
    out = np.empty(shape, np.uint8)
    for _ in range(2):
        engine.sharpen(frame, strength=strength, out=out)


def run_loop(
    *,
    source: FrameSource,
    factory: SourceFactory,
    engine,
    shape: tuple[int, int, int],
    fps: float,
    controls: Controls,
    stats: LiveStats,
    stop: threading.Event,
    sinks: Sequence[Sink] = (),
    observers: Sequence[Observer] = (),
    keep_before: bool = False,
    max_frames: int | None = None,
    duration: float | None = None,
    report_every: float | None = 1.0,
    log: Callable[[str], None] = default_log,
) -> dict:
    """Run the three stages over an opened ``source`` until stopped; returns the summary.

    ``factory`` reopens the source after a failure. ``shape`` is the published frame
    shape (``capture.output_shape``). An error in any stage stops the others and is
    re-raised here.
    """
    inbox = LatestFrame(shape=shape)
    outbox = LatestFrame(shape=shape, with_before=keep_before)
    capture = CaptureThread(source=source, factory=factory, mailbox=inbox, stats=stats, stop=stop, log=log)
    process = ProcessThread(engine=engine, inbox=inbox, outbox=outbox, controls=controls, stats=stats, stop=stop)
    sender = PacedSender(fps=fps, sinks=sinks, observers=observers, stats=stats)
    reporting_done = threading.Event()
    reporter = StatsReporter(stats=stats, every=report_every, done=reporting_done) if report_every else None
    stats.restart_clock()
    capture.start()
    process.start()
    if reporter is not None:
        reporter.start()
    try:
        sender.run(mailbox=outbox, stop=stop, max_frames=max_frames, duration=duration)
    finally:
        stop.set()
        inbox.close()  # wakes the processing thread if it waits for a frame
        process.join(JOIN_TIMEOUT_S)
        capture.join(JOIN_TIMEOUT_S)
        reporting_done.set()
        if reporter is not None:
            reporter.join(JOIN_TIMEOUT_S)
    for stage in (capture, process):
        if stage.error is not None:
            raise stage.error
    if capture.is_alive():
        log("kdcam: the capture thread did not stop in time (a read is stuck); the camera is released at exit")
    return stats.summary()


def _open_vcam(stack: contextlib.ExitStack, s: LiveSettings, *, width: int, height: int, sysfs_root: Path,
               log: Callable[[str], None]) -> Sink:
    """Open the virtual camera for the run (closed with ``stack``); returns its send function."""
    from vcam.vcam_out import open_virtual_camera

    cam = stack.enter_context(open_virtual_camera(width=width, height=height, fps=s.fps, camera_name=s.camera_name,
                                                  backend=s.vcam_backend, sysfs_root=sysfs_root, log=log))
    log(f"kdcam: virtual camera {cam.device} ({cam.backend}): {width}x{height} @ {s.fps:g} fps BGR")
    return cam.send


def _open_source(stack: contextlib.ExitStack, s: LiveSettings, factory: SourceFactory, log) -> tuple:
    """The opened source (closed with ``stack`` until the capture thread takes it over) and the published shape."""
    source = factory()
    handover = {"done": False}
    stack.callback(lambda: None if handover["done"] else source.close())
    log("kdcam: " + describe_source(source.info, asked_size=s.size, asked_fps=s.fps, camera=isinstance(s.device, int)))
    return source, output_shape(source.info, s.size), handover


def run_live(
    *,
    settings: LiveSettings,
    frame_log: Path | None = None,
    log: Callable[[str], None] = default_log,
    engine=None,
    factory: SourceFactory | None = None,
    sysfs_root: Path = Path("/sys"),
    report_every: float | None = 1.0,
) -> dict:
    """``kdcam start``: the whole live virtual camera for ``settings``; returns the summary,
    with ``signal`` set to the number of the stop signal that ended it (None otherwise).

    ``engine`` and ``factory`` replace the configured engine and source (tests, benchmarks).
    """
    s = settings
    # Checks that need no hardware come first, so a typo fails before the camera is taken.
    if s.preview:
        check_display()
    if s.output is not None:
        codec_for(s.output)
        check_writable(s.output, what="recording")
    recording = None
    with contextlib.ExitStack() as stack:
        # Cheapest to most expensive, so a missing camera or virtual device is reported
        # before the engine loads.
        factory = factory or source_factory(device=s.device, size=s.size, fps=s.fps, loop=s.loop)
        source, shape, handover = _open_source(stack, s, factory, log)
        sinks: list[Sink] = []
        if s.vcam:
            sinks.append(_open_vcam(stack, s, width=shape[1], height=shape[0], sysfs_root=sysfs_root, log=log))
        if engine is None:
            from engines import create_engine

            engine = stack.enter_context(create_engine(s.engine, model=s.model))
        warm_up(engine, shape=shape, strength=s.strength)
        stop = threading.Event()
        controls = Controls(strength=s.strength)
        stats = LiveStats(engine=engine.describe())
        observers: list[Observer] = []
        if s.output is not None:
            recording = stack.enter_context(Recording(s.output, shape=shape, fps=s.fps))
            observers.append(lambda slot, _fresh: recording.offer(slot.frame))
            log(f"kdcam: recording to {s.output} ({describe_codec(s.output)})")
        frames = FrameLog() if frame_log is not None else None
        if frames is not None:
            observers.append(frames)
        if s.preview:
            preview = Preview(shape=shape, controls=controls, stats=stats, stop=stop)
            stack.callback(preview.close)
            observers.append(preview)
        handover["done"] = True
        with stop_on_signals(stop) as stopped:
            summary = run_loop(source=source, factory=factory, engine=engine, shape=shape, fps=s.fps, controls=controls,
                               stats=stats, stop=stop, sinks=sinks, observers=observers, keep_before=s.preview,
                               max_frames=s.max_frames, duration=s.duration, report_every=report_every, log=log)
        summary["signal"] = stopped.signum
        if frames is not None:
            frames.write(frame_log)
    if recording is not None:  # finalized and renamed into place when the stack closed
        summary.update(recording.summary())
    print(format_summary(summary), flush=True)
    return summary
