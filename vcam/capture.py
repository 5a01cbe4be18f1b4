"""Capture: open a camera, video file or stream, and keep only its newest frame.

``LatestFrame`` is the one-slot mailbox between the stages: three preallocated slots
(the writer's, the published one, the reader's) swapped under a condition variable, so a
writer never waits for a reader, a reader always gets the newest frame, and a frame that
was not taken in time is overwritten (dropped), never queued.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from engines.errors import KdcamError
from vcam.config import DEFAULT_CAMERA_SIZE
from vcam.stats import LiveStats


class FrameSlot:
    """One preallocated frame plus where it came from (and, once processed, how)."""

    __slots__ = ("frame", "before", "seq", "pos", "t_capture", "t_ready", "effect", "strength", "split", "model")

    def __init__(self, shape: tuple[int, int, int], *, with_before: bool) -> None:
        self.frame = np.zeros(shape, np.uint8)
        #: the input this frame was made from (only where a preview needs it)
        self.before = np.zeros(shape, np.uint8) if with_before else None
        self.seq = 0  # capture sequence number, 1 = first captured frame
        self.pos = 0  # frame index within the source (a file's frame number)
        self.t_capture = 0.0  # clock time the frame was read
        self.t_ready = 0.0  # clock time the slot was published
        # the controls the frame was processed with (vcam.controls.Controls)
        self.effect, self.strength, self.split, self.model = True, 1.0, "off", ""


class LatestFrame:
    """A one-slot mailbox of frames over three rotating preallocated slots.

    The writer fills ``writable()`` and calls ``publish()``; the reader's ``take()`` hands
    over the newest published slot, which stays the reader's (so it can be re-sent)
    until its next ``take()``.
    """

    def __init__(self, *, shape: tuple[int, int, int], with_before: bool = False) -> None:
        self._back, self._middle, self._front = (FrameSlot(shape, with_before=with_before) for _ in range(3))
        self._cond = threading.Condition()
        self._published = 0  # how many publishes so far
        self._taken = 0  # the publish count the reader has taken
        self._closed = False
        self._making = False  # the writer has started on the next frame

    def writable(self) -> FrameSlot:
        return self._back

    def making(self) -> None:
        """The writer has started on the next frame; ``publish()`` ends it. A reader may
        wait a moment for a frame being made (``in_the_making``) rather than take an old one."""
        self._making = True

    @property
    def in_the_making(self) -> bool:
        return self._making

    def publish(self) -> None:
        with self._cond:
            self._back, self._middle = self._middle, self._back
            self._published += 1
            self._making = False
            self._cond.notify_all()

    def take(self, *, timeout: float | None = None) -> FrameSlot | None:
        """The newest slot not taken yet, waiting up to ``timeout`` s (0: do not wait);
        None on timeout, or once closed with nothing new."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._published > self._taken or self._closed, timeout):
                return None
            if self._published == self._taken:
                return None
            self._front, self._middle = self._middle, self._front
            self._taken = self._published
            return self._front

    def close(self) -> None:
        """No more frames will come: wakes readers, which still get the last one."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclass(frozen=True)
class SourceInfo:
    name: str  # "camera 0", a file name or a URL
    width: int
    height: int
    fps: float  # what the source reports (0: unknown)
    fourcc: str  # what the source reports ("" unknown)


class FrameSource(Protocol):
    info: SourceInfo
    #: True for a video file without --loop: its end is the end of the run, not a fault
    finite: bool
    #: index of the frame last returned by read() within the source
    pos: int

    def read(self, out: np.ndarray) -> np.ndarray | None:
        """The next frame, written into ``out`` where the sizes match (else a source-owned
        array); None when the source ended or failed."""
        ...

    def close(self) -> None: ...


SourceFactory = Callable[[], FrameSource]


def _fourcc_text(code: float) -> str:
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if value and text.isprintable() else ""


def _api_preference() -> int:
    # The native capture API opens faster and honours MJPG/buffer-size requests.
    return {
        "Linux": cv2.CAP_V4L2,
        "Windows": cv2.CAP_DSHOW,
        "Darwin": cv2.CAP_AVFOUNDATION,
    }.get(platform.system(), cv2.CAP_ANY)


class CvSource:
    """A ``cv2.VideoCapture`` that has already given its first frame."""

    def __init__(
        self,
        cap: cv2.VideoCapture,
        first: np.ndarray,
        *,
        name: str,
        finite: bool,
        loop: bool,
        pace_fps: float | None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._cap = cap
        self._first = first
        self._loop = loop
        self._clock = clock
        self.finite = finite
        self.pos = 0
        self.info = SourceInfo(
            name=name,
            width=first.shape[1],
            height=first.shape[0],
            fps=cap.get(cv2.CAP_PROP_FPS) or 0.0,
            fourcc=_fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
        )
        # Chosen once: the first call returns the frame read while opening; a file
        # without its own clock is paced so it behaves like a live camera.
        self._read_next = self._read_paced if pace_fps else self._grab
        self._period = 1.0 / pace_fps if pace_fps else 0.0
        self._due = 0.0
        self.read = self._read_first

    def _read_first(self, out: np.ndarray) -> np.ndarray:
        self.read = self._read_next
        self._due = self._clock() + self._period
        first, self._first = self._first, None
        if out.shape == first.shape:
            np.copyto(out, first)
            return out
        return first

    def _grab(self, out: np.ndarray) -> np.ndarray | None:
        # OpenCV fills ``out`` in place when its size matches, else returns a new array.
        ok, frame = self._cap.read(out)
        if not ok and self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.pos = -1
            ok, frame = self._cap.read(out)
        if not ok or frame is None:
            return None
        self.pos += 1
        return frame

    def _read_paced(self, out: np.ndarray) -> np.ndarray | None:
        delay = self._due - self._clock()
        if delay > 0:
            time.sleep(delay)
        # Step the schedule (late wake-ups do not drift it), but after a stall of more
        # than a frame restart it from now rather than burst to catch up.
        now = self._clock()
        self._due = self._due + self._period if now - self._due < self._period else now + self._period
        return self._grab(out)

    def close(self) -> None:
        self._cap.release()


def _read_first_frame(cap: cv2.VideoCapture) -> np.ndarray | None:
    ok, frame = cap.read()
    return frame if ok and frame is not None and frame.ndim == 3 and frame.shape[2] == 3 else None


def open_camera(index: int, *, size: tuple[int, int] | None, fps: float, dev_root: Path = Path("/dev")) -> CvSource:
    """Open camera ``index`` asking for MJPG, ``size`` (default 1280x720) and ``fps``."""
    linux = platform.system() == "Linux"
    if linux and not (dev_root / f"video{index}").exists():
        raise KdcamError(f"no camera {index} (no {dev_root / f'video{index}'}): plug it in, or run `kdcam devices` to list cameras")
    width, height = size or DEFAULT_CAMERA_SIZE
    cap = cv2.VideoCapture(index, _api_preference())
    if not cap.isOpened():
        cap.release()
        if linux:
            raise KdcamError(f"camera {index} cannot be opened: it may be busy in another app or not readable by you (check the video group); close other apps using it and retry")
        raise KdcamError(f"camera {index} cannot be opened: it is missing or busy in another app; close other apps using it, or run `kdcam devices`")
    # Order matters on V4L2: the pixel format first, then the size it applies to.
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_FPS, fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # where supported: never hand out a stale buffered frame
    first = _read_first_frame(cap)
    if first is None:
        cap.release()
        raise KdcamError(f"camera {index} opened but gives no frames: it is probably busy in another app (browser tab, Zoom, OBS); close that and retry")
    return CvSource(cap, first, name=f"camera {index}", finite=False, loop=False, pace_fps=None)


def _still_image(path: str) -> bool:
    """An image file with one frame (a raw Motion-JPEG stream also starts like a JPEG, but
    has more)."""
    if not cv2.haveImageReader(path):
        return False
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        return not (cap.grab() and cap.grab())
    finally:
        cap.release()


def open_video(path_or_url: str, *, loop: bool, fps: float, pace_fps: float | None = None) -> CvSource:
    """Open a video file (paced at its own fps, else ``fps``) or a stream URL (live)."""
    is_url = "://" in path_or_url
    if not is_url and not Path(path_or_url).is_file():
        raise KdcamError(f"no camera or video file '{path_or_url}': give a camera index (see `kdcam devices`), an existing video file or a URL")
    if not is_url and _still_image(path_or_url):
        raise KdcamError(f"'{path_or_url}' is a still image, not a video: give a camera index, a video file or a URL "
                         "(`kdcam sharpen` sharpens images)")
    cap = cv2.VideoCapture(path_or_url, cv2.CAP_FFMPEG)
    first = _read_first_frame(cap) if cap.isOpened() else None
    if first is None:
        cap.release()
        what = "stream" if is_url else "video file"
        raise KdcamError(f"cannot read {what} '{path_or_url}': check that it exists and plays (OpenCV/FFmpeg could not decode it)")
    if is_url:
        return CvSource(cap, first, name=path_or_url, finite=False, loop=False, pace_fps=None)
    own_fps = cap.get(cv2.CAP_PROP_FPS)
    pace = pace_fps or (own_fps if 1.0 <= own_fps <= 240.0 else fps)
    return CvSource(cap, first, name=Path(path_or_url).name, finite=not loop, loop=loop, pace_fps=pace)


def source_factory(*, device: int | str, size: tuple[int, int] | None, fps: float, loop: bool, pace_fps: float | None = None) -> SourceFactory:
    """A callable that (re)opens the source; it raises ``KdcamError`` when it cannot."""
    if isinstance(device, int):
        return lambda: open_camera(device, size=size, fps=fps)
    return lambda: open_video(device, loop=loop, fps=fps, pace_fps=pace_fps)


def describe_source(info: SourceInfo, *, asked_size: tuple[int, int] | None, asked_fps: float, camera: bool) -> str:
    """One line on what the source actually gives (and, for a camera, what was asked)."""
    got = f"{info.name}: {info.width}x{info.height} @ {info.fps:g} fps" + (f" {info.fourcc}" if info.fourcc else "")
    if not camera:
        return got
    w, h = asked_size or DEFAULT_CAMERA_SIZE
    return f"{got} (asked {w}x{h} @ {asked_fps:g} fps MJPG)"


def fit_into(frame: np.ndarray, dst: np.ndarray) -> None:
    """Copy ``frame`` into ``dst``: trimmed where it is at most one pixel larger (an odd
    side), else scaled."""
    fh, fw = frame.shape[:2]
    dh, dw = dst.shape[:2]
    if 0 <= fh - dh <= 1 and 0 <= fw - dw <= 1:
        np.copyto(dst, frame[:dh, :dw])
    else:
        cv2.resize(frame, (dw, dh), dst=dst, interpolation=cv2.INTER_AREA if fw > dw else cv2.INTER_LINEAR)


def output_shape(info: SourceInfo, size: tuple[int, int] | None) -> tuple[int, int, int]:
    """The published frame shape: ``size`` when given, else the source's own size.

    Either must have even sides (browsers reject odd widths, 4:2:0 consumers need even
    heights, video files cannot hold odd sides), so an odd source is refused exactly as an
    odd ``--size`` is, never trimmed silently; ``--size`` with even sides crops or scales it.
    """
    if size is not None:
        return size[1], size[0], 3
    if info.width % 2 or info.height % 2:
        even = f"{info.width - info.width % 2}x{info.height - info.height % 2}"
        raise KdcamError(f"{info.name} is {info.width}x{info.height}, and a camera's sides must be even (browsers "
                         f"reject odd widths): pass --size {even} to crop it by one pixel, or another even size to scale it")
    return info.height, info.width, 3


class StageThread(threading.Thread):
    """One stage of the live loop: runs ``_work()``, then closes its output mailbox so the
    next stage winds down too. Any error stops the whole loop and is kept in ``error`` for
    the main thread to re-raise."""

    def __init__(self, *, name: str, stop: threading.Event, output: LatestFrame) -> None:
        super().__init__(name=name, daemon=True)
        self._halt = stop
        self._output = output
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as err:  # handed to the main thread, which re-raises it
            self.error = err
            self._halt.set()
        finally:
            self._release()
            self._output.close()

    def _work(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Release what the stage holds (before its output closes)."""


class CaptureThread(StageThread):
    """Reads the source as fast as it gives frames and publishes each into ``mailbox``.

    A source that stops giving frames (unplugged, a stream that ends or errors) is
    reopened through ``factory`` with backoff while the sender keeps repeating the last
    frame; a finite source (a file without --loop) ends the run instead.
    """

    def __init__(
        self,
        *,
        source: FrameSource,
        factory: SourceFactory,
        mailbox: LatestFrame,
        stats: LiveStats,
        stop: threading.Event,
        log: Callable[[str], None],
        backoff: tuple[float, float] = (0.25, 5.0),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(name="kdcam-capture", stop=stop, output=mailbox)
        self._source: FrameSource | None = source
        self._factory = factory
        self._mailbox = mailbox
        self._stats = stats
        self._log = log
        self._backoff = backoff
        self._clock = clock

    def _release(self) -> None:
        if self._source is not None:
            self._source.close()

    def _staging_for(self, source: FrameSource) -> np.ndarray | None:
        # Where the source writes: straight into the mailbox slot when the sizes match,
        # else a staging frame of the source's own size that fit_into() converts.
        shape = self._mailbox.writable().frame.shape
        if (source.info.height, source.info.width) == shape[:2]:
            return None
        return np.empty((source.info.height, source.info.width, 3), np.uint8)

    def _work(self) -> None:
        source = self._source
        staging = self._staging_for(source)
        mailbox, stats, clock = self._mailbox, self._stats, self._clock
        seq = 0
        while not self._halt.is_set():
            slot = mailbox.writable()
            frame = source.read(slot.frame if staging is None else staging)
            if frame is None:
                if source.finite:
                    self._log(f"kdcam: {source.info.name} ended")
                    return
                source.close()
                self._source = source = None
                source = self._reopen()
                if source is None:
                    return
                self._source = source
                staging = self._staging_for(source)
                continue
            if frame is not slot.frame:
                fit_into(frame, slot.frame)
            slot.t_capture = clock()
            slot.pos = source.pos
            seq += 1
            slot.seq = seq
            mailbox.publish()
            stats.captured = seq

    def _reopen(self) -> FrameSource | None:
        delay, longest = self._backoff
        self._log("kdcam: the source stopped giving frames; reconnecting (the virtual camera repeats the last frame meanwhile)")
        while not self._halt.wait(delay):
            try:
                source = self._factory()
            except KdcamError as err:
                delay = min(delay * 2, longest)
                self._log(f"kdcam: reconnect failed ({err}); retrying in {delay:g} s")
                continue
            self._stats.reconnects += 1
            self._log(f"kdcam: reconnected: {source.info.name} {source.info.width}x{source.info.height}")
            return source
        return None


def default_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

