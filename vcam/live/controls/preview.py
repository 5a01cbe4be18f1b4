"""The preview window: a split before/after view with the live stats, and key controls.

Keys: the terminal's (``vcam.live.controls.keys``: space effect on/off, + / - strength, s split view
published to the call, m next model, q quit), plus Esc to quit, f to mirror the preview
only, and p to save a snapshot of the sent frame. It runs on the sender's (main) thread:
HighGUI windows must be driven from the thread that created them.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from engines.errors import KdcamError
from vcam.live.mailbox import FrameSlot
from vcam.live.controls.state import Controls
from vcam.live.controls.keys import key_actions, press
from vcam.live.stats import LiveStats

WINDOW = "KD Sharpen Cam - preview"


def gui_framework() -> str:
    """OpenCV's HighGUI backend ("QT", "GTK3", "WIN32", "COCOA"...), "" when headless."""
    name = cv2.currentUIFramework() if hasattr(cv2, "currentUIFramework") else ""
    return "" if name.upper() in ("", "NONE") else name


def check_display(
    *, env: Mapping[str, str] = os.environ, system: str | None = None, framework: str | None = None
) -> None:
    """Raise a one-line KdcamError when no preview window can open here."""
    framework = gui_framework() if framework is None else framework
    if not framework:
        raise KdcamError(
            "--preview needs OpenCV with a GUI, and this one is headless: install opencv-python (not "
            "-headless), or drop --preview"
        )
    system = system or platform.system()
    if system not in ("Windows", "Darwin") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise KdcamError(
            "--preview needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set: run it in a desktop "
            "session, or drop --preview"
        )


class Preview:
    """An observer of the sender: call it with each sent slot."""

    def __init__(
        self,
        *,
        shape: tuple[int, int, int],
        controls: Controls,
        stats: LiveStats,
        stop: threading.Event,
        snapshot_dir: Path = Path("."),
        log=print,
    ) -> None:
        self._controls = controls
        self._log = log
        self._stats = stats
        self._stop = stop
        self._snapshot_dir = snapshot_dir
        self._mirror = False
        self._half = shape[1] // 2
        self._canvas = np.zeros(shape, np.uint8)
        self._flipped_before = np.zeros(shape, np.uint8)
        self._flipped_after = np.zeros(shape, np.uint8)
        self._last: FrameSlot | None = None
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        # The key handlers (the terminal's, plus the preview's own), looked up once per key press.
        self._keys = {**key_actions(controls, stop), "\x1b": stop.set, "f": self._toggle_mirror, "p": self._snapshot}

    def __call__(self, slot: FrameSlot, fresh: bool) -> None:
        if fresh:
            self._last = slot
            self._draw(slot)
            cv2.imshow(WINDOW, self._canvas)
        key = cv2.waitKey(1)
        if key >= 0:
            press(self._keys, chr(key & 0xFF), self._log)
        if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            self._stop.set()  # the user closed the window

    def _draw(self, slot: FrameSlot) -> None:
        before, after = slot.before, slot.frame
        if self._mirror:
            cv2.flip(before, 1, dst=self._flipped_before)
            cv2.flip(after, 1, dst=self._flipped_after)
            before, after = self._flipped_before, self._flipped_after
        half, canvas = self._half, self._canvas
        np.copyto(canvas[:, :half], before[:, :half])
        np.copyto(canvas[:, half:], after[:, half:])
        cv2.line(canvas, (half, 0), (half, canvas.shape[0] - 1), (255, 255, 255), 1)
        controls = self._controls
        right = f"after: strength {controls.strength:.1f}" if controls.effect else "effect off (space)"
        self._label("before", (10, 28))
        self._label(right, (half + 10, 28))
        self._label(self._stats.last_line, (10, canvas.shape[0] - 12), scale=0.45)

    def _label(self, text: str, origin: tuple[int, int], *, scale: float = 0.7) -> None:
        # Dark outline under light text: readable on any background.
        cv2.putText(self._canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(self._canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)

    def _toggle_mirror(self) -> None:
        self._mirror = not self._mirror

    def _snapshot(self) -> None:
        if self._last is None:
            return
        path = self._snapshot_dir / time.strftime("kdcam-snapshot-%Y%m%d-%H%M%S.png")
        if not cv2.imwrite(str(path), self._last.frame):
            raise KdcamError(f"could not save the snapshot to {path}: check the folder is writable")
        print(f"kdcam: saved {path}", flush=True)

    def close(self) -> None:
        cv2.destroyWindow(WINDOW)
