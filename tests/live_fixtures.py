"""Fakes shared by the live-camera tests (no tests here).

A synthetic source whose frames carry their own number, engines with a known effect
(one of them deliberately slow), and a helper to run the CLI's ``main()`` in-process.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from vcam.live.sources import SourceInfo


def frame_number(frame: np.ndarray) -> int:
    """The number a ``NumberedSource`` frame carries (also after ``InvertEngine``)."""
    corner = frame[:4, :4, 0].astype(np.int64)
    value = int(round(corner.mean()))
    return value


class NumberedSource:
    """Frames of ``shape`` whose top-left 4x4 block of channel 0 holds the frame number
    (mod 256), the rest a per-frame gradient, delivered at ``fps`` (0: as fast as read).

    After ``fail_after`` frames it returns None once (a dropped camera) unless ``finite``.
    """

    def __init__(
        self,
        *,
        shape=(48, 64, 3),
        fps: float = 0.0,
        fail_after: int | None = None,
        finite: bool = False,
        start: int = 0,
    ) -> None:
        self.info = SourceInfo(name="numbered", width=shape[1], height=shape[0], fps=fps, fourcc="TEST")
        self.finite = finite
        self.pos = start - 1
        self._shape = shape
        self._period = 1.0 / fps if fps else 0.0
        self._next = time.perf_counter()
        self._fail_after = fail_after
        self._delivered = 0
        self.closed = False
        self._base = (np.arange(shape[0] * shape[1] * 3, dtype=np.int64).reshape(shape) % 97).astype(np.uint8)

    def read(self, out: np.ndarray) -> np.ndarray | None:
        if self._fail_after is not None and self._delivered >= self._fail_after:
            return None
        if self._period:
            delay = self._next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + self._period, time.perf_counter())
        self.pos += 1
        self._delivered += 1
        target = out if out.shape == self._shape else np.empty(self._shape, np.uint8)
        np.copyto(target, self._base)
        target[:4, :4, 0] = self.pos % 256
        return target

    def close(self) -> None:
        self.closed = True


class InvertEngine:
    """A known 'sharpening': 255 - frame (so output != input), optionally slow."""

    name = "invert"

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.closed = False
        self.numbers: list[int] = []  # frame numbers seen, in order
        self._lock = threading.Lock()
        self._buffer: np.ndarray | None = None

    def sharpen(self, frame: np.ndarray, *, strength: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        if out is None:
            if self._buffer is None or self._buffer.shape != frame.shape:
                self._buffer = np.empty_like(frame)
            out = self._buffer
        np.subtract(255, frame, out=out)
        with self._lock:
            self.calls += 1
            self.numbers.append(frame_number(frame))
        return out

    def describe(self) -> str:
        return f"invert test engine (delay {self.delay * 1000:.0f} ms)"

    def close(self) -> None:
        self.closed = True


def run_kdcam(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """Run ``kdcam ARGS`` through ``vcam.cli.main`` in this process: (exit code, out, err)."""
    from vcam import cli

    monkeypatch.setattr(sys, "argv", ["kdcam", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def error_line(err: str) -> str:
    """The one ``kdcam: error:`` line of stderr (asserting there is exactly one)."""
    lines = [line for line in err.splitlines() if line.startswith("kdcam: error:")]
    assert len(lines) == 1, err
    return lines[0]
