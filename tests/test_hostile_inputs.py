"""Hostile and unlucky inputs at the command line and in the config file: each is one
``kdcam: error:`` line and exit 1, and no file is touched that should not be."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_fixtures import InvertEngine, NumberedSource, error_line, run_kdcam

from engines.errors import MAX_ERROR_LINE, KdcamError
from vcam.live.controls import client, sockets
from vcam.live.settings import CONFIG_KEYS, LiveSettings, read_config_file, resolve_settings
from vcam.live.config_file import MAX_CONFIG_BYTES

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "vtest_clip.avi"


pytestmark = pytest.mark.usefixtures("private_dirs")


def _one_error(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err and "╭" not in err, err  # no traceback, no typer box
    return error_line(err)


# --- usage errors: one handler for what typer rejects before our code runs ----------------------------

@pytest.mark.parametrize("args, phrase", [
    (["sharpen", "-dash.png"], "No such option"),
    (["sharpen", "a.png", "--output", "out", "--strength", "abc"], "--strength"),
    (["ctl", "bogus"], "No such command 'bogus'"),
    (["start", "--max-frames", "many"], "--max-frames"),
    (["distill", "train", "--bogus"], "No such option: --bogus"),
    (["bench", "--sizes", ","], "names no frame size"),
    (["bench", "--seconds", "0"], "--pipeline"),
    (["bench", "--pipeline", "--source", str(CLIP), "--seconds", "0"], "--seconds"),
    (["ctl", "--camera", "", "status"], "--camera"),
    (["ctl", "strength", "abc"], "strength"),
])
def test_a_bad_value_is_one_line_and_exit_1(args, phrase, capsys, monkeypatch):
    code, _, err = run_kdcam(args, capsys, monkeypatch)
    assert phrase in _one_error(code, err)


def test_help_still_exits_0(capsys, monkeypatch):
    code, out, _ = run_kdcam(["start", "--help"], capsys, monkeypatch)
    assert code == 0 and "--device" in out


def test_a_huge_value_is_not_echoed_whole(capsys, monkeypatch):
    code, _, err = run_kdcam(["bench", "--engine", "x" * 5_000_000, "--sizes", "64x64"], capsys, monkeypatch)
    line = _one_error(code, err)
    assert len(line) < MAX_ERROR_LINE + 100 and "characters" in line


# --- outputs that are not files ------------------------------------------------------------------------

def test_an_output_that_is_a_fifo_or_a_device_is_refused(tmp_path, capsys, monkeypatch):
    fifo, device = tmp_path / "rec.mp4", tmp_path / "dev.mp4"
    os.mkfifo(fifo)
    targets = [fifo]
    if os.geteuid() == 0:  # root can make a device node (a copy of /dev/null), and as root it was replaced
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        targets.append(device)
    for target in targets:
        code, _, err = run_kdcam(
            ["start", "--device", str(CLIP), "--no-vcam", "--max-frames", "3", "--output", str(target)],
            capsys,
            monkeypatch,
        )
        assert "not a file" in _one_error(code, err), target
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert len(targets) == 1 or stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_sharpen_output_that_is_a_fifo_is_refused(tmp_path, capsys, monkeypatch):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "pic.png"), np.zeros((32, 48, 3), np.uint8))
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "pic.png")
    code, _, err = run_kdcam(
        ["sharpen", str(tmp_path / "pic.png"), "--output", str(tmp_path / "out")], capsys, monkeypatch
    )
    assert code == 1 and "FIFO" in err and "Traceback" not in err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out" / "pic.png").st_mode)


# --- the config file -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, phrase",
    [
        ('strength = "1"\n', "'strength' must be an integer or a number"),
        ('fps = "30"\n', "'fps' must be"),
        ("loop = 1\n", "'loop' must be true or false"),
        ("size = 1280\n", "'size' must be a string"),
        ("device = 1.5\n", "'device' must be"),
    ],
)
def test_a_config_value_of_the_wrong_type_is_refused(tmp_path, text, phrase, capsys, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text(text)
    code, _, err = run_kdcam(
        ["start", "--config", str(config), "--device", str(CLIP), "--no-vcam", "--max-frames", "1"], capsys, monkeypatch
    )
    assert phrase in _one_error(code, err)


def test_a_config_with_a_byte_order_mark_reads(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes("\ufefffps = 24\n".encode())
    assert resolve_settings(overrides={}, config_path=config).fps == 24.0


def test_a_config_over_its_bound_is_refused_before_it_is_read(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 10))
    with pytest.raises(KdcamError, match="over 64 KiB"):
        read_config_file(config)


toml_values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


def _toml(value) -> str:
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, list) else str(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.dictionaries(
        st.one_of(st.sampled_from(CONFIG_KEYS), st.from_regex(r"[a-z_]{1,12}", fullmatch=True)), toml_values, max_size=5
    ),
    junk=st.one_of(st.just(b""), st.binary(max_size=40)),
)
def test_any_config_file_loads_or_is_one_line(tmp_path, table, junk):
    """Generated config files: each loads into valid settings or raises one KdcamError line."""
    config = tmp_path / "gen.toml"
    config.write_bytes("".join(f"{k} = {_toml(v)}\n" for k, v in table.items()).encode() + junk)
    try:
        loaded = resolve_settings(overrides={}, config_path=config)
    except KdcamError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert isinstance(loaded, LiveSettings) and 0 <= loaded.strength <= 2 and 1 <= loaded.fps <= 240


# --- kdcam ctl save ------------------------------------------------------------------------------------


def _run_camera(name: str, config: Path, duration: float = 6.0) -> threading.Thread:
    from vcam.live.session import run_live

    settings = resolve_settings(
        overrides={"device": "numbered", "vcam": False, "duration": duration, "camera_name": name}, config_path=config
    )
    thread = threading.Thread(
        target=run_live,
        daemon=True,
        kwargs=dict(
            settings=settings,
            engine=InvertEngine(),
            factory=lambda: NumberedSource(fps=30),
            report_every=None,
            log=lambda _line: None,
        ),
    )
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sockets.socket_path(name).exists():
            try:
                if client.send_request(name, {"cmd": "status"})["ok"]:
                    return thread
            except KdcamError:
                pass
        time.sleep(0.05)
    raise AssertionError("the camera did not start")


@pytest.mark.slow
def test_ctl_save_writes_through_a_link_keeps_the_mode_and_only_what_changed(tmp_path):
    dotfiles = tmp_path / "dotfiles" / "kdcam.toml"
    dotfiles.parent.mkdir()
    dotfiles.write_text('model = "auto"\nfps = 25\n')
    dotfiles.chmod(0o640)
    link = tmp_path / "xdg" / "kdcam" / "config.toml"
    link.parent.mkdir(parents=True)
    link.symlink_to(dotfiles)
    thread = _run_camera("Link Cam", link)
    try:
        assert client.send_request("Link Cam", {"cmd": "strength", "value": 0.7})["ok"]
        answer = client.send_request("Link Cam", {"cmd": "save"})
        assert answer["ok"] and "saved strength = 0.7" in answer["message"], answer
        assert "model" not in answer["message"] and "engine" not in answer["message"]
    finally:
        thread.join(timeout=30)
    assert link.is_symlink() and os.readlink(link) == str(dotfiles)
    assert stat.S_IMODE(dotfiles.stat().st_mode) == 0o640
    saved = read_config_file(dotfiles)
    assert saved == {"model": "auto", "fps": 25, "strength": 0.7}
    assert not list(dotfiles.parent.glob(".*partial*")) and not list(link.parent.glob(".*partial*"))


@pytest.mark.slow
def test_ctl_save_with_nothing_changed_writes_nothing(tmp_path):
    config = tmp_path / "xdg" / "kdcam" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('model = "auto"\n')
    before = config.stat().st_mtime_ns
    thread = _run_camera("Same Cam", config, duration=3.0)
    try:
        answer = client.send_request("Same Cam", {"cmd": "save"})
        assert answer["ok"] and "nothing was changed" in answer["message"]
    finally:
        thread.join(timeout=30)
    assert config.read_text() == 'model = "auto"\n' and config.stat().st_mtime_ns == before
