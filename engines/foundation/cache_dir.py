"""The per-user cache folder of kdcam (exported graphs, engine files, model timings).

``$KDCAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/kdcam``, else ``~/.cache/kdcam``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("KDCAM_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kdcam"
    return Path(root)
