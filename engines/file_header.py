"""The JSON header that kdcam keeps in the metadata of its own safetensors files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from engines.errors import KdcamError


def read_json_header(path: str | Path, *, key: str, fmt: str, version: int, what: str, fix: str) -> dict[str, Any]:
    """The JSON object stored under ``key`` in ``path``'s safetensors metadata.

    Anything else (not safetensors, another format, a damaged header) raises KdcamError
    "``path``: not a kdcam ``what``; ``fix``"; a newer format version says to upgrade.
    No tensor is loaded.
    """
    path = Path(path)
    not_ours = f"{path}: not a kdcam {what}; {fix}"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        header = json.loads(meta[key])
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):
        raise KdcamError(not_ours) from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise KdcamError(not_ours)
    if header.get("version", 0) > version:
        raise KdcamError(f"{path}: written by a newer kdcam ({what} format {header['version']}); upgrade kdcam")
    return header
