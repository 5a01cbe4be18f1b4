"""Who has the virtual camera open: the open and close events of its device node (inotify).

The kernel reports every open and every last close of a file (a device node included) to an
inotify watch, whoever the process is. ``DeviceReaders`` counts them. Two identical events
that were not read in between are merged into one, so two apps opening the device in the
same instant count once; each batch of events is therefore checked against ``/proc`` (every
open file of every process, ``openers``): where every process could be read (as root, in a
container), that count is the truth; where some could not (another user's processes, a
sandboxed browser's), the larger of the two is taken, so an app is never missed and a merged
close can at worst keep the camera running.

kdcam's own writer holds the device open already when the watch starts: the opens its own
process holds then are left out of every count.

A node that goes away (unlinked, replaced, moved) or whose owner or permissions change is a
fault, said in one line by ``poll``: the caller then stops relying on the count.

inotify is Linux's; ``inotify_simple`` is the library that wraps it.
"""

from __future__ import annotations

import os
from pathlib import Path

from engines.errors import KdcamError


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_rdev, st.st_mode, st.st_uid, st.st_gid


def openers(path: Path, *, proc: Path = Path("/proc"), pid: int | None = None) -> tuple[int, int]:
    """(open files pointing at ``path``, processes whose open files could not be read), over
    every process or only ``pid``."""
    target = os.path.realpath(path)
    try:
        pids = [str(pid)] if pid is not None else [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return 0, 1
    count = blind = 0
    for name in pids:
        try:
            fds = os.scandir(proc / name / "fd")
        except FileNotFoundError:  # it ended meanwhile
            continue
        except OSError:  # another user's, or not dumpable
            blind += 1
            continue
        with fds:
            for fd in fds:
                try:
                    count += os.readlink(fd.path) == target
                except OSError:
                    continue
    return count, blind


class DeviceReaders:
    """The number of opens other processes hold on ``path``, kept up to date by ``poll``."""

    def __init__(self, path: Path, *, proc: Path | None = Path("/proc")) -> None:
        from inotify_simple import INotify, flags

        self.path = Path(path)
        self._flags = flags
        self._proc = proc
        try:
            self._identity = _identity(os.stat(self.path))
        except OSError as err:
            raise KdcamError(f"cannot watch {self.path} for apps that open it: {err.strerror or err}") from None
        mask = flags.OPEN | flags.CLOSE_WRITE | flags.CLOSE_NOWRITE | flags.ATTRIB | flags.DELETE_SELF | flags.MOVE_SELF
        try:  # inotify_init fails too, past the user's limit of inotify instances (EMFILE)
            self._inotify = INotify()
        except OSError as err:
            raise KdcamError(f"cannot watch {self.path} for apps that open it: {err.strerror or err}") from None
        try:
            self._inotify.add_watch(self.path, mask)
        except OSError as err:
            self._inotify.close()
            raise KdcamError(f"cannot watch {self.path} for apps that open it: {err.strerror or err}") from None
        self._own = openers(self.path, proc=proc, pid=os.getpid())[0] if proc is not None else 0
        self._events = 0  # the count from inotify's events alone
        self.count = 0
        self._check_proc()

    def _check_proc(self) -> None:
        if self._proc is None:
            self.count = self._events
            return
        total, blind = openers(self.path, proc=self._proc)
        seen = max(0, total - self._own)
        self.count = seen if blind == 0 else max(seen, self._events)
        self._events = self.count

    def poll(self, timeout_s: float) -> str | None:
        """Wait up to ``timeout_s`` for events and apply them to ``count``; returns a fault (the
        node went away or its permissions changed), in words, or None."""
        f = self._flags
        events = self._inotify.read(timeout=max(0, round(timeout_s * 1000)))
        for event in events:
            mask = event.mask
            if mask & (f.DELETE_SELF | f.MOVE_SELF | f.IGNORED):
                return f"{self.path} went away"
            if mask & f.ATTRIB:  # an unlink, a chmod or a chown shows here first
                fault = self._changed()
                if fault is not None:
                    return fault
            if mask & f.OPEN:
                self._events += 1
            if mask & (f.CLOSE_WRITE | f.CLOSE_NOWRITE):
                self._events = max(0, self._events - 1)  # a reader from before the watch may close uncounted
        if events:
            self._check_proc()
        return None

    def _changed(self) -> str | None:
        try:
            now = _identity(os.stat(self.path))
        except OSError:
            return f"{self.path} went away"
        if now[:3] != self._identity[:3]:
            return f"{self.path} was replaced by another file"
        if now[3:] != self._identity[3:]:
            return f"the owner or permissions of {self.path} changed"
        return None

    def close(self) -> None:
        self._inotify.close()
