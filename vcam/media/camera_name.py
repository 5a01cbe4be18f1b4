"""The virtual camera's name: its default, and the one check of a name v4l2loopback can take."""

from __future__ import annotations

from typing import Any

from engines.errors import KdcamError, shown
from engines.foundation.values import parse_text

DEFAULT_CAMERA_NAME = "KD Sharpen Cam"
#: a camera name becomes v4l2loopback's card_label: the V4L2 'card' field holds 31 bytes
MAX_CAMERA_NAME_BYTES = 31


def parse_camera_name(value: Any, *, what: str = "--camera-name") -> str:
    """A virtual camera's name, as v4l2loopback (and a shell line, and modprobe.d) can take it."""
    text = parse_text(value, what=what)
    if len(text.encode("utf-8")) > MAX_CAMERA_NAME_BYTES:
        raise KdcamError(f"bad {what} {shown(text)}: at most {MAX_CAMERA_NAME_BYTES} bytes (v4l2loopback's "
                         "card_label); shorten it")
    bad = next((c for c in text if c in ',"\\' or not c.isprintable()), None)
    if bad is not None:
        raise KdcamError(f"bad {what} {shown(text)}: v4l2loopback cannot take {bad!r} in a camera name "
                         "(a comma separates devices; quotes and backslashes break its options)")
    return text
