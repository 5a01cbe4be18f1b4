"""Capture: read the source on its own thread and keep only its newest frame (``mailbox``).

A camera that disappears is reopened with backoff while the last frame keeps being sent.
On demand (``vcam.live.on_demand``), the camera is released while no app watches (its light
goes off) and opened again when one does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from engines.errors import KdcamError
from vcam.live.mailbox import LatestFrame
from vcam.live.on_demand import Demand
from vcam.live.profile import StageProfile
from vcam.live.sources import FrameSource, SourceFactory, fit_into
from vcam.live.stage import StageThread
from vcam.live.stats import LiveStats


class CaptureThread(StageThread):
    """Reads the source as fast as it gives frames and publishes each into ``mailbox``.

    A source that stops giving frames (unplugged, a stream that ends or errors) is
    reopened through ``factory`` with backoff while the sender keeps repeating the last
    frame; a finite source (a file without --loop) ends the run instead.
    """

    def __init__(
        self,
        *,
        source: FrameSource,
        factory: SourceFactory,
        mailbox: LatestFrame,
        stats: LiveStats,
        stop: threading.Event,
        log: Callable[[str], None],
        backoff: tuple[float, float] = (0.25, 5.0),
        demand: Demand | None = None,
        profile: StageProfile | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(name="kdcam-capture", stop=stop, output=mailbox, profile=profile)
        self._source: FrameSource | None = source
        self._factory = factory
        self._mailbox = mailbox
        self._stats = stats
        self._log = log
        self._backoff = backoff
        self._demand = demand
        self._clock = clock

    def _release(self) -> None:
        if self._source is not None:
            self._source.close()

    def _staging_for(self, source: FrameSource) -> np.ndarray | None:
        # Where the source writes: straight into the mailbox slot when the sizes match,
        # else a staging frame of the source's own size that fit_into() converts.
        shape = self._mailbox.writable().frame.shape
        if (source.info.height, source.info.width) == shape[:2]:
            return None
        return np.empty((source.info.height, source.info.width, 3), np.uint8)

    def _work(self) -> None:
        source = self._source
        staging = self._staging_for(source)
        mailbox, stats, clock = self._mailbox, self._stats, self._clock
        seq = 0
        demand, profile, cpu = self._demand, self._profile, time.thread_time
        while not self._halt.is_set():
            if demand is not None and not demand.active:
                source = self._replace(source, self._sleep)
                if source is None:
                    return
                staging = self._staging_for(source)
                continue
            slot = mailbox.writable()
            t0 = cpu()
            frame = source.read(slot.frame if staging is None else staging)
            t1 = cpu()
            if frame is None:
                if source.finite:
                    self._log(f"kdcam: {source.info.name} ended")
                    return
                source = self._replace(source, self._reopen)
                if source is None:
                    return
                staging = self._staging_for(source)
                continue
            if frame is not slot.frame:
                fit_into(frame, slot.frame)
            if profile is not None:
                profile.add("decode", t1 - t0)
                profile.add("resize", cpu() - t1)
            slot.t_capture = clock()
            slot.pos = source.pos
            seq += 1
            slot.seq = seq
            mailbox.publish()
            stats.captured = seq

    def _replace(self, source: FrameSource, opener: Callable[[], FrameSource | None]) -> FrameSource | None:
        """Close ``source`` and take the one ``opener`` gives (None: the run stops meanwhile)."""
        source.close()
        self._source = None
        self._source = opener()
        return self._source

    def _reopen(self) -> FrameSource | None:
        delay, longest = self._backoff
        self._log(
            "kdcam: the source stopped giving frames; reconnecting (the virtual camera repeats the last frame "
            "meanwhile)"
        )
        while not self._halt.wait(delay):
            try:
                source = self._factory()
            except KdcamError as err:
                delay = min(delay * 2, longest)
                self._log(f"kdcam: reconnect failed ({err}); retrying in {delay:g} s")
                continue
            self._stats.reconnects += 1
            self._log(f"kdcam: reconnected: {source.info.name} {source.info.width}x{source.info.height}")
            return source
        return None

    def _sleep(self) -> FrameSource | None:
        """Idle: the camera is released; wait for an app, then open it again, retrying with backoff
        (said once) while the still frame goes out. None when the run stops meanwhile."""
        demand, halt = self._demand, self._halt
        self._log("kdcam: on demand: no app is watching; the camera is released (a still frame goes out)")
        said = False
        while not halt.is_set():
            if not demand.wait(active=True, timeout=0.1):
                continue
            delay, longest = self._backoff
            while not halt.is_set() and demand.active:
                try:
                    source = self._factory()
                except KdcamError as err:
                    if not said:
                        self._log(f"kdcam: on demand: an app is watching, but the camera did not open ({err}); "
                                  "retrying with backoff (the still frame goes out meanwhile)")
                        said = True
                    halt.wait(delay)
                    delay = min(delay * 2, longest)
                    continue
                self._log(f"kdcam: on demand: an app is watching; {source.info.name} is open again")
                return source
        return None
