"""The panel's one error type: a ``KdcamError``, so ``kdcam start`` prints it as one line."""

from __future__ import annotations

from engines.errors import KdcamError


class PanelError(KdcamError):
    """The panel could not start, or no running panel was found (its message is one line)."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (the middle of a longer one is cut)."""
    line = " ".join(str(text).split()) or "unknown error"
    if len(line) <= limit:
        return line
    half = (limit - 5) // 2
    return f"{line[:half]} ... {line[-half:]}"
