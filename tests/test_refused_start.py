"""A refused ``kdcam start`` never touches a file: the recording is opened only once the
instance lock, the runtime folder, the source and the engine have all passed (vcam.live.readiness)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import InvertEngine, NumberedSource, error_line, run_kdcam

from engines.errors import KdcamError
from vcam.live.controls import client, sockets
from vcam.live.settings import LiveSettings
from vcam.live.readiness import ReadyToWrite, ready_to_write
from vcam.live.recording import Recording

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "vtest_clip.avi"


pytestmark = pytest.mark.usefixtures("private_dirs")


def _precious(folder: Path) -> tuple[Path, str]:
    """A good earlier recording, and its hash."""
    folder.mkdir(exist_ok=True)
    path = folder / "precious.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), i * 5, np.uint8))
    writer.release()
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _start_args(output: Path) -> list[str]:
    return ["start", "--device", str(CLIP), "--no-vcam", "--max-frames", "5", "--output", str(output)]


@pytest.mark.slow
def test_a_second_instance_refused_keeps_the_earlier_recording(tmp_path, capsys, monkeypatch):
    precious, digest = _precious(tmp_path / "rec")
    from vcam.live.session import run_live

    thread = threading.Thread(target=lambda: run_live(
        settings=LiveSettings(device="numbered", vcam=False, duration=15.0), engine=InvertEngine(),
        factory=lambda: NumberedSource(fps=30), report_every=None, log=lambda _line: None), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not sockets.socket_path("KD Sharpen Cam").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        code, _, err = run_kdcam(_start_args(precious), capsys, monkeypatch)
        assert code == 1 and "already running as 'KD Sharpen Cam'" in error_line(err)
        assert hashlib.sha256(precious.read_bytes()).hexdigest() == digest  # the 40-frame recording, untouched
        assert _left_in(tmp_path / "rec") == ["precious.mp4"]  # no temporary file either
        fresh = tmp_path / "rec" / "new.mp4"
        code, _, err = run_kdcam(_start_args(fresh), capsys, monkeypatch)
        assert code == 1 and not fresh.exists() and _left_in(tmp_path / "rec") == ["precious.mp4"]
    finally:
        client.send_request("KD Sharpen Cam", {"cmd": "status"})  # still the first instance's, still answering
        thread.join(timeout=30)


def test_a_runtime_folder_that_is_not_private_keeps_the_earlier_recording(tmp_path, capsys, monkeypatch):
    precious, digest = _precious(tmp_path / "rec")
    folder = tmp_path / "run" / "kdcam"
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    code, _, err = run_kdcam(_start_args(precious), capsys, monkeypatch)
    assert code == 1 and "is not a private folder" in error_line(err)
    assert hashlib.sha256(precious.read_bytes()).hexdigest() == digest
    assert _left_in(tmp_path / "rec") == ["precious.mp4"]


def test_a_missing_source_or_model_keeps_the_earlier_recording(tmp_path, capsys, monkeypatch):
    precious, digest = _precious(tmp_path / "rec")
    for args in (["start", "--device", str(tmp_path / "nope.avi"), "--no-vcam", "--max-frames", "5"],
                 [*_start_args(precious)[:6], "--model", str(tmp_path / "nope.safetensors")]):
        code, _, err = run_kdcam([*args, "--output", str(precious)], capsys, monkeypatch)
        assert code == 1 and error_line(err), args
        assert hashlib.sha256(precious.read_bytes()).hexdigest() == digest, args
        assert _left_in(tmp_path / "rec") == ["precious.mp4"], args


def test_a_recording_needs_a_session_that_passed_its_checks(tmp_path):
    with pytest.raises(TypeError, match="ReadyToWrite"):
        Recording(tmp_path / "r.avi", ready=None, shape=(48, 64, 3), fps=30)
    with pytest.raises(RuntimeError, match="no lock"):
        ready_to_write(lock=None, source=object(), engine=object())
    assert isinstance(ready_to_write(lock=object(), source=object(), engine=object()), ReadyToWrite)
    assert not (tmp_path / "r.avi").exists()


def test_a_session_that_fails_never_replaces_the_target(tmp_path):
    """An error after frames were recorded: the earlier file stays; what was recorded is kept
    beside it under a visible name that the error names. With no frame yet, nothing is left."""
    precious, digest = _precious(tmp_path / "rec")
    ready = ready_to_write(lock=object(), source=object(), engine=object())
    with pytest.raises(KdcamError, match="kept as"):
        with Recording(precious, ready=ready, shape=(48, 64, 3), fps=30) as recording:
            for _ in range(5):
                recording.offer(np.zeros((48, 64, 3), np.uint8))
            time.sleep(0.2)
            raise KdcamError("the camera went away")
    assert hashlib.sha256(precious.read_bytes()).hexdigest() == digest
    kept = [name for name in _left_in(tmp_path / "rec") if name != "precious.mp4"]
    assert len(kept) == 1 and kept[0].startswith("precious.kept-")
    with pytest.raises(ZeroDivisionError):
        with Recording(tmp_path / "rec" / "other.mp4", ready=ready, shape=(48, 64, 3), fps=30):
            raise ZeroDivisionError
    assert sorted(_left_in(tmp_path / "rec")) == sorted(["precious.mp4", *kept])
