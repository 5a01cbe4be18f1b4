"""The values a user sets, each with its one default and its one check.

``parse_strength``, ``parse_size`` (bounds as arguments) and ``parse_fps`` are the only
checks of these values: the command line, the config file, the control socket, the
engines and the TensorRT builder all call them. Each raises a one-line ``KdcamError``
that names the value as ``what``.
"""

from __future__ import annotations

import math
from typing import Any

from engines.errors import KdcamError, shown

#: "pick it for me": the default of --engine and --model
AUTO = "auto"
#: the target (published) frame rate, and the frame budget --model auto is judged by
DEFAULT_FPS = 30.0
MIN_FPS, MAX_FPS = 1.0, 240.0
#: what a camera is asked for when no --size is given, and what engines are timed and built at
DEFAULT_SIZE = (1280, 720)
#: the largest frame a TensorRT engine takes by default, and the second size `kdcam bench` measures
FULL_HD = (1920, 1080)
#: the frame sizes `kdcam bench` measures by default
BENCH_SIZES = (DEFAULT_SIZE, FULL_HD)
#: a published frame's sides (a TensorRT profile passes its own, wider bounds)
MIN_SIDE, MAX_SIDE = 16, 7680
#: inference threads of a CPU engine in the live loop: one. A call needs 30 frames a second, not the lowest
#: latency per frame: a second thread made a 720p frame about 40% sooner but cost 30% more CPU (its workers
#: spin between frames), and the call itself needs the other cores. `kdcam sharpen` and the engine-only
#: bench use every core.
LIVE_THREADS = 1
#: 0 is the input, 1 the trained model; up to MAX_STRENGTH extrapolates
DEFAULT_STRENGTH = 1.0
MAX_STRENGTH = 2.0


def size_text(size: tuple[int, int]) -> str:
    """``(1280, 720)`` -> ``"1280x720"``."""
    return f"{size[0]}x{size[1]}"


def parse_size(text: Any, *, what: str = "--size", min_side: int = MIN_SIDE, max_side: int = MAX_SIDE,
               even: bool = True) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``: both sides within ``min_side..max_side`` (and even if ``even``)."""
    example = size_text(DEFAULT_SIZE)
    parts = str(text).lower().replace(" ", "").replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise KdcamError(f"bad {what} {shown(text)}: use WIDTHxHEIGHT, e.g. {example}") from None
    if not (min_side <= width <= max_side and min_side <= height <= max_side):
        raise KdcamError(f"bad {what} {shown(text)}: each side must be {min_side}..{max_side} pixels, e.g. {example}")
    if even and (width % 2 or height % 2):
        raise KdcamError(f"bad {what} {shown(text)}: width and height must be even (browsers reject odd widths), "
                         f"e.g. {example}")
    return width, height


def parse_fps(value: Any, *, what: str = "--fps") -> float:
    """Frames per second, a number from ``MIN_FPS`` to ``MAX_FPS`` (text from a command line too)."""
    try:
        if isinstance(value, bool):  # TOML's true is not a number
            raise TypeError
        fps = float(value)
    except (TypeError, ValueError):
        raise KdcamError(
            f"bad {what} {shown(value)}: give frames per second as a number, e.g. {DEFAULT_FPS:g}"
        ) from None
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise KdcamError(
            f"bad {what} {shown(value)}: must be between {MIN_FPS:g} and {MAX_FPS:g}, e.g. {DEFAULT_FPS:g}"
        )
    return fps


def parse_strength(value: Any, *, what: str = "--strength", text: bool = True) -> float:
    """A strength from 0 to ``MAX_STRENGTH``. ``text=False`` (a typed request, a key) takes
    numbers only: text, true/false and NaN are refused."""
    number = math.nan
    if not isinstance(value, bool) and (text or not isinstance(value, str)):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    if not 0.0 <= number <= MAX_STRENGTH:  # NaN fails too
        raise KdcamError(
            f"bad {what} {shown(value)}: give a number from 0 (off) to {MAX_STRENGTH:g}; "
            f"{DEFAULT_STRENGTH:g} is the trained model"
        )
    return number


def parse_text(value: Any, *, what: str) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise KdcamError(f"bad {what} {shown(value)}: give a non-empty string")
    return value.strip()
