"""The one domain exception of kdcam, and how its message is shown.

Everything a user can get wrong (a bad file, a missing runtime, a bad option) raises
``KdcamError`` with a one-line message that says what to do. The command-line boundary
that reports it (``engines.foundation.cli.run_cli``) turns it into that message on stderr
and exit code 1, and does the same for the one OS error that is the machine's state and
not a bug: no room left on the disk (``NO_ROOM``).
"""

from __future__ import annotations

import errno


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


#: the longest error line printed: past it, the middle is cut (its start says what, its end what to do)
MAX_ERROR_LINE = 600


def one_line(text: object) -> str:
    """``text`` on one line, at most ``MAX_ERROR_LINE`` characters."""
    line = " ".join(str(text).split())
    if len(line) <= MAX_ERROR_LINE:
        return line
    cut = len(line) - MAX_ERROR_LINE
    return f"{line[: MAX_ERROR_LINE // 2]} [... {cut:,} characters cut ...] {line[-MAX_ERROR_LINE // 3 :]}"
