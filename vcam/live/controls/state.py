"""What can change while the camera runs, and the one place that changes it.

``Controls`` holds the live settings: the effect on or off, its strength, the split
before/after view, the model and the engine. Every way to change them (terminal keys, the
preview window, ``kdcam ctl``) calls its methods, which check the value (a bad one is a
one-line ``KdcamError`` and changes nothing), apply it between frames, and note the
change for the exit summary. The processing thread reads ``effect``, ``strength`` and
``split`` once per frame; a model or engine switch is built off the hot path by
``switch`` (``vcam.live.engine_switch``) and swapped in between frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from engines.foundation.values import MAX_STRENGTH, parse_strength
from engines.errors import KdcamError

STRENGTH_STEP = 0.1
#: split view: off, the input on the left and the sharpened frame on the right, the same with labels
SPLIT_MODES = ("off", "on", "labels")


class Controls:
    """The live settings (read by the processing thread once per frame) and their changes."""

    def __init__(
        self,
        *,
        strength: float,
        model: str = "",
        models: Sequence[str] = (),
        engine: str = "",
        switch: Callable[[str | None, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.effect = True
        self.strength = strength
        self.split = "off"
        self.model = model
        self.models = tuple(models)  # the names the m key cycles and `kdcam ctl model` accepts
        self.engine = engine
        self._switch = switch  # builds (model, engine) off the hot path and swaps it in; raises KdcamError
        self._lock = threading.Lock()  # one change at a time (keys, preview, ctl)
        self._switching = threading.Lock()  # one model or engine switch at a time (it takes a while)
        self._clock = clock
        self._started = clock()
        self.changes: list[str] = []

    def _note(self, what: str) -> None:
        self.changes.append(f"{self._clock() - self._started:.1f} s: {what}")

    def set_strength(self, value: object) -> None:
        # a key or a typed request: numbers only (text from a command line is parsed by its caller)
        strength = parse_strength(value, what="strength", text=False)
        with self._lock:
            if strength != self.strength:
                self._note(f"strength {self.strength:g} -> {strength:g}")
                self.strength = strength

    def step_strength(self, delta: float) -> None:
        self.set_strength(round(min(max(self.strength + delta, 0.0), MAX_STRENGTH), 2))

    def set_effect(self, on: bool) -> None:
        with self._lock:
            if on != self.effect:
                self._note(f"effect {'on' if on else 'off'}")
                self.effect = on

    def toggle(self) -> None:
        self.set_effect(not self.effect)

    def set_split(self, mode: object) -> None:
        if not isinstance(mode, str) or mode not in SPLIT_MODES:
            raise KdcamError(f"bad split mode {mode!r}: use one of {', '.join(SPLIT_MODES)}")
        with self._lock:
            if mode != self.split:
                self._note(f"split {mode}")
                self.split = mode

    def cycle_split(self) -> None:
        self.set_split(SPLIT_MODES[(SPLIT_MODES.index(self.split) + 1) % len(SPLIT_MODES)])

    def set_model(self, name: object) -> None:
        """Switch to the installed model ``name`` (blocks until it runs, or raises and keeps the old one)."""
        if not isinstance(name, str) or name not in self.models:
            raise KdcamError(f"unknown model {name!r}; installed: {', '.join(self.models) or 'none'}")
        self._switch_to(model=name, engine=None)

    def cycle_model(self) -> None:
        if len(self.models) > 1:
            index = self.models.index(self.model) if self.model in self.models else -1
            self.set_model(self.models[(index + 1) % len(self.models)])

    def set_engine(self, name: object) -> None:
        from engines.registry import ENGINE_NAMES

        if not isinstance(name, str) or name not in ENGINE_NAMES:
            raise KdcamError(f"unknown engine {name!r}; engines: {', '.join(ENGINE_NAMES)}")
        self._switch_to(model=None, engine=name)

    def _switch_to(self, *, model: str | None, engine: str | None) -> None:
        if self._switch is None:
            raise KdcamError("this session cannot switch models or engines")
        with self._switching:  # the other settings stay free to change while the new engine builds
            if (model or self.model) == self.model and (engine or self.engine) == self.engine:
                return
            self._switch(model, engine)  # raises KdcamError and keeps the running engine on failure
            with self._lock:
                self._note(f"model {self.model} -> {model}" if model else f"engine {self.engine} -> {engine}")
                self.model, self.engine = model or self.model, engine or self.engine

    def status(self) -> dict:
        return {"effect": "on" if self.effect else "off", "strength": self.strength, "split": self.split,
                "model": self.model, "models": list(self.models), "engine": self.engine}

    def line(self) -> str:
        """The controls, for the live status line."""
        effect = f"strength {self.strength:g}" if self.effect else "effect OFF"
        split = "" if self.split == "off" else f" | split {self.split}"
        return f"{effect}{split} | model {self.model}"
