"""One stage thread of the live loop, and the log line every stage writes."""

from __future__ import annotations

import sys
import threading
import time

from vcam.live.mailbox import LatestFrame
from vcam.live.profile import StageProfile


class StageThread(threading.Thread):
    """One stage of the live loop: runs ``_work()``, then closes its output mailbox so the
    next stage winds down too. Any error stops the whole loop and is kept in ``error`` for
    the main thread to re-raise."""

    def __init__(self, *, name: str, stop: threading.Event, output: LatestFrame,
                 profile: StageProfile | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._halt = stop
        self._output = output
        self._profile = profile
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as err:  # handed to the main thread, which re-raises it
            self.error = err
            self._halt.set()
        finally:
            self._release()
            self._output.close()
            if self._profile is not None:
                self._profile.threads[self.name] = time.thread_time()

    def _work(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Release what the stage holds (before its output closes)."""


def default_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
