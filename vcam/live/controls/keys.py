"""Keys while the camera runs: one key map for the terminal and the preview window.

``TerminalKeys`` reads single key presses from a terminal (cbreak mode: no Enter needed,
no echo) on its own thread, without blocking the loop, and puts the terminal back as it
was on every way out (a normal end, an error, a stop signal). When standard input is not
a terminal (a service, a pipe) it does nothing, and the camera runs the same.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable

from engines.errors import KdcamError
from vcam.live.controls.state import STRENGTH_STEP, Controls

HELP = "keys: space effect on/off | + / - strength | s split view | m next model | q quit"


def key_actions(controls: Controls, stop: threading.Event) -> dict[str, Callable[[], None]]:
    """Key -> action: the same map for the terminal and the preview window."""
    up, down = (lambda: controls.step_strength(+STRENGTH_STEP)), (lambda: controls.step_strength(-STRENGTH_STEP))
    return {" ": controls.toggle, "+": up, "=": up, "-": down, "_": down, "s": controls.cycle_split,
            "m": controls.cycle_model, "q": stop.set}


def press(actions: dict[str, Callable[[], None]], key: str, log: Callable[[str], None]) -> None:
    """Run the action of ``key``; a change that cannot be made is said in one line, never raised."""
    action = actions.get(key)
    if action is None:
        return
    try:
        action()
    except KdcamError as err:
        log(f"kdcam: {err}")


class TerminalKeys:
    """Single key presses from ``stream`` while inside; a no-op when it is not a terminal."""

    def __init__(self, actions: dict[str, Callable[[], None]], *, stream=None, log: Callable[[str], None]) -> None:
        self._actions = actions
        self._stream = stream if stream is not None else sys.stdin
        self._log = log
        self._saved = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="kdcam-keys", daemon=True)
        self.active = False

    def __enter__(self) -> TerminalKeys:
        try:
            fd = self._stream.fileno()
            is_tty = os.isatty(fd)
        except (AttributeError, OSError, ValueError):
            is_tty = False
        try:
            import termios
            import tty
        except ImportError:  # no POSIX terminal here (Windows): no keys, the camera runs the same
            return self
        if not is_tty:
            return self

        self._fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        self.active = True
        self._thread.start()
        self._log(f"kdcam: {HELP}")
        return self

    def _read(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(OSError, ValueError):
                ready, _, _ = select.select([self._fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self._fd, 64)
                if not data:
                    return  # the terminal went away
                for key in data.decode("utf-8", "ignore"):
                    press(self._actions, key, self._log)

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        if self.active:
            import termios

            self._thread.join(timeout=1.0)
            with contextlib.suppress(OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self.active = False
