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


#: how much of a value the user typed an error message repeats (a 50 MB --engine is not echoed whole)
MAX_SHOWN = 80


def shown(value: object) -> str:
    """``repr(value)`` for an error message, cut to ``MAX_SHOWN`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN - 20]}... ({len(text):,} characters)"


def _usage_errors() -> tuple[type[BaseException], type[BaseException]]:
    """typer's (click's) usage error and its "no arguments: show the help" subclass."""
    try:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # typer before 0.20 runs on click itself
        from click.exceptions import ClickException, NoArgsIsHelpError
    return ClickException, NoArgsIsHelpError


#: the longest error line printed: past it, the middle is cut (its start says what, its end what to do)
MAX_ERROR_LINE = 600


def one_line(text: object) -> str:
    """``text`` on one line, at most ``MAX_ERROR_LINE`` characters."""
    line = " ".join(str(text).split())
    if len(line) <= MAX_ERROR_LINE:
        return line
    return f"{line[:MAX_ERROR_LINE // 2]} [... {len(line) - MAX_ERROR_LINE:,} characters cut ...] {line[-MAX_ERROR_LINE // 3:]}"


def run_cli(app: Any) -> None:
    """Run a typer ``app``; a ``KdcamError`` becomes ``kdcam: error: ...`` and exit code 1,
    and so does every usage error typer finds before our code runs (an unknown option, a
    value of the wrong type, a missing argument): one handler, one line, exit 1.

    Ctrl-C, SIGTERM and SIGHUP stop the command where it is, through the ``with`` blocks
    that remove half-written files (``engines.signals``), and exit with 128 + the signal
    number; commands that finish cleanly on a signal (``kdcam start``) handle it themselves.
    """
    import cv2

    from engines.signals import Interrupted, exit_code, raise_on_signals

    # OpenCV's and FFmpeg's own warnings duplicate our one-line errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when a file is opened
    usage_error, no_args_help = _usage_errors()
    try:
        with raise_on_signals():
            code = app(standalone_mode=False)
    except no_args_help as err:  # `kdcam` or `kdcam ctl` alone: the help, as before
        err.show()
        sys.exit(err.exit_code)
    except usage_error as err:
        ctx = getattr(err, "ctx", None)
        hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
        print(f"kdcam: error: {one_line(err.format_message()).rstrip('.')}{hint}", file=sys.stderr)
        sys.exit(1)
    except KdcamError as err:
        print(f"kdcam: error: {one_line(err)}", file=sys.stderr)
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
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(code) in a command, or 0 as typer would
