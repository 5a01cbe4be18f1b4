"""A stand-in camera for the panel: a ``handle`` that answers as `kdcam ctl`'s does, and moving frames.

For the panel's tests and for working on the page without a camera:
``python -m vcam.panel.demo`` serves the panel with it until Ctrl-C. The requests it got
are kept in ``requests``; ``set`` changes its state from outside, as `kdcam ctl` would.
Its checks and error lines follow ``vcam.live.controls`` (not imported: the panel only
ever sees a ``handle``).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from engines.foundation.values import DEFAULT_FPS, DEFAULT_SIZE, size_text

SPLIT_MODES = ("off", "on", "labels")
ENGINES = ("auto", "onnxruntime", "openvino", "torch")
COMMANDS = {
    "status": None,
    "strength": "number",
    "toggle": None,
    "split": "text",
    "model": "text",
    "engine": "text",
    "save": None,
}


class FakeCamera:
    def __init__(self, models=("default", "kd-s4-c16", "kd-s8-c32"), engine: str = "onnxruntime") -> None:
        self.state = {
            "effect": "on",
            "strength": 1.0,
            "split": "off",
            "model": models[0],
            "models": list(models),
            "engine": engine,
        }
        self.requests: list[dict] = []
        self.saves = 0
        self._lock = threading.Lock()

    def status(self) -> dict:
        with self._lock:
            return {**self.state, "models": list(self.state["models"])}

    def set(self, key: str, value) -> None:
        """Change the state from outside the panel (as the terminal keys or `kdcam ctl` would)."""
        with self._lock:
            self.state[key] = value

    def _refusal(self, request) -> str | None:
        if not isinstance(request, dict):
            return "a request is a JSON object"
        if set(request) - {"cmd", "value"}:
            return "unknown key; a request has only 'cmd' and 'value'"
        cmd, value = request.get("cmd"), request.get("value")
        if cmd not in COMMANDS:
            return f"unknown command; commands: {', '.join(COMMANDS)}"
        wanted = COMMANDS[cmd]
        if wanted is None and value is not None:
            return f"{cmd} takes no value"
        if wanted == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{cmd} takes a JSON number, not {type(value).__name__}"
        if wanted == "text" and not isinstance(value, str):
            return f"{cmd} takes text, not {type(value).__name__}"
        return None

    def handle(self, request: dict) -> dict:
        """One control request, answered as `kdcam ctl` is: a bad one changes nothing and says why in one line."""
        self.requests.append(request)
        refusal = self._refusal(request)
        if refusal is not None:
            return {"ok": False, "error": f"bad request ({refusal}); see `kdcam ctl --help`"}
        cmd, value = request["cmd"], request.get("value")
        message = None
        with self._lock:
            if cmd == "strength":
                if not math.isfinite(value) or not 0.0 <= value <= 2.0:
                    return {"ok": False, "error": f"strength must be from 0 to 2, not {value!r}"}
                self.state["strength"] = float(value)
            elif cmd == "toggle":
                self.state["effect"] = "off" if self.state["effect"] == "on" else "on"
            elif cmd == "split":
                if value not in SPLIT_MODES:
                    return {"ok": False, "error": f"bad split mode {value!r}: use one of {', '.join(SPLIT_MODES)}"}
                self.state["split"] = value
            elif cmd == "model":
                if value not in self.state["models"]:
                    return {
                        "ok": False,
                        "error": f"unknown model {value!r}; installed: {', '.join(self.state['models'])}",
                    }
                self.state["model"] = value
            elif cmd == "engine":
                if value not in ENGINES:
                    return {"ok": False, "error": f"unknown engine {value!r}; engines: {', '.join(ENGINES)}"}
                self.state["engine"] = value
            elif cmd == "save":
                self.saves += 1
                message = "saved strength, model and engine to kdcam.toml"
        answer = {"ok": True, "status": self.status()}
        if message:
            answer["message"] = message
        return answer


class FakeFrames:
    """``latest_frames()`` for the panel: a moving 720p test picture, soft (before) and crisp (after)."""

    def __init__(self, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> None:
        y, x = np.mgrid[0:height, 0:width]
        self._x, self._y = x.astype(np.float32), y.astype(np.float32)
        self.calls = 0
        self._t0 = time.monotonic()

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        t = time.monotonic() - self._t0
        rings = np.sin(np.hypot(self._x - 640 - 200 * math.sin(t), self._y - 360) / 9.0)
        after = np.empty((*self._x.shape, 3), np.uint8)
        after[..., 0] = (127 + 120 * rings).astype(np.uint8)
        after[..., 1] = (self._x * (255 / self._x.shape[1])).astype(np.uint8)
        after[..., 2] = (self._y * (255 / self._y.shape[0])).astype(np.uint8)
        before = (after.astype(np.uint16) // 2 + 64).astype(np.uint8)  # duller, so the wipe shows a difference
        return before, after


def fake_stats() -> dict:
    t = time.monotonic()
    return {
        "sent_fps": DEFAULT_FPS + math.sin(t),
        "latency_p95_ms": 18.0 + 3 * math.sin(t / 3),
        "cpu_cores": 0.9,
        "engine_line": f"engine onnxruntime (CPU), model default, {size_text(DEFAULT_SIZE)}",
        "machine_line": "demo machine",
    }


def main() -> None:
    from vcam.panel.runner import serve_panel

    camera = FakeCamera()
    with serve_panel(handle=camera.handle, latest_frames=FakeFrames(), stats=fake_stats, engines=ENGINES[1:]) as panel:
        print(f"kdcam panel (demo camera): {panel.login_url}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
