"""Live controls without a restart: `kdcam ctl` against a real `kdcam start`, terminal keys
through a pseudo-terminal, and the control socket's defences."""

from __future__ import annotations

import csv
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import InvertEngine, NumberedSource, error_line, run_kdcam

from engines.errors import KdcamError
from vcam.live.controls import client, socket_server, sockets
from vcam.live.settings import LiveSettings, resolve_settings

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "vtest_clip.avi"


pytestmark = pytest.mark.usefixtures("private_dirs")


def _start(tmp_path: Path, *extra: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "vcam.cli",
        "start",
        "--device",
        str(CLIP),
        "--loop",
        "--no-vcam",
        "--engine",
        "onnxruntime",
        *extra,
    ]
    return subprocess.Popen(
        cmd, cwd=REPO, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )


def _wait_for_socket(name: str = "KD Sharpen Cam", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not sockets.socket_path(name).exists():
        assert time.monotonic() < deadline, "kdcam start never opened its control socket"
        time.sleep(0.1)


def _ctl(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    return run_kdcam(["ctl", *args], capsys, monkeypatch)


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while (frame := cap.read()[1]) is not None:
        out.append(frame)
    cap.release()
    return out


@pytest.mark.slow
def test_ctl_changes_a_running_camera_frame_by_frame(tmp_path, capsys, monkeypatch):
    """Strength, toggle, split and an engine switch through `kdcam ctl`; every recorded (lossless)
    frame is what its logged controls make of its input frame, and no sent frame is missing."""
    rec, log = tmp_path / "rec.mkv", tmp_path / "frames.csv"
    proc = _start(tmp_path, "--output", str(rec), "--frame-log", str(log), "--duration", "14", "--model", "quality")
    try:
        _wait_for_socket()
        steps = [
            ("strength", "0.6"),
            ("engine", "torch"),
            ("toggle",),
            ("split", "on"),
            ("toggle",),
            ("strength", "1.4"),
        ]
        for step in steps:
            code, out, err = _ctl(capsys, monkeypatch, *step)
            assert code == 0, err
            time.sleep(0.8)
        code, out, _ = _ctl(capsys, monkeypatch, "status")
        assert code == 0 and "strength 1.4" in out and "split on" in out and "engine torch" in out
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert "changes:" in stdout and "engine onnxruntime -> torch" in stdout and "split on" in stdout
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    recorded, source = _frames(rec), _frames(CLIP)
    assert len(recorded) == len(rows), "one recorded frame per sent frame: none missing at the switches"
    # no frame goes back in time at a switch, a repeat is the previous frame again, and the
    # summary's repeat count is the log's (checks that do not depend on how busy the machine is)
    pos, fresh = [int(r["pos"]) for r in rows], [r["fresh"] == "1" for r in rows]
    assert pos == sorted(pos), "the frames go forward through every switch"
    assert all(new or b == a for a, b, new in zip(pos, pos[1:], fresh[1:])), "a repeat repeats the previous frame"
    repeats = int(stdout.split("sent ")[1].split(" fps, ")[1].split(" repeats")[0])
    assert repeats == fresh.count(False), stdout

    from engines import create_engine
    from engines.model.zoo import zoo_path

    seen = set()
    with create_engine("onnxruntime", model=zoo_path("quality"), quiet=True) as reference:
        for row, frame in zip(rows, recorded):
            state = (row["effect"], row["strength"], row["split"])
            if state in seen and row["fresh"] == "0":
                continue  # a repeat of a frame already checked in this state
            seen.add(state)
            before = source[int(row["pos"])]
            half = frame.shape[1] // 2
            expected = before if row["effect"] == "0" else reference.sharpen(before, strength=float(row["strength"]))
            if row["split"] == "on":
                assert np.array_equal(frame[:, :half], before[:, :half]), row  # the input, exactly
                assert np.abs(frame[:, half + 1 :].astype(int) - expected[:, half + 1 :]).max() <= 1, row
            else:
                assert np.abs(frame.astype(int) - expected).max() <= 1, row  # torch and ORT may round one level apart
    assert {
        ("1", "0.6", "off"),
        ("0", "0.6", "off"),
        ("0", "0.6", "on"),
        ("1", "0.6", "on"),
        ("1", "1.4", "on"),
    } <= seen


@pytest.mark.slow
def test_bad_values_are_one_line_and_change_nothing(tmp_path, capsys, monkeypatch):
    proc = _start(tmp_path, "--duration", "8", "--camera-name", "Bad Values Cam")
    try:
        _wait_for_socket("Bad Values Cam")
        camera = ("--camera", "Bad Values Cam")
        _, before, _ = _ctl(capsys, monkeypatch, *camera, "status")
        for args, phrase in [
            (("strength", "abc"), "bad strength 'abc'"),
            (("strength", "2.5"), "bad strength '2.5'"),
            (("model", "nope"), "unknown model 'nope'"),
            (("model", "/etc/passwd"), "unknown model"),
            (("split", "sideways"), "bad split mode"),
            (("engine", "vulkan"), "unknown engine"),
        ]:
            code, _, err = _ctl(capsys, monkeypatch, *camera, *args)
            assert code == 1 and phrase in error_line(err), err
        _, after, _ = _ctl(capsys, monkeypatch, *camera, "status")
        assert after == before
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_no_instance_is_one_line(capsys, monkeypatch):
    code, _, err = _ctl(capsys, monkeypatch, "--camera", "Nobody Cam", "status")
    assert code == 1 and "no kdcam start is running as 'Nobody Cam'" in error_line(err)


def _live_in_thread(name: str, **overrides) -> tuple[threading.Thread, dict]:
    """An in-process `kdcam start` (synthetic source, test engine) on a thread; its summary lands in the dict."""
    settings = LiveSettings(device="numbered", vcam=False, duration=3.0, camera_name=name, **overrides)
    box: dict = {}

    def run() -> None:
        from vcam.live.session import run_live

        box["summary"] = run_live(
            settings=settings,
            engine=InvertEngine(),
            report_every=None,
            log=lambda _line: None,
            factory=lambda: NumberedSource(fps=30),
        )

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_two_instances_each_get_their_socket_and_a_stale_one_is_replaced(capsys, monkeypatch):
    stale = sockets.socket_path("Cam A")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # left behind by a crashed instance
        s.bind(str(stale))
    assert stale.exists()
    (a, box_a), (b, box_b) = _live_in_thread("Cam A"), _live_in_thread("Cam B")
    try:
        for name in ("Cam A", "Cam B"):
            _wait_for_socket(name)
        assert client.send_request("Cam A", {"cmd": "strength", "value": 0.5})["ok"]
        assert client.send_request("Cam B", {"cmd": "toggle"})["ok"]
        code, out, _ = _ctl(capsys, monkeypatch, "--camera", "Cam B", "status")
        assert code == 0 and "effect off" in out and "strength 1.0" in out
        with pytest.raises(KdcamError, match="already running as 'Cam A'"):
            with socket_server.ControlServer(
                camera_name="Cam A", handle=lambda r: {}, stop=threading.Event(), log=print
            ):
                pass
    finally:
        a.join(), b.join()
    assert box_a["summary"]["changes"][0].endswith("strength 1 -> 0.5")
    assert box_b["summary"]["changes"][0].endswith("effect off")
    assert not stale.exists(), "each instance removes its socket when it ends"


def test_the_socket_survives_malformed_oversized_and_silent_clients():
    thread, box = _live_in_thread("Fuzz Cam")
    try:
        _wait_for_socket("Fuzz Cam")
        path = str(sockets.socket_path("Fuzz Cam"))
        assert oct(os.stat(path).st_mode & 0o777) == "0o600" and os.stat(path).st_uid == os.getuid()
        for payload in (
            b"not json\n",
            b"[1, 2]\n",
            b'{"cmd": "strength", "value": "' + b"9" * 10000 + b'"}\n',
            b'{"cmd": "exec", "value": "import os"}\n',
        ):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(payload)
                answer = json.loads(s.makefile().readline())
            assert answer["ok"] is False and answer["error"], payload[:40]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # connects and says nothing
            s.settimeout(5)
            s.connect(path)
            answer = json.loads(s.makefile().readline())  # closed by the server after its time limit
            assert answer["ok"] is False
        assert client.send_request("Fuzz Cam", {"cmd": "status"})["ok"], "the camera goes on"
    finally:
        thread.join()
    assert box["summary"]["sent"] > 0


def test_another_users_socket_is_never_used(monkeypatch):
    path = sockets.socket_path("Shared Cam")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
    real_uid = os.getuid()
    monkeypatch.setattr(sockets.os, "getuid", lambda: real_uid + 1)  # the socket now belongs to "someone else"
    monkeypatch.setattr(sockets, "runtime_dir", lambda: path.parent)
    with pytest.raises(KdcamError, match="no kdcam start is running"):
        client.send_request("Shared Cam", {"cmd": "status"})
    with pytest.raises(KdcamError, match="belongs to another user"):
        with socket_server.ControlServer(
            camera_name="Shared Cam", handle=lambda r: {}, stop=threading.Event(), log=print
        ):
            pass
    assert path.exists(), "never removed"


def test_save_writes_the_live_settings_to_the_config_file(tmp_path):
    config = tmp_path / "xdg" / "kdcam" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('fps = 25\ncamera_name = "Save Cam"\n')
    thread, _ = _live_in_thread("Save Cam", config_file=config)
    try:
        _wait_for_socket("Save Cam")
        assert client.send_request("Save Cam", {"cmd": "strength", "value": 0.7})["ok"]
        assert not config.read_text().count("strength"), "nothing is written unless asked"
        answer = client.send_request("Save Cam", {"cmd": "save"})
        assert answer["ok"] and "saved strength = 0.7" in answer["message"]
    finally:
        thread.join()
    saved = resolve_settings(overrides={}, config_path=config)
    assert (saved.strength, saved.fps, saved.camera_name) == (0.7, 25.0, "Save Cam")
    assert not list(config.parent.glob(".*partial*"))


# --- terminal keys --------------------------------------------------------------------------------


def _key_run(tmp_path, keys: str, *, stop_with=None) -> tuple[subprocess.Popen, str, str, list, list]:
    master, slave = pty.openpty()
    original = termios.tcgetattr(slave)
    proc = _start(tmp_path, "--duration", "30", stdin=slave)
    try:
        lines = []
        for line in proc.stderr:  # the help line is printed once the keys are read
            lines.append(line)
            if "keys: space" in line:
                break
        for key in keys:
            os.write(master, key.encode())
            time.sleep(0.4)
        if stop_with is not None:
            proc.send_signal(stop_with)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    return proc, out, "".join(lines) + err, original, after


@pytest.mark.slow
def test_terminal_keys_change_the_camera_and_q_quits_with_the_terminal_restored(tmp_path):
    proc, out, err, original, after = _key_run(tmp_path, " +s q")
    assert proc.returncode == 0, err[-2000:]
    assert "keys: space effect on/off" in err
    assert "effect off" in out and "strength 1 -> 1.1" in out and "split on" in out
    assert after == original, "the terminal's mode is restored"
    assert original[3] & termios.ICANON and original[3] & termios.ECHO


@pytest.mark.slow
def test_sigterm_in_key_mode_restores_the_terminal(tmp_path):
    proc, _, err, original, after = _key_run(tmp_path, "+", stop_with=signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert after == original


def test_keys_leave_the_terminal_as_it_was_after_a_crash():
    from vcam.live.controls.keys import TerminalKeys

    master, slave = pty.openpty()
    original = termios.tcgetattr(slave)
    pressed = []
    with open(slave, "rb", buffering=0, closefd=False) as stream:
        with pytest.raises(RuntimeError, match="boom"):
            with TerminalKeys({"x": lambda: pressed.append("x")}, stream=stream, log=lambda _line: None) as keys:
                assert keys.active and not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak while running
                os.write(master, b"x")
                time.sleep(0.5)
                raise RuntimeError("boom")
    assert pressed == ["x"] and termios.tcgetattr(slave) == original
    os.close(master)
    os.close(slave)


def test_no_terminal_no_keys():
    from vcam.live.controls.keys import TerminalKeys

    read, write = os.pipe()
    with open(read, "rb", buffering=0) as stream, TerminalKeys({}, stream=stream, log=print) as keys:
        assert not keys.active
    os.close(write)


def test_a_failed_switch_names_the_model_and_keeps_the_running_engine():
    """A switch that cannot be built says which model and engine, by name (never an object's
    repr), and the engine that runs stays."""
    from engines.model.checkpoint import open_model
    from engines.registry import create_engine
    from vcam.live.engine_switch import EngineSwitch

    model = open_model("quality")
    running = create_engine("onnxruntime", model=model, quiet=True)
    switch = EngineSwitch(running, engine_name="onnxruntime", model=model, shape=(32, 48, 3), strength=lambda: 1.0)
    with pytest.raises(KdcamError) as err:
        switch.switch(None, "no-such-engine")
    message = str(err.value)
    assert message.startswith("cannot switch to model quality on engine no-such-engine (unknown engine")
    assert "ResolvedModel" not in message and "still running the old one" in message
    assert switch.current() is running
    switch.close()
