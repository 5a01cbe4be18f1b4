"""On demand: sharpen only while an app watches the virtual camera.

``Demand`` is the state: *active* (the real camera open, every frame sharpened) or *idle*
(the camera released, so its light goes off; nothing sharpened; the sender publishes a still
frame at ``STILL_FPS``). It follows the number of apps that hold the virtual camera's device
open (``vcam.media.device_readers``), with two delays:

- an open must last ``WAKE_AFTER_S`` before the camera starts, so a brief open (a browser
  listing its devices opens and closes each one at once) never starts it;
- the last close must last ``IDLE_AFTER_S`` before the camera stops, so an app that closes and
  reopens the device (switching resolutions, a call that starts) never sees a pause, and an
  open that woke the camera holds it at most that long after it ends.

``DemandWatch`` is the thread that reads the device's events into ``Demand``. If the node
goes away or its permissions change, it says so in one line and the session stays active for
the rest of the run (always on). ``Demand`` counts the seconds spent in each state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: how long an app must hold the device open before the camera starts
WAKE_AFTER_S = 0.25
#: how long the device must be unwatched before the camera stops
IDLE_AFTER_S = 3.0
#: the still frame's rate while idle (browsers list an exclusive_caps=1 device only while it gets frames)
STILL_FPS = 2.0
#: how often the watch thread looks at the device's events (and at the delays)
POLL_S = 0.05
#: the pyvirtualcam backends whose device is a node kdcam can watch (Linux only)
WATCHABLE_BACKENDS = ("v4l2loopback",)


class Demand:
    """Active or idle, from the number of readers, with the delays above; thread-safe. Its clock
    is the live loop's (``woke_at`` is compared with the frames' capture times)."""

    def __init__(self, *, wake_after: float = WAKE_AFTER_S, idle_after: float = IDLE_AFTER_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._wake_after = wake_after
        self._idle_after = idle_after
        self._clock = clock
        self._cond = threading.Condition()
        self._active = True  # a session starts with its camera open (its start-up checks opened it)
        self._readers = 0
        self._since = clock()  # when the reader count last went between zero and some
        self._t_state = self._since
        self._spent = {True: 0.0, False: 0.0}
        self._always_on = False
        self.woke_at = self._since  # the clock time of the latest wake-up
        self.wakes = 0
        self.sleeps = 0

    @property
    def active(self) -> bool:
        return self._active

    def readers(self, count: int) -> None:
        """The number of apps that hold the device open now; applies the delays."""
        with self._cond:
            now = self._clock()
            if (count > 0) != (self._readers > 0):
                self._since = now
            self._readers = count
            if self._always_on:
                return
            held = now - self._since
            if not self._active and count > 0 and held >= self._wake_after:
                self._set(True, now)
            elif self._active and count == 0 and held >= self._idle_after:
                self._set(False, now)

    def always_on(self) -> None:
        """Stay active from now on (the device cannot be watched any more)."""
        with self._cond:
            self._always_on = True
            if not self._active:
                self._set(True, self._clock())

    def _set(self, active: bool, now: float) -> None:
        self._spent[self._active] += now - self._t_state
        self._t_state = now
        self._active = active
        if active:
            self.woke_at = now
            self.wakes += 1
        else:
            self.sleeps += 1
        self._cond.notify_all()

    def wait(self, *, active: bool, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the state ``active``; returns whether it holds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == active, timeout)

    def seconds(self) -> tuple[float, float]:
        """(active, idle) seconds so far."""
        with self._cond:
            spent = dict(self._spent)
            spent[self._active] += self._clock() - self._t_state
            return spent[True], spent[False]


class DemandWatch(threading.Thread):
    """Feeds ``demand`` from ``readers`` (a ``DeviceReaders``) until ``stop``; closes ``readers``."""

    def __init__(self, *, demand: Demand, readers, stop: threading.Event, log: Callable[[str], None]) -> None:
        super().__init__(name="kdcam-on-demand", daemon=True)
        self._demand = demand
        self._readers = readers
        self._halt = stop
        self._log = log

    def run(self) -> None:
        demand, readers = self._demand, self._readers
        try:
            while not self._halt.is_set():
                try:
                    fault = readers.poll(POLL_S)
                except OSError as err:
                    fault = f"its events could not be read ({err.strerror or err})"
                if fault is not None:
                    self._log(f"kdcam: on demand: {fault}; always on from now")
                    demand.always_on()
                    return
                demand.readers(readers.count)
        finally:
            readers.close()


def start_on_demand(*, mode: bool | None, device: str | None, backend: str | None, stop: threading.Event,
                    log: Callable[[str], None], system: str | None = None) -> tuple[Demand | None, DemandWatch | None]:
    """The on-demand state of a session and its watch thread (started), or (None, None) when
    the session is always on. ``mode``: True (``--on-demand``), False (``--always-on``), None
    (on where it works: Linux with a v4l2loopback device); ``device`` is the virtual camera's
    device path (None without one). Where it cannot work, says why in one line (unless the
    session publishes no virtual camera and on demand was not asked for)."""
    import platform

    from engines.errors import KdcamError

    if mode is False:
        return None, None
    if device is None:
        if mode:
            log("kdcam: on demand watches the virtual camera, and this session publishes none (--no-vcam): "
                "always on")
        return None, None
    system = system or platform.system()
    if system != "Linux" or backend not in WATCHABLE_BACKENDS:
        log(f"kdcam: on demand needs a v4l2loopback device on Linux, where kdcam sees apps open it "
            f"(this is {backend or 'no backend'} on {system}): always on")
        return None, None
    try:
        from vcam.media.device_readers import DeviceReaders

        readers = DeviceReaders(device)
    except KdcamError as err:
        log(f"kdcam: on demand: {err}; always on")
        return None, None
    demand = Demand(wake_after=WAKE_AFTER_S, idle_after=IDLE_AFTER_S)
    watch = DemandWatch(demand=demand, readers=readers, stop=stop, log=log)
    watch.start()
    log(f"kdcam: on demand: the camera runs while an app has {device} open (--always-on to keep it running)")
    return demand, watch
