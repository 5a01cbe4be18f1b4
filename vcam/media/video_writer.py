"""Write video files with OpenCV: the codec each container gets, and a checked writer.

The container follows the file name; the codec is the best one OpenCV's bundled FFmpeg
can write without extra libraries. ``VideoWriter`` checks that every frame reached the
file, so a full disk is an error, never a short file reported as complete.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engines.atomic import disk_full
from engines.errors import KdcamError


#: suffix -> (FourCC, what it is); OpenCV's bundled FFmpeg has no H.264 encoder
CODECS = {
    ".mp4": ("mp4v", "MPEG-4 Part 2, lossy, small"),
    ".m4v": ("mp4v", "MPEG-4 Part 2, lossy, small"),
    ".mov": ("mp4v", "MPEG-4 Part 2, lossy, small"),
    ".avi": ("MJPG", "Motion JPEG, lossy, good quality"),
    ".mkv": ("HFYU", "HuffYUV, lossless and large"),
}


def codec_for(path: Path) -> str:
    """The FourCC for ``path``'s suffix; a one-line error for an unknown suffix."""
    entry = CODECS.get(path.suffix.lower())
    if entry is None:
        choices = ", ".join(f"{suffix} ({what})" for suffix, (_, what) in CODECS.items())
        raise KdcamError(f"cannot record to '{path.name}': use one of {choices}")
    return entry[0]


def describe_codec(path: Path) -> str:
    return CODECS[path.suffix.lower()][1]


def check_video_size(width: int, height: int, *, what: str) -> None:
    """OpenCV's video writer rounds odd sides down to even for every codec: refuse, never crop silently."""
    if width % 2 or height % 2:
        raise KdcamError(
            f"{what} is {width}x{height}, and video files can only be written with even sides "
            "(OpenCV's writer would cut off a row or column); make the size even first"
        )


class VideoWriter:
    """A ``cv2.VideoWriter`` for BGR frames of one size; use as a context manager."""

    def __init__(self, path: Path, *, width: int, height: int, fps: float, fourcc: str | None = None,
                 name: Path | None = None) -> None:
        """``name``: what messages call the file (the target, when ``path`` is its temporary file)."""
        self._name = Path(name or path)
        check_video_size(width, height, what=f"the video for {self._name.name}")
        fourcc = fourcc or codec_for(path)
        self._writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
        if not self._writer.isOpened():
            raise KdcamError(
                f"cannot write video '{self._name}' ({fourcc}): check the folder is writable, or try a .avi "
                "or .mkv name"
            )
        self._path = Path(path)
        self._closed = False
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self, *, check: bool = True) -> None:
        """Flush and finalize the file (writes the container index, so it plays), then, with
        ``check``, make sure every frame reached the disk: OpenCV's writer reports no write
        errors, so a full disk would otherwise leave a cut-off file that looks complete. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.release()
        if check and self.frames:
            self._check_written()

    def _check_written(self) -> None:
        cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        found = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if found < 0.99 * self.frames:  # 1%: some containers store a duration, not a count
            cause = "the disk is full" if disk_full(self._path.parent) else "a write failed"
            raise KdcamError(
                f"only {max(found, 0)} of the {self.frames} frames of {self._name} reached the disk ({cause}); "
                "free some space, or write somewhere else"
            )

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(check=exc_type is None)
