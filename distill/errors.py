"""The one domain exception of kdcam.

Everything a user can get wrong (a bad file, a missing runtime, a bad option) raises
``KdcamError`` with a one-line message that says what to do. The CLI turns it into that
message on stderr and exit code 1; nothing else is caught there.
"""


class KdcamError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what went wrong and what to do."""
