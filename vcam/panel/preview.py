"""The preview's encoder: the latest before/after frames as small JPEGs, and a count of encodes.

It is called by the hub only while a page that shows the preview is open, at most
``PREVIEW_FPS`` times a second; with no such page nothing here runs, not even a look at
the frames. Both frames are scaled to at most ``PREVIEW_MAX_WIDTH`` pixels wide first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from vcam.panel.bounds import PREVIEW_JPEG_QUALITY, PREVIEW_MAX_WIDTH

#: the frames a camera gives the panel: the last input (before) and the last frame sent (after), BGR uint8
FrameSource = Callable[[], "tuple[np.ndarray | None, np.ndarray | None]"]


class PreviewEncoder:
    """Encodes what ``latest_frames()`` gives; ``encodes`` counts the frames encoded (before and after each one)."""

    def __init__(self, latest_frames: FrameSource, *, max_width: int = PREVIEW_MAX_WIDTH,
                 quality: int = PREVIEW_JPEG_QUALITY) -> None:
        self._latest = latest_frames
        self._max_width = max_width
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self._lock = threading.Lock()
        self.encodes = 0
        self.reads = 0  # calls of latest_frames()

    def encode(self) -> tuple[bytes | None, bytes | None]:
        """(before, after) as JPEG bytes; None for a frame that is missing or not a BGR/gray uint8 image."""
        with self._lock:
            self.reads += 1
            frames = self._latest()
            before, after = frames if isinstance(frames, tuple) and len(frames) == 2 else (None, None)
            return self._jpeg(before), self._jpeg(after)

    def _jpeg(self, frame: object) -> bytes | None:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            return None
        if frame.ndim == 3 and frame.shape[2] not in (1, 3) or min(frame.shape[:2]) < 1:
            return None
        height, width = frame.shape[:2]
        if width > self._max_width:
            size = (self._max_width, max(1, round(height * self._max_width / width)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", frame, self._params)
        if not ok:
            return None
        self.encodes += 1
        return data.tobytes()
