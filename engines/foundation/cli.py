"""The command-line boundary of every kdcam command (``kdcam``, ``python -m distill.cli``).

``run_cli`` turns a ``KdcamError`` (and every usage error typer finds) into one
``kdcam: error:`` line and exit code 1; ``typer_app`` makes a typer app the way every
kdcam command group is made.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from engines.errors import NO_ROOM, KdcamError, one_line


def typer_app(name: str, help: str) -> Any:
    """A typer app as kdcam's commands all are: help on no arguments, plain tracebacks for bugs."""
    import typer

    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _usage_errors() -> tuple[type[BaseException], type[BaseException]]:
    """typer's (click's) usage error and its "no arguments: show the help" subclass."""
    try:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # typer before 0.20 runs on click itself
        from click.exceptions import ClickException, NoArgsIsHelpError
    return ClickException, NoArgsIsHelpError


def run_cli(app: Any) -> None:
    """Run a typer ``app``; a ``KdcamError`` becomes ``kdcam: error: ...`` and exit code 1,
    and so does every usage error typer finds before our code runs (an unknown option, a
    value of the wrong type, a missing argument): one handler, one line, exit 1.

    Ctrl-C, SIGTERM and SIGHUP stop the command where it is, through the ``with`` blocks
    that remove half-written files (``engines.foundation.signals``), and exit with 128 + the signal
    number; commands that finish cleanly on a signal (``kdcam start``) handle it themselves.
    """
    import cv2

    from engines.foundation.signals import Interrupted, exit_code, raise_on_signals

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
        print(
            f"kdcam: error: cannot write {err.filename or 'a file'} ({err.strerror}); free some space and run it again",
            file=sys.stderr,
        )
        sys.exit(1)
    except Interrupted as stopped:
        print(f"kdcam: stopped by {stopped}", file=sys.stderr)
        sys.exit(exit_code(stopped.signum))
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(code) in a command, or 0 as typer would
