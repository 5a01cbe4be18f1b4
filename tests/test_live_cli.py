"""``kdcam start`` faults: each is one ``kdcam: error:`` line and exit code 1; config."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import error_line, run_kdcam

from engines.errors import KdcamError
from vcam.live.settings import LiveSettings, resolve_settings
from vcam.live.controls.preview import check_display


@pytest.fixture
def clip(tmp_path) -> Path:
    """A tiny lossless video file."""
    path = tmp_path / "clip.mkv"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"HFYU"), 30, (64, 48))
    for n in range(5):
        writer.write(np.full((48, 64, 3), 40 * n, np.uint8))
    writer.release()
    return path


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    # Never read the developer's real ~/.config/kdcam/config.toml.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--size", "12x"], "bad --size '12x': use WIDTHxHEIGHT"),
        (["--size", "641x480"], "bad --size '641x480': width and height must be even"),
        (["--size", "8x8"], "bad --size '8x8': each side must be 16..7680"),
        (["--fps", "fast"], "bad --fps 'fast'"),
        (["--fps", "0"], "bad --fps '0': must be between 1 and 240"),
        (["--strength", "3"], "bad --strength 3.0"),
        (["--no-vcam"], "--no-vcam without --output"),
        (["--output", "out.gif", "--no-vcam"], "cannot record to 'out.gif'"),
    ],
)
def test_bad_flags_are_one_line_and_exit_1(args, expected, capsys, monkeypatch):
    code, _, err = run_kdcam(["start", *args], capsys, monkeypatch)
    assert code == 1
    assert expected in error_line(err)


@pytest.mark.skipif(
    not Path("/dev").is_dir() or Path("/dev/video7").exists(), reason="needs a machine without /dev/video7"
)
def test_a_missing_camera_index(capsys, monkeypatch):
    code, _, err = run_kdcam(["start", "--device", "7", "--no-vcam", "--max-frames", "1"], capsys, monkeypatch)
    assert code == 1
    line = error_line(err)
    assert "camera 7" in line and ("kdcam devices" in line or "busy" in line)


def test_a_missing_video_file(tmp_path, capsys, monkeypatch):
    code, _, err = run_kdcam(
        ["start", "--device", str(tmp_path / "none.mp4"), "--no-vcam", "--max-frames", "1"], capsys, monkeypatch
    )
    assert code == 1 and "no camera or video file" in error_line(err)


def test_preview_without_a_display(capsys, monkeypatch, clip):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    code, _, err = run_kdcam(["start", "--device", str(clip), "--preview", "--no-vcam"], capsys, monkeypatch)
    assert code == 1 and "--preview needs a display" in error_line(err)


def test_preview_with_headless_opencv():
    with pytest.raises(KdcamError, match="headless"):
        check_display(env={"DISPLAY": ":0"}, system="Linux", framework="")
    check_display(env={"DISPLAY": ":0"}, system="Linux", framework="QT")  # fine


def test_unknown_virtual_camera_backend(capsys, monkeypatch, clip):
    code, _, err = run_kdcam(
        ["start", "--device", str(clip), "--vcam-backend", "nope", "--max-frames", "1"], capsys, monkeypatch
    )
    assert code == 1 and "unknown virtual camera backend 'nope'" in error_line(err)


def test_a_model_that_is_not_a_kdcam_checkpoint(tmp_path, capsys, monkeypatch, clip):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    code, _, err = run_kdcam(
        ["start", "--device", str(clip), "--no-vcam", "--max-frames", "1", "--model", str(bogus)], capsys, monkeypatch
    )
    assert code == 1 and "model.safetensors" in error_line(err)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_config_bad_key_is_named(tmp_path, capsys, monkeypatch):
    path = _config(tmp_path, 'device = 0\ncolour = "blue"\n')
    code, _, err = run_kdcam(["start", "--config", str(path)], capsys, monkeypatch)
    assert code == 1 and "unknown key 'colour'" in error_line(err)


def test_config_bad_value_is_named(tmp_path, capsys, monkeypatch):
    path = _config(tmp_path, 'fps = "fast"\n')
    code, _, err = run_kdcam(["start", "--config", str(path)], capsys, monkeypatch)
    line = error_line(err)
    assert code == 1 and "'fps'" in line and "config.toml" in line and "'fast'" in line


def test_config_that_is_not_toml(tmp_path, capsys, monkeypatch):
    path = _config(tmp_path, "fps = = 3\n")
    code, _, err = run_kdcam(["start", "--config", str(path)], capsys, monkeypatch)
    assert code == 1 and "not valid TOML" in error_line(err)


def test_flags_override_the_config_file_only_where_given(tmp_path, monkeypatch):
    path = _config(tmp_path, 'device = "clip.mp4"\nsize = "640x480"\nfps = 15\nstrength = 0.5\nloop = true\n')
    from_file = resolve_settings(overrides={}, config_path=path)
    assert from_file == LiveSettings(
        device="clip.mp4", size=(640, 480), fps=15.0, strength=0.5, loop=True, config_file=path
    )
    flagged = resolve_settings(overrides={"fps": "25", "device": "1"}, config_path=path)
    assert (flagged.fps, flagged.device, flagged.size, flagged.loop) == (25.0, 1, (640, 480), True)


def test_the_default_config_file_is_read_when_present(tmp_path, monkeypatch):
    (tmp_path / "xdg" / "kdcam").mkdir(parents=True)
    (tmp_path / "xdg" / "kdcam" / "config.toml").write_text('camera_name = "Studio"\n')
    assert resolve_settings(overrides={}).camera_name == "Studio"
    assert resolve_settings(overrides={}, config_path=None).fps == 30.0
