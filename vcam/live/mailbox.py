"""The one-slot mailbox between the stages of the live loop.

``LatestFrame`` holds three preallocated slots (the writer's, the published one, the
reader's) swapped under a condition variable, so a writer never waits for a reader, a
reader always gets the newest frame, and a frame that was not taken in time is
overwritten (dropped), never queued.
"""

from __future__ import annotations

import threading

import numpy as np



class FrameSlot:
    """One preallocated frame plus where it came from (and, once processed, how)."""

    __slots__ = ("frame", "before", "seq", "pos", "t_capture", "t_ready", "effect", "strength", "split", "model")

    def __init__(self, shape: tuple[int, int, int], *, with_before: bool) -> None:
        self.frame = np.zeros(shape, np.uint8)
        #: the input this frame was made from (only where a preview needs it)
        self.before = np.zeros(shape, np.uint8) if with_before else None
        self.seq = 0  # capture sequence number, 1 = first captured frame
        self.pos = 0  # frame index within the source (a file's frame number)
        self.t_capture = 0.0  # clock time the frame was read
        self.t_ready = 0.0  # clock time the slot was published
        # the controls the frame was processed with (vcam.live.controls.state.Controls)
        self.effect, self.strength, self.split, self.model = True, 1.0, "off", ""


class LatestFrame:
    """A one-slot mailbox of frames over three rotating preallocated slots.

    The writer fills ``writable()`` and calls ``publish()``; the reader's ``take()`` hands
    over the newest published slot, which stays the reader's (so it can be re-sent)
    until its next ``take()``.
    """

    def __init__(self, *, shape: tuple[int, int, int], with_before: bool = False) -> None:
        self._back, self._middle, self._front = (FrameSlot(shape, with_before=with_before) for _ in range(3))
        self._cond = threading.Condition()
        self._published = 0  # how many publishes so far
        self._taken = 0  # the publish count the reader has taken
        self._closed = False
        self._making = False  # the writer has started on the next frame

    def writable(self) -> FrameSlot:
        return self._back

    def making(self) -> None:
        """The writer has started on the next frame; ``publish()`` ends it. A reader may
        wait a moment for a frame being made (``in_the_making``) rather than take an old one."""
        self._making = True

    @property
    def in_the_making(self) -> bool:
        return self._making

    def publish(self) -> None:
        with self._cond:
            self._back, self._middle = self._middle, self._back
            self._published += 1
            self._making = False
            self._cond.notify_all()

    def take(self, *, timeout: float | None = None) -> FrameSlot | None:
        """The newest slot not taken yet, waiting up to ``timeout`` s (0: do not wait);
        None on timeout, or once closed with nothing new."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._published > self._taken or self._closed, timeout):
                return None
            if self._published == self._taken:
                return None
            self._front, self._middle = self._middle, self._front
            self._taken = self._published
            return self._front

    def close(self) -> None:
        """No more frames will come: wakes readers, which still get the last one."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
