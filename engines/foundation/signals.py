"""Ctrl-C, SIGTERM and SIGHUP (a closed terminal): finish cleanly, then exit as shells expect.

Two ways to stop, one for each kind of command:

* ``stop_on_signals(stop)`` (the live loop): the signal only sets ``stop``; every stage
  ends normally, the recording is finalized, the summary printed;
* ``raise_on_signals()`` (every other command; ``engines.foundation.cli.run_cli`` sets it up): the
  signal raises ``Interrupted`` where the program is, so ``with`` blocks undo half-written
  files.

Either way the exit code is ``128 + signal number`` (130 for Ctrl-C, 143 for SIGTERM,
129 for SIGHUP): ``exit_code(signum)``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: the signals a user or a session manager sends to stop a program
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(BaseException):
    """A stop signal arrived (a BaseException, like KeyboardInterrupt: no ``except Exception`` eats it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    return 128 + int(signum)


class SignalBox:
    """The first stop signal received (None until one arrives)."""

    signum: int | None = None


@contextlib.contextmanager
def _handlers(handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can take signals; elsewhere this is a no-op
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[SignalBox]:
    """While inside, a stop signal sets ``stop``; the box says which signal came first."""
    box = SignalBox()

    def handler(signum, _frame) -> None:
        if box.signum is None:
            box.signum = signum
        stop.set()

    with _handlers(handler):
        yield box


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """While inside, a stop signal raises ``Interrupted`` in the main thread."""

    def handler(signum, _frame) -> None:
        raise Interrupted(signum)

    with _handlers(handler):
        yield
