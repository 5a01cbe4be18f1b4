"""The one domain exception of kdcam, and the command-line boundary that reports it.

Everything a user can get wrong (a bad file, a missing runtime, a bad option) raises
``KdcamError`` with a one-line message that says what to do. ``run_cli`` turns it into
that message on stderr and exit code 1, and does the same for the one OS error that is
the machine's state and not a bug: no room left on the disk. Nothing else is caught there.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any


#: the disk (or a quota, or a file size limit) has no room left
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class KdcamError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what went wrong and what to do."""


def run_cli(app: Any) -> None:
    """Run a typer ``app``; a ``KdcamError`` becomes ``kdcam: error: ...`` and exit code 1.

    Ctrl-C, SIGTERM and SIGHUP stop the command where it is, through the ``with`` blocks
    that remove half-written files (``engines.signals``), and exit with 128 + the signal
    number; commands that finish cleanly on a signal (``kdcam start``) handle it themselves.
    """
    import cv2

    from engines.signals import Interrupted, exit_code, raise_on_signals

    # OpenCV's and FFmpeg's own warnings duplicate our one-line errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when a file is opened
    try:
        with raise_on_signals():
            app()
    except KdcamError as err:
        print(f"kdcam: error: {err}", file=sys.stderr)
        sys.exit(1)
    except OSError as err:
        if err.errno not in NO_ROOM:
            raise
        print(f"kdcam: error: cannot write {err.filename or 'a file'} ({err.strerror}); free some space and run it again",
              file=sys.stderr)
        sys.exit(1)
    except Interrupted as stopped:
        print(f"kdcam: stopped by {stopped}", file=sys.stderr)
        sys.exit(exit_code(stopped.signum))
