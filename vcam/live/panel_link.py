"""What the control panel (``vcam.panel``) sees of a live session: frames, stats and engines,
read without disturbing the frame loop.

Nothing is copied or computed while no page is open: the panel asks for frames only then,
and ``PanelFrames`` copies a sent frame (and its input) only within a second of such a
request, at most ``COPY_FPS`` times a second. The actions of the page go through the same
``handle`` as ``kdcam ctl`` (``vcam.live.controls.protocol.handle_request``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from vcam.live.controls.sockets import socket_path
from vcam.live.mailbox import FrameSlot
from vcam.live.stats import LiveStats

#: how often a frame pair is copied for the panel while a page asks (its preview runs at 5 fps)
COPY_FPS = 10.0
#: a page that asked for frames within this many seconds is still watching
WATCHING_S = 1.0


class PanelFrames:
    """A sender observer: the last sent frame and its input, copied only while a page watches."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._watching_until = -math.inf
        self._next_copy = -math.inf
        self._pair: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self._lock = threading.Lock()

    def watching(self) -> bool:
        """Whether a page asked for frames in the last ``WATCHING_S`` (the pipeline then keeps the input)."""
        return self._clock() < self._watching_until

    def __call__(self, slot: FrameSlot, fresh: bool) -> None:
        now = self._clock()
        if not fresh or now >= self._watching_until or now < self._next_copy:
            return
        self._next_copy = now + 1.0 / COPY_FPS
        pair = (None if slot.before is None else slot.before.copy(), slot.frame.copy())  # the slot is reused
        with self._lock:
            self._pair = pair

    def latest(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(before, after) for the panel: frames nobody writes again."""
        self._watching_until = self._clock() + WATCHING_S
        with self._lock:
            return self._pair


class PanelStats:
    """Sent fps, added latency p95, CPU cores and the engine and machine lines, between two reads."""

    def __init__(self, stats: LiveStats, machine: str) -> None:
        self._stats = stats
        self._machine = machine
        self._last = stats.peek()

    def __call__(self) -> dict:
        now, last = self._stats.peek(), self._last
        dt = max(now["t"] - last["t"], 1e-6)
        self._last = now
        return {"sent_fps": (now["sent"] - last["sent"]) / dt, "latency_p95_ms": now["latency_p95_ms"],
                "cpu_cores": (now["cpu_s"] - last["cpu_s"]) / dt, "engine_line": now["engine"],
                "machine_line": self._machine}


def usable_engines() -> list[str]:
    from engines.registry import engine_status

    return ["auto", *(name for name, why in engine_status().items() if why is None)]


@contextlib.contextmanager
def session_panel(*, camera_name: str, port: int, handle: Callable[[dict], dict], frames: PanelFrames,
                  stats: LiveStats, log: Callable[[str], None]) -> Iterator[object]:
    """The panel of a running session, its address printed once (with the token), and its
    token file beside the control socket for `kdcam panel`; stopped when the block ends."""
    from engines.foundation.timing import machine_name
    from vcam.panel import panel_file_for, serve_panel

    with serve_panel(handle=handle, latest_frames=frames.latest, stats=PanelStats(stats, machine_name()),
                     engines=usable_engines(), port=port, token_file=panel_file_for(socket_path(camera_name))) as panel:
        log(f"kdcam: control panel at {panel.login_url} (open it once; `kdcam panel` opens it again)")
        yield panel
