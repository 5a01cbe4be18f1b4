"""Record the sent stream to a video file.

The writer works on a temporary name beside the target (``engines.atomic.atomic_path``)
and is released before the rename, so the file only ever appears complete and playable.
The container follows the file name; the codec is the best one OpenCV's bundled FFmpeg
can write without extra libraries.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engines.errors import KdcamError

#: suffix -> (FourCC, what it is); OpenCV's bundled FFmpeg has no H.264 encoder
CODECS = {
    ".mp4": ("mp4v", "MPEG-4 Part 2, small"),
    ".m4v": ("mp4v", "MPEG-4 Part 2, small"),
    ".mov": ("mp4v", "MPEG-4 Part 2, small"),
    ".avi": ("MJPG", "Motion JPEG, good quality"),
    ".mkv": ("HFYU", "HuffYUV, lossless and large"),
}


def codec_for(path: Path) -> str:
    """The FourCC for ``path``'s suffix; a one-line error for an unknown suffix."""
    entry = CODECS.get(path.suffix.lower())
    if entry is None:
        choices = ", ".join(f"{suffix} ({what})" for suffix, (_, what) in CODECS.items())
        raise KdcamError(f"cannot record to '{path.name}': use one of {choices}")
    return entry[0]


class Recorder:
    """A ``cv2.VideoWriter`` for BGR frames of one size; use as a context manager."""

    def __init__(self, path: Path, *, width: int, height: int, fps: float) -> None:
        fourcc = codec_for(path)
        self._writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
        if not self._writer.isOpened():
            raise KdcamError(f"cannot write video '{path}' ({fourcc}): check the folder is writable, or try a .avi or .mkv name")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Flush and finalize the file (writes the container index, so it plays). Idempotent."""
        self._writer.release()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
