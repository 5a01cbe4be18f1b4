"""Switching the model or the engine while the camera runs, without a gap in the frames.

The new engine is built and warmed up on the thread that asked for it (a key reader or
the control server), never on the processing thread; the processing thread picks it up
between two frames (``current()``, called once per loop), and the old engine is closed
after the swap. If the build fails, the running engine stays and the error says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.errors import KdcamError


def live_engine(name: str, *, model, quiet: bool = False):
    """An engine for the live loop: a CPU runtime runs on ``LIVE_THREADS`` inference threads
    (``engines.foundation.values``); a GPU runtime takes no thread count."""
    from engines import create_engine
    from engines.foundation.values import LIVE_THREADS
    from engines.registry import engine_options

    return create_engine(name, model=model, quiet=quiet, **engine_options(name, threads=LIVE_THREADS))


def warm_up(engine, *, shape: tuple[int, int, int], strength: float) -> None:
    """First runs are several times slower (compilation, allocation): pay that before the
    first real frame so it does not show up as latency."""
    frame = np.zeros(shape, np.uint8)
    out = np.empty(shape, np.uint8)
    for _ in range(2):
        engine.sharpen(frame, strength=strength, out=out)


class EngineSwitch:
    """The engine the processing thread runs, and the way to replace it."""

    def __init__(self, engine, *, engine_name: str, model: str | Path | None, shape: tuple[int, int, int],
                 strength: Callable[[], float], on_swap: Callable[[object], None] = lambda _engine: None) -> None:
        self._current = engine
        self._pending = None
        self._lock = threading.Lock()  # the swap, against a switch that gives up
        self._swapped = threading.Event()
        self.engine_name = engine_name
        self.model = model
        self._shape = shape
        self._strength = strength
        self._on_swap = on_swap

    def current(self):
        """The engine to run the next frame with (processing thread only: swaps in a new one)."""
        if self._pending is not None:
            with self._lock:
                if self._pending is not None:
                    self._current, self._pending = self._pending, None
                    self._on_swap(self._current)
                    self._swapped.set()
        return self._current

    def switch(self, model: str | None, engine_name: str | None, *, timeout: float = 10.0) -> None:
        """Build ``model`` on ``engine_name`` (None: keep the current one), then swap it in."""
        model = self.model if model is None else model
        engine_name = engine_name or self.engine_name
        try:
            new = live_engine(engine_name, model=model, quiet=True)
            warm_up(new, shape=self._shape, strength=self._strength())
        except KdcamError as err:
            from engines.model.checkpoint import ResolvedModel  # loaded by create_engine already

            shown = model.name if isinstance(model, ResolvedModel) else model  # a name, not a repr
            raise KdcamError(
                f"cannot switch to model {shown} on engine {engine_name} ({err}); still running the old one"
            ) from None
        old = self._current
        self._swapped.clear()
        self._pending = new
        if not self._swapped.wait(timeout):
            with self._lock:
                gave_up = self._pending is new
                self._pending = None if gave_up else self._pending
            if gave_up:  # the processing thread has stopped: the old engine stays
                new.close()
                raise KdcamError("the camera is not processing frames; nothing was switched")
        old.close()
        self.model, self.engine_name = model, engine_name

    def close(self) -> None:
        self._current.close()
