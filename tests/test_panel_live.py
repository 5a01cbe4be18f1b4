"""The control panel wired into `kdcam start` (vcam.live.panel_link): started with the camera,
found by `kdcam panel`, off with --no-panel, and nothing copied while no page is open."""

from __future__ import annotations

import contextlib
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from live_fixtures import InvertEngine, NumberedSource, error_line, run_kdcam

from engines.errors import KdcamError
from vcam.live.controls.sockets import socket_path
from vcam.live.mailbox import FrameSlot
from vcam.live.panel_link import COPY_FPS, WATCHING_S, PanelFrames
from vcam.live.settings import LiveSettings, resolve_settings
from vcam.panel import panel_file_for


pytestmark = pytest.mark.usefixtures("private_dirs")


def _camera(lines: list[str], box: dict | None = None, **settings) -> threading.Thread:
    from vcam.live.session import run_live

    settings = {"duration": 4.0, **settings}

    def run() -> None:
        summary = run_live(settings=LiveSettings(device="numbered", vcam=False, **settings), engine=InvertEngine(),
                           factory=lambda: NumberedSource(fps=30), report_every=None, log=lines.append)
        if box is not None:
            box["summary"] = summary

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(what)


def test_kdcam_start_serves_the_panel_and_kdcam_panel_opens_it(capsys, monkeypatch):
    lines: list[str] = []
    thread = _camera(lines)
    token_file = panel_file_for(socket_path("KD Sharpen Cam"))
    try:
        line = _wait(lambda: next((x for x in lines if "control panel at" in x), None), "no panel line")
        assert "http://127.0.0.1:" in line and "?token=" in line
        assert sum("control panel at" in x for x in lines) == 1  # printed once
        _wait(token_file.exists, "no token file")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        opened: list[str] = []
        monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
        code, out, err = run_kdcam(["panel"], capsys, monkeypatch)
        assert code == 0, err
        assert opened and opened[0].startswith("file://") and "token" not in opened[0]  # never on a command line
        assert "opened the control panel" in out
    finally:
        thread.join(timeout=30)
    assert not token_file.exists(), "the token file goes with the camera"


def test_no_panel_serves_nothing_and_kdcam_panel_says_so(capsys, monkeypatch):
    lines: list[str] = []
    thread = _camera(lines, panel=False, duration=2.0)
    _wait(lambda: socket_path("KD Sharpen Cam").exists(), "no socket")
    try:
        code, _, err = run_kdcam(["panel"], capsys, monkeypatch)
        assert code == 1 and error_line(err)
    finally:
        thread.join(timeout=30)
    assert not any("control panel" in x for x in lines)


def test_the_panel_settings_are_declared_with_the_others(tmp_path, capsys, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("panel = false\npanel_port = 8765\n")
    settings = resolve_settings(overrides={}, config_path=config)
    assert settings.panel is False and settings.panel_port == 8765
    config.write_text('panel_port = "8765"\n')
    with pytest.raises(KdcamError, match="panel_port"):
        resolve_settings(overrides={}, config_path=config)
    code, _, err = run_kdcam(["start", "--panel-port", "70000", "--no-vcam", "--max-frames", "1"], capsys, monkeypatch)
    assert code == 1 and "--panel-port" in error_line(err)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frames_are_copied_only_while_a_page_asks_and_at_most_copy_fps():
    clock = _Clock()
    frames = PanelFrames(clock=clock)
    slot = FrameSlot((8, 8, 3), with_before=True)
    slot.frame[:] = 7
    for _ in range(100):  # no page: nothing is copied, and the pipeline keeps no input
        frames(slot, True)
        clock.now += 0.01
    assert frames.latest() == (None, None) and frames.watching()
    copies = 0
    for _ in range(100):  # a page asks: a copy at most COPY_FPS times a second, of the sent frame and its input
        before = frames.latest()[1]
        frames(slot, True)
        copies += frames.latest()[1] is not before
        clock.now += 0.01
    assert 0 < copies <= COPY_FPS * 1.0 + 1
    pair = frames.latest()
    slot.frame[:] = 9  # the slot is reused by the pipeline: the panel's copy is not
    assert pair[1] is not None and int(pair[1].max()) == 7 and pair[0] is not None
    clock.now += WATCHING_S + 0.1  # the page went away
    assert not frames.watching()
    frames(slot, True)
    assert int(frames._pair[1].max()) == 7, "no copy once nobody watches"  # noqa: SLF001


def test_the_pipeline_copies_the_input_only_while_asked():
    from vcam.live.controls.state import Controls
    from vcam.live.mailbox import LatestFrame
    from vcam.live.pipeline import ProcessThread
    from vcam.live.stats import LiveStats

    for wanted in (False, True):
        inbox, outbox = LatestFrame(shape=(8, 8, 3)), LatestFrame(shape=(8, 8, 3), with_before=True)
        slot = inbox.writable()
        slot.frame[:] = 5
        inbox.publish()
        stop = threading.Event()
        thread = ProcessThread(current_engine=lambda: InvertEngine(), inbox=inbox, outbox=outbox,
                               controls=Controls(strength=1.0), stats=LiveStats(), stop=stop,
                               wants_before=lambda w=wanted: w)
        thread.start()
        _wait(lambda: outbox.take(timeout=0.1), "no processed frame", timeout=10)
        stop.set()
        thread.join(timeout=10)
        befores = [s.before for s in (outbox._back, outbox._middle, outbox._front)]  # noqa: SLF001
        assert any(int(b.max()) == 5 for b in befores) == wanted


def test_a_bad_panel_client_never_hurts_the_camera():
    """A client that never finishes its headers and one that announces a 1 GB body: each loses
    its own connection; `kdcam ctl` answers throughout and the session runs to its end."""
    import socket

    from vcam.live.controls.client import send_request

    lines: list[str] = []
    box: dict = {}
    thread = _camera(lines, box, duration=5.0)
    line = _wait(lambda: next((x for x in lines if "control panel at" in x), None), "no panel line")
    port = int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    slow, big = (socket.create_connection(("127.0.0.1", port)) for _ in range(2))
    try:
        slow.sendall(b"GET / HTTP/1.1\r\n" + host)
        big.sendall(b"POST /api/request HTTP/1.1\r\n" + host + b"Content-Length: 1000000000\r\n\r\n{")
        for _ in range(6):
            with contextlib.suppress(OSError):
                slow.sendall(b"X-Slow: 1\r\n")
            assert send_request("KD Sharpen Cam", {"cmd": "status"})["ok"]
            time.sleep(0.4)
        big.settimeout(10)
        assert big.recv(4096).split(b"\r\n")[0].split()[1] in (b"401", b"403", b"413", b"421")  # refused, closed
    finally:
        slow.close()
        big.close()
    thread.join(timeout=30)
    summary = box["summary"]
    assert summary["sent"] > 0 and summary["seconds"] >= 4.9 and summary["signal"] is None
