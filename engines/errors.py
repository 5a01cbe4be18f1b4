"""The one domain exception of kdcam, and the command-line boundary that reports it.

Everything a user can get wrong (a bad file, a missing runtime, a bad option) raises
``KdcamError`` with a one-line message that says what to do. ``run_cli`` turns it into
that message on stderr and exit code 1; nothing else is caught there.
"""

from __future__ import annotations

import sys
from typing import Any


class KdcamError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what went wrong and what to do."""


def run_cli(app: Any) -> None:
    """Run a typer ``app``; a ``KdcamError`` becomes ``kdcam: error: ...`` and exit code 1."""
    import cv2

    # OpenCV's own warnings duplicate our one-line errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        app()
    except KdcamError as err:
        print(f"kdcam: error: {err}", file=sys.stderr)
        sys.exit(1)
