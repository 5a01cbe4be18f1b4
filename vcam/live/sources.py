"""Frame sources: a camera, a video file or a stream, opened with OpenCV.

``source_factory`` (re)opens one; ``describe_source`` says what it actually gives;
``output_shape`` decides the published shape and ``fit_into`` fits a frame into it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from engines.errors import KdcamError
from engines.foundation.values import DEFAULT_SIZE


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
        node = dev_root / f"video{index}"
        raise KdcamError(f"no camera {index} (no {node}): plug it in, or run `kdcam devices` to list cameras")
    width, height = size or DEFAULT_SIZE
    cap = cv2.VideoCapture(index, _api_preference())
    if not cap.isOpened():
        cap.release()
        if linux:
            raise KdcamError(
                f"camera {index} cannot be opened: it may be busy in another app or not readable by you "
                "(check the video group); close other apps using it and retry"
            )
        raise KdcamError(
            f"camera {index} cannot be opened: it is missing or busy in another app; close other apps using "
            "it, or run `kdcam devices`"
        )
    # Order matters on V4L2: the pixel format first, then the size it applies to.
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_FPS, fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # where supported: never hand out a stale buffered frame
    first = _read_first_frame(cap)
    if first is None:
        cap.release()
        raise KdcamError(
            f"camera {index} opened but gives no frames: it is probably busy in another app (browser tab, "
            "Zoom, OBS); close that and retry"
        )
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
        raise KdcamError(
            f"no camera or video file '{path_or_url}': give a camera index (see `kdcam devices`), an existing "
            "video file or a URL"
        )
    if not is_url and _still_image(path_or_url):
        raise KdcamError(
            f"'{path_or_url}' is a still image, not a video: give a camera index, a video file or a URL "
            "(`kdcam sharpen` sharpens images)"
        )
    cap = cv2.VideoCapture(path_or_url, cv2.CAP_FFMPEG)
    first = _read_first_frame(cap) if cap.isOpened() else None
    if first is None:
        cap.release()
        what = "stream" if is_url else "video file"
        raise KdcamError(
            f"cannot read {what} '{path_or_url}': check that it exists and plays (OpenCV/FFmpeg could not decode it)"
        )
    if is_url:
        return CvSource(cap, first, name=path_or_url, finite=False, loop=False, pace_fps=None)
    own_fps = cap.get(cv2.CAP_PROP_FPS)
    pace = pace_fps or (own_fps if 1.0 <= own_fps <= 240.0 else fps)
    return CvSource(cap, first, name=Path(path_or_url).name, finite=not loop, loop=loop, pace_fps=pace)


def source_factory(
    *, device: int | str, size: tuple[int, int] | None, fps: float, loop: bool, pace_fps: float | None = None
) -> SourceFactory:
    """A callable that (re)opens the source; it raises ``KdcamError`` when it cannot."""
    if isinstance(device, int):
        return lambda: open_camera(device, size=size, fps=fps)
    return lambda: open_video(device, loop=loop, fps=fps, pace_fps=pace_fps)


def describe_source(info: SourceInfo, *, asked_size: tuple[int, int] | None, asked_fps: float, camera: bool) -> str:
    """One line on what the source actually gives (and, for a camera, what was asked)."""
    got = f"{info.name}: {info.width}x{info.height} @ {info.fps:g} fps" + (f" {info.fourcc}" if info.fourcc else "")
    if not camera:
        return got
    w, h = asked_size or DEFAULT_SIZE
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
        raise KdcamError(
            f"{info.name} is {info.width}x{info.height}, and a camera's sides must be even (browsers "
            f"reject odd widths): pass --size {even} to crop it by one pixel, or another even size to scale it"
        )
    return info.height, info.width, 3
