"""The paced sender: one frame per tick at the target fps, never a freeze, never a queue.

At every tick it sends the newest processed frame; when processing fell behind it
repeats the last one, so the virtual camera (and a recording) keeps its frame rate.

The tick grid keeps the exact long-run rate but slides its phase toward the moment
processed frames arrive: without that, a frame would wait a random 0..1 frame period for
its tick (about +17 ms on average at 30 fps). Once a second the grid moves so that nine in
ten fresh frames arrive a small margin before their tick, when the source delivers about
one fresh frame per tick, or fewer at a steady phase (a 10 or 15 fps file on a 30 fps
camera: every fresh frame waits about as long); each move is at most a quarter period, so
the rate stays within a percent of the target even while it tracks a camera whose clock
drifts. Sources whose frames land all over the period (24 fps into 30) leave it alone.

A frame that is being made when its tick comes (processing ran a little long) is waited
for, up to a third of a period, and sent late by that much rather than a whole period
later as a repeat would make it; the next tick stays on the grid, so the rate holds.

On demand (``vcam.live.on_demand``), while no app watches, it sends a still frame instead (the
last frame, dimmed and labelled: ``vcam.live.still_frame``) at ``STILL_FPS``, to the sinks only
(a recording skips the idle time), until the first frame captured after the wake-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from vcam.live.mailbox import FrameSlot, LatestFrame
from vcam.live.on_demand import STILL_FPS, Demand
from vcam.live.profile import StageProfile
from vcam.live.still_frame import draw_still
from vcam.live.stats import LiveStats

#: a tick with no new frame waits up to 1/GRACE_PERIODS of a period for one being made
GRACE_PERIODS = 3
Sink = Callable[[np.ndarray], None]
Observer = Callable[[FrameSlot, bool], None]


class PhaseLock:
    """Collects how long fresh frames waited for their tick and says how far to move
    the grid (positive: earlier)."""

    def __init__(self, *, fps: float, margin_s: float | None = None, quantile: float = 0.1) -> None:
        self._period = 1.0 / fps
        self._margin = min(0.003, self._period / 8) if margin_s is None else margin_s
        self._ticks_per_window = max(1, round(fps))
        self._offsets = np.zeros(self._ticks_per_window, np.float64)
        self._quantile = quantile
        self._fresh = 0
        self._ticks = 0

    def tick(self, wait_s: float | None) -> float:
        """Record one tick (``wait_s``: how long its fresh frame waited, None for a
        repeat); returns the shift to apply to the next tick, usually 0."""
        if wait_s is not None:
            period = self._period
            # A wait over half a period most likely means the frame just missed the
            # previous tick: count it as late (negative) so the grid moves later.
            self._offsets[self._fresh] = wait_s if wait_s < period / 2 else wait_s - period
            self._fresh += 1
        self._ticks += 1
        if self._ticks < self._ticks_per_window:
            return 0.0
        shift = 0.0
        n = self._fresh
        if n >= 2:
            fresh = self._offsets[:n]
            lo, hi = int(self._quantile * (n - 1)), int((1.0 - self._quantile) * (n - 1))
            fresh.partition((lo, hi))  # in place: no allocation in the hot path
            steady = fresh[hi] - fresh[lo] <= self._period / 4
            if n >= 0.9 * self._ticks or steady:
                limit = self._period / 4
                shift = min(max(fresh[lo] - self._margin, -limit), limit)
        self._fresh = self._ticks = 0
        return shift


class PacedSender:
    """Sends the newest frame of ``mailbox`` to every sink at ``fps`` until stopped."""

    def __init__(
        self,
        *,
        fps: float,
        sinks: Sequence[Sink],
        stats: LiveStats,
        observers: Sequence[Observer] = (),
        demand: Demand | None = None,
        profile: StageProfile | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._period = 1.0 / fps
        self._profile = profile
        self._demand = demand
        self._still: np.ndarray | None = None  # made on the first pause, then reused
        self._grace = self._period / GRACE_PERIODS
        self._sinks = tuple(sinks)
        self._observers = tuple(observers)
        self._stats = stats
        self._lock = PhaseLock(fps=fps)
        self._clock = clock

    def _first_frame(self, mailbox: LatestFrame, stop: threading.Event) -> FrameSlot | None:
        while not stop.is_set():
            slot = mailbox.take(timeout=0.1)
            if slot is not None or mailbox.closed:
                return slot
        return None

    def run(
        self,
        *,
        mailbox: LatestFrame,
        stop: threading.Event,
        max_frames: int | None = None,
        duration: float | None = None,
    ) -> int:
        """Send until ``stop``, ``max_frames`` sends, ``duration`` seconds after the first
        send, or the mailbox closing; returns the number of frames sent."""
        slot = self._first_frame(mailbox, stop)
        if slot is None:
            return 0
        clock, period, stats, lock, grace = self._clock, self._period, self._stats, self._lock, self._grace
        sinks, observers = self._sinks, self._observers
        limit = max_frames if max_frames is not None else -1
        next_tick = clock()
        t_end = next_tick + duration if duration is not None else float("inf")
        fresh = True
        wait = next_tick - slot.t_ready
        sent = 0
        profile, cpu = self._profile, time.thread_time
        while True:
            t0 = cpu()
            for sink in sinks:
                sink(slot.frame)
            t1 = cpu()
            now = clock()
            stats.on_sent(now - slot.t_capture if fresh else None)
            t2 = cpu()
            for observe in observers:
                observe(slot, fresh)
            if profile is not None:
                profile.add("send", t1 - t0)
                profile.add("stats", t2 - t1)
                profile.add("record", cpu() - t2)
            sent += 1
            if sent == limit or now >= t_end:
                return sent
            if self._demand is not None and not self._demand.active:
                newer = self._pause(mailbox=mailbox, stop=stop, last=slot, t_end=t_end)
                if newer is None:
                    return sent
                slot, fresh, wait = newer, True, 0.0
                next_tick = clock()
                continue
            next_tick += period - lock.tick(wait if fresh else None)
            if next_tick < now - period:
                next_tick = now + period  # fell far behind (a stall): restart the grid, do not burst
            if stop.wait(max(0.0, next_tick - clock())):
                return sent
            woke = clock()
            newer = mailbox.take(timeout=0)
            if newer is None and mailbox.in_the_making:
                newer = mailbox.take(timeout=grace)  # late by a little beats late by a period
            if newer is not None:
                slot, fresh = newer, True
                wait = woke - newer.t_ready  # negative: it came in the grace, after its tick
            elif mailbox.closed:
                return sent  # the source ended and its last frame went out
            else:
                fresh = False

    def _pause(self, *, mailbox: LatestFrame, stop: threading.Event, last: FrameSlot, t_end: float) -> FrameSlot | None:
        """Idle: the still frame at STILL_FPS until a frame captured after the wake-up comes (one
        made before the pause is dropped); returns it, or None when the run ends meanwhile."""
        demand, clock, sinks, stats = self._demand, self._clock, self._sinks, self._stats
        if self._still is None:
            self._still = np.empty_like(last.frame)
        still = draw_still(self._still, last.frame)
        period = 1.0 / STILL_FPS
        next_send = clock()
        while not stop.is_set():
            now = clock()
            if now >= t_end:
                return None
            if now >= next_send:
                for sink in sinks:
                    sink(still)
                stats.stills += 1
                next_send = now + period
            newer = mailbox.take(timeout=max(0.0, min(next_send, t_end) - clock()))
            if newer is not None and demand.active and newer.t_capture >= demand.woke_at:
                return newer
            if newer is None and mailbox.closed:
                return None
        return None
