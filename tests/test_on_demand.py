"""On demand: the camera runs only while an app holds the virtual camera open.

A regular file stands in for the v4l2loopback device node (inotify reports opens and closes
of files as of device nodes), and a fake camera records when it is opened and released. The
delays themselves are checked on a fake clock; the live tests wait for what must happen
(with a generous deadline), never time it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from live_fixtures import InvertEngine, NumberedSource

from vcam.live.controls.state import Controls
from vcam.live.on_demand import Demand, DemandWatch, start_on_demand
from vcam.live.pipeline import run_loop
from vcam.live.stats import LiveStats
from vcam.live.still_frame import draw_still

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="on demand watches a device node with Linux's inotify")

SHAPE = (48, 64, 3)


def wait_for(condition, *, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ----------------------------------------------------------------------------- the delays, on a fake clock


def test_an_open_wakes_the_camera_after_the_wake_delay_and_the_last_close_idles_it_after_the_idle_delay():
    clock = Clock()  # steps that are exact in binary, so the delays are met exactly
    demand = Demand(wake_after=0.25, idle_after=3.0, clock=clock)
    assert demand.active, "a session starts active: its start-up opened the camera"
    clock.t += 2.5
    demand.readers(0)
    assert demand.active
    clock.t += 0.5
    demand.readers(0)
    assert not demand.active, "idle once nobody watched for the idle delay"
    clock.t += 10
    demand.readers(1)  # an app opens the device
    clock.t += 0.125
    demand.readers(1)
    assert not demand.active
    clock.t += 0.125
    demand.readers(1)
    assert demand.active and demand.woke_at == clock.t, "active 0.25 s after the open (well within 1 s)"
    clock.t += 2.0
    demand.readers(0)  # the app closes it
    clock.t += 2.5
    demand.readers(0)
    assert demand.active, "a close is not an idle until the idle delay has passed"
    clock.t += 0.5
    demand.readers(0)
    assert not demand.active
    assert demand.seconds() == (3.0 + 5.0, 10.0 + 0.25)
    assert demand.wakes == 1 and demand.sleeps == 2


def test_a_brief_open_never_wakes_the_camera_and_a_reopen_within_the_idle_delay_never_idles_it():
    clock = Clock()
    demand = Demand(wake_after=0.25, idle_after=3.0, clock=clock)
    clock.t += 3.0
    demand.readers(0)
    assert not demand.active
    for _ in range(5):  # a browser listing devices: open, close, a moment apart
        demand.readers(1)
        clock.t += 0.1
        demand.readers(0)
        clock.t += 1.0
        demand.readers(0)
    assert not demand.active and demand.wakes == 0
    demand.readers(2)
    clock.t += 0.3
    demand.readers(2)
    assert demand.active
    for _ in range(3):  # an app that closes and reopens the device (a new resolution)
        demand.readers(0)
        clock.t += 1.0
        demand.readers(1)
        clock.t += 1.0
        demand.readers(1)
    assert demand.active and demand.sleeps == 1


def test_always_on_wakes_and_stays_awake():
    clock = Clock()
    demand = Demand(wake_after=0.25, idle_after=1.0, clock=clock)
    clock.t += 1.0
    demand.readers(0)
    assert not demand.active
    demand.always_on()
    assert demand.active
    clock.t += 100
    demand.readers(0)
    assert demand.active


# ----------------------------------------------------------------------------- the device's readers


@pytest.mark.parametrize("proc", [True, False], ids=["events-and-proc", "events-alone"])
def test_readers_count_opens_and_closes_of_the_node(tmp_path, proc):
    """With /proc, two opens in one instant (merged by inotify into one event) count as two;
    from the events alone, opens are counted as they are read."""
    from vcam.media.device_readers import DeviceReaders

    node = tmp_path / "video10"
    node.write_bytes(b"")
    readers = DeviceReaders(node, proc=Path("/proc") if proc else None)

    def settles_at(n: int) -> bool:
        return wait_for(lambda: readers.poll(0.05) is None and readers.count == n, timeout=5)

    try:
        assert readers.count == 0
        first = open(node, "rb")
        if not proc:
            assert settles_at(1)
        second = open(node, "rb")
        assert settles_at(2)
        first.close()
        assert settles_at(1)
        second.close()
        assert settles_at(0)
    finally:
        readers.close()


def test_readers_start_from_the_apps_that_already_watch_and_leave_out_kdcams_own_open(tmp_path):
    from vcam.media.device_readers import DeviceReaders, openers

    node = tmp_path / "video10"
    node.write_bytes(b"")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'rb'); print('open', flush=True); sys.stdin.read()",
         str(node)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        assert openers(node, pid=holder.pid) == (1, 0)
        assert openers(node)[0] == 1
        with open(node, "rb"):  # kdcam's own writer, open before the watch starts
            readers = DeviceReaders(node)
            try:
                assert readers.count == 1, "the app that already watches, not kdcam's own open"
            finally:
                readers.close()
    finally:
        holder.communicate("", timeout=10)


@pytest.mark.parametrize("change", ["unlink", "chmod", "replace"])
def test_a_node_that_goes_away_or_changes_permissions_is_a_fault(tmp_path, change):
    from vcam.media.device_readers import DeviceReaders

    node = tmp_path / "video10"
    node.write_bytes(b"")
    os.chmod(node, 0o660)
    readers = DeviceReaders(node)
    try:
        if change == "unlink":
            node.unlink()
        elif change == "chmod":
            os.chmod(node, 0o600)
        else:
            other = tmp_path / "other"
            other.write_bytes(b"")
            other.replace(node)
        faults = []
        wait_for(lambda: faults.append(readers.poll(0.05)) or faults[-1] is not None, timeout=5)
        assert faults[-1] is not None
        assert {"unlink": "went away", "chmod": "permissions", "replace": "went away"}[change] in faults[-1] or (
            change == "replace" and "replaced" in faults[-1])
    finally:
        readers.close()


def test_a_fault_is_one_line_and_the_session_stays_always_on(tmp_path):
    from vcam.media.device_readers import DeviceReaders

    node = tmp_path / "video10"
    node.write_bytes(b"")
    demand = Demand(wake_after=0.05, idle_after=0.2)
    lines: list[str] = []
    stop = threading.Event()
    watch = DemandWatch(demand=demand, readers=DeviceReaders(node), stop=stop, log=lines.append)
    watch.start()
    try:
        assert wait_for(lambda: not demand.active), "nobody watches: idle"
        node.chmod((node.stat().st_mode & 0o777) ^ 0o004)  # others' read flipped, whatever the umask made it
        assert wait_for(lambda: demand.active and not watch.is_alive())
        assert len(lines) == 1 and "permissions" in lines[0] and "always on" in lines[0]
    finally:
        stop.set()
        watch.join(5)


def test_where_on_demand_cannot_work_it_says_why_once():
    lines: list[str] = []
    stop = threading.Event()
    assert start_on_demand(mode=None, device=None, backend=None, stop=stop, log=lines.append) == (None, None)
    assert lines == [], "no virtual camera and nobody asked: nothing to say"
    assert start_on_demand(mode=True, device=None, backend=None, stop=stop, log=lines.append) == (None, None)
    assert len(lines) == 1 and "--no-vcam" in lines[0] and "always on" in lines[0]
    lines.clear()
    assert start_on_demand(mode=None, device="OBS Virtual Camera", backend="obs", stop=stop, log=lines.append,
                           system="Windows") == (None, None)
    assert len(lines) == 1 and "v4l2loopback" in lines[0] and "always on" in lines[0]
    lines.clear()
    assert start_on_demand(mode=False, device="/dev/video10", backend="v4l2loopback", stop=stop,
                           log=lines.append) == (None, None)
    assert lines == [], "--always-on was asked for"
    assert start_on_demand(mode=None, device="/nonexistent/video10", backend="v4l2loopback", stop=stop,
                           log=lines.append, system="Linux") == (None, None)
    assert len(lines) == 1 and "/nonexistent/video10" in lines[0] and "always on" in lines[0]


# ----------------------------------------------------------------------------- the live loop


class RecordingCamera:
    """A fake camera factory: each open is a new NumberedSource; records opens and releases."""

    def __init__(self, *, fail_opens: int = 0) -> None:
        self.sources: list[NumberedSource] = []
        self.failures = 0
        self._fail_opens = fail_opens

    def __call__(self) -> NumberedSource:
        from engines.errors import KdcamError

        if self.failures < self._fail_opens:
            self.failures += 1
            raise KdcamError("camera 0 is busy")
        source = NumberedSource(shape=SHAPE, fps=30, start=1000 * len(self.sources))
        self.sources.append(source)
        return source

    @property
    def open(self) -> int:
        return sum(not s.closed for s in self.sources)


class Sink:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())


def _session(tmp_path: Path, camera: RecordingCamera, *, idle_after: float = 0.5):
    from vcam.media.device_readers import DeviceReaders

    node = tmp_path / "video10"
    node.write_bytes(b"")
    stop = threading.Event()
    demand = Demand(idle_after=idle_after)
    watch = DemandWatch(demand=demand, readers=DeviceReaders(node), stop=stop, log=lambda _line: None)
    stats = LiveStats(engine="invert")
    sink = Sink()
    lines: list[str] = []
    box: dict = {}

    def run():
        box["summary"] = run_loop(source=camera(), factory=camera, engine=InvertEngine(), shape=SHAPE, fps=30,
                                  controls=Controls(strength=1.0), stats=stats, stop=stop, sinks=[sink],
                                  report_every=None, demand=demand, log=lines.append)

    thread = threading.Thread(target=run, daemon=True)
    watch.start()
    thread.start()
    return node, stop, demand, stats, sink, lines, box, thread, watch


def test_idle_releases_the_camera_sends_stills_and_an_app_wakes_it(tmp_path):
    camera = RecordingCamera()
    node, stop, demand, stats, sink, lines, box, thread, watch = _session(tmp_path, camera)
    try:
        assert wait_for(lambda: stats.sent > 5), "a session starts sharpening"
        # nobody watches: after the idle delay the camera is released and a still frame goes out
        assert wait_for(lambda: camera.open == 0 and len(camera.sources) == 1)
        assert not demand.active
        before = stats.stills
        assert wait_for(lambda: stats.stills >= before + 3), "still frames keep being sent while idle"
        sent_while_idle = stats.sent
        still = sink.frames[-1]
        assert still.mean() < 0.5 * sink.frames[0].mean() + 10, "the still frame is dimmed"
        # an app opens the device: the camera is opened again and sharpened frames flow
        app = open(node, "rb")
        assert wait_for(lambda: len(camera.sources) == 2 and camera.open == 1)
        assert wait_for(lambda: stats.sent > sent_while_idle + 10), "sharpened frames again"
        assert demand.active and demand.wakes == 1
        newest = sink.frames[-1]
        assert newest[10, 10, 1] == 255 - NumberedSource(shape=SHAPE)._base[10, 10, 1], "a sharpened camera frame"
        # the app closes it: idle again after the delay, the camera released
        app.close()
        assert wait_for(lambda: camera.open == 0 and not demand.active)
        # brief opens (a browser listing its devices) never start the camera
        for _ in range(5):
            with open(node, "rb"):
                pass
            time.sleep(0.1)
        time.sleep(0.6)
        assert len(camera.sources) == 2 and camera.open == 0 and demand.wakes == 1
    finally:
        stop.set()
        thread.join(10)
        watch.join(5)
    summary = box["summary"]
    assert summary["idle_s"] > 0 and summary["active_s"] > 0 and summary["wakes"] == 1
    assert summary["stills"] == stats.stills > 0
    assert any("released" in line for line in lines) and any("open again" in line for line in lines)


def test_a_camera_that_fails_to_reopen_is_retried_while_the_still_goes_out(tmp_path):
    camera = RecordingCamera()
    node, stop, demand, stats, _sink, lines, _box, thread, watch = _session(tmp_path, camera, idle_after=0.3)
    try:
        assert wait_for(lambda: camera.open == 0 and not demand.active)
        camera._fail_opens = camera.failures + 3  # the next three opens fail (busy)
        app = open(node, "rb")
        assert wait_for(lambda: camera.failures == 3 and len(camera.sources) == 2, timeout=30)
        stills_while_failing = stats.stills
        assert stills_while_failing > 0
        assert wait_for(lambda: stats.processed > 0 and demand.active)
        app.close()
    finally:
        stop.set()
        thread.join(10)
        watch.join(5)
    said = [line for line in lines if "did not open" in line]
    assert len(said) == 1, "a failing reopen is said once"


def test_the_still_frame_is_the_last_frame_dimmed_and_labelled():
    last = np.full((720, 1280, 3), 200, np.uint8)
    still = draw_still(np.empty_like(last), last)
    background = still[:100, :100]
    assert np.all(background == round(200 * 0.35))
    text_rows = still[330:390]
    assert text_rows.max() > 200, "the label is drawn in light grey on the dimmed frame"


def test_kdcam_start_on_demand_end_to_end(tmp_path, monkeypatch):
    """`kdcam start`'s session (run_live) with a virtual camera whose device node is a regular
    file: idle after the delay (the camera released, stills published), an app's open wakes it,
    and the summary tells the idle and active time."""
    import pyvirtualcam

    from vcam.live import on_demand
    from vcam.live.session import run_live
    from vcam.live.settings import LiveSettings

    node = tmp_path / "video10"
    node.write_bytes(b"")

    class WatchedBackend:  # a pyvirtualcam backend (its documented protocol) whose device is `node`
        frames: ClassVar[list[np.ndarray]] = []

        def __init__(self, *, width, height, fps, fourcc, device, **kw) -> None:
            self.fourcc = fourcc

        def send(self, frame: np.ndarray) -> None:
            WatchedBackend.frames.append(frame.copy())

        def device(self) -> str:
            return str(node)

        def native_fourcc(self) -> int:
            return self.fourcc

        def close(self) -> None:
            pass

    pyvirtualcam.register_backend("kdcam-watched", WatchedBackend)
    monkeypatch.setattr(on_demand, "WATCHABLE_BACKENDS", ("v4l2loopback", "kdcam-watched"))
    monkeypatch.setattr(on_demand, "IDLE_AFTER_S", 0.5)
    camera = RecordingCamera()
    lines: list[str] = []
    box: dict = {}
    settings = LiveSettings(device="numbered", fps=30, vcam_backend="kdcam-watched", max_frames=60, panel=False)

    def start():
        box["summary"] = run_live(settings=settings, engine=InvertEngine(), factory=camera, report_every=None,
                                  log=lines.append)

    thread = threading.Thread(target=start, daemon=True)
    try:
        thread.start()
        assert wait_for(lambda: len(camera.sources) == 1 and camera.open == 0), "idle: the camera released"
        def stills() -> int:  # a sharpened (inverted) frame is bright here, a still frame dim
            return sum(np.median(frame) < 120 for frame in list(WatchedBackend.frames))

        assert wait_for(lambda: stills() >= 2), "stills go out while idle"
        with open(node, "rb"):  # an app opens the virtual camera and watches until the session ends
            thread.join(30)
        assert not thread.is_alive()
    finally:
        pyvirtualcam.camera.BACKENDS.pop("kdcam-watched", None)
    summary = box["summary"]
    assert len(camera.sources) == 2, "the camera was opened again for the app"
    assert summary["sent"] == 60 and summary["wakes"] == 1 and summary["stills"] >= 2
    assert summary["idle_s"] > 0 and summary["active_s"] > 0
    assert any("on demand: the camera runs while an app has" in line for line in lines)


def test_no_inotify_instance_left_is_one_line_and_always_on(tmp_path, monkeypatch):
    import errno

    import inotify_simple

    def refused(*_args, **_kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(inotify_simple, "INotify", refused)
    node = tmp_path / "video10"
    node.write_bytes(b"")
    lines: list[str] = []
    got = start_on_demand(mode=None, device=str(node), backend="v4l2loopback", stop=threading.Event(),
                          log=lines.append, system="Linux")
    assert got == (None, None)
    assert len(lines) == 1 and "Too many open files" in lines[0] and "always on" in lines[0]
