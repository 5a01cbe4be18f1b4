"""The JSON header that kdcam keeps in the metadata of its own safetensors files."""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from engines.atomic import why
from engines.errors import KdcamError

#: the largest safetensors header (tensor index and metadata) read by default; the length is
#: the file's first 8 bytes, checked before the header itself is read
MAX_HEADER_BYTES = 16 * 1024 * 1024


def declared_header_bytes(path: Path) -> int | None:
    """The length of the JSON header that a safetensors file declares (its first 8 bytes, a
    little-endian u64); None when the file cannot hold that much (not safetensors). ``path``
    is a regular file."""
    with open(path, "rb") as f:
        head = f.read(8)
        size = os.fstat(f.fileno()).st_size
    declared = struct.unpack("<Q", head)[0] if len(head) == 8 else None
    return declared if declared is not None and declared <= size - 8 else None


def _check_regular(path: Path, not_ours: str) -> None:
    """A one-line KdcamError unless ``path`` is a regular file (a FIFO is never opened: it would block)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise KdcamError(f"{path}: cannot be read ({why(err)})") from None
    if not stat.S_ISREG(mode):
        raise KdcamError(not_ours)


def _checked_version(header: dict[str, Any], path: Path, *, version: int, what: str, fix: str) -> None:
    found = header.get("version")
    if type(found) is not int or found < 1:  # a bool, a string or null is no version
        raise KdcamError(f"{path}: bad {what} header ('version' must be an integer, not "
                         f"{json.dumps(found, default=str)[:40]}); {fix}")
    if found > version:
        raise KdcamError(f"{path}: written by a newer kdcam ({what} format {found}); upgrade kdcam")


def read_json_header(path: str | Path, *, key: str, fmt: str, version: int, what: str, fix: str,
                     max_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """The JSON object stored under ``key`` in ``path``'s safetensors metadata.

    Anything else (not a regular file, not safetensors, another format, a damaged header, a
    header over ``max_bytes``, a ``version`` that is not an integer) raises KdcamError
    "``path``: not a kdcam ``what``; ``fix``" or says what is wrong; a newer format version
    says to upgrade. No tensor is loaded.
    """
    path = Path(path)
    not_ours = f"{path}: not a kdcam {what}; {fix}"
    _check_regular(path, not_ours)
    try:
        size = declared_header_bytes(path)
    except OSError as err:
        raise KdcamError(f"{path}: cannot be read ({why(err)})") from None
    if size is None:
        raise KdcamError(not_ours)
    if size > max_bytes:
        raise KdcamError(f"{path}: not a kdcam {what} (its header declares {size:,} bytes, over the limit of "
                         f"{max_bytes:,}); {fix}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        header = json.loads(meta[key])
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):
        raise KdcamError(not_ours) from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise KdcamError(not_ours)
    _checked_version(header, path, version=version, what=what, fix=fix)
    return header
