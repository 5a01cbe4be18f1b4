"""The preview window's drawing and keys, with HighGUI replaced by fakes (no display here)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from vcam.live.mailbox import FrameSlot
from vcam.live.controls.state import Controls
from vcam.live.controls.preview import Preview
from vcam.live.stats import LiveStats

SHAPE = (120, 160, 3)
ROW = 60  # clear of the text overlays


class FakeHighGui:
    def __init__(self) -> None:
        self.keys: list[int] = []
        self.shown: list[np.ndarray] = []
        self.visible = 1.0

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
        monkeypatch.setattr(cv2, "destroyWindow", lambda *a, **k: None)
        monkeypatch.setattr(cv2, "imshow", lambda _name, image: self.shown.append(image.copy()))
        monkeypatch.setattr(cv2, "waitKey", lambda _ms: self.keys.pop(0) if self.keys else -1)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda *_a: self.visible)


@pytest.fixture
def gui(monkeypatch):
    fake = FakeHighGui()
    fake.install(monkeypatch)
    return fake


def _slot() -> FrameSlot:
    slot = FrameSlot(SHAPE, with_before=True)
    slot.before[:] = 10  # input
    slot.frame[:] = 200  # output
    slot.before[:, 0] = 50  # marker columns at the far left and far right of the input
    slot.before[:, -1] = 70
    return slot


def _preview(tmp_path, controls=None, stop=None):
    return Preview(
        shape=SHAPE,
        controls=controls or Controls(strength=1.0),
        stats=LiveStats(engine="test"),
        stop=stop or threading.Event(),
        snapshot_dir=tmp_path,
    )


def test_split_view_shows_before_left_and_after_right(gui, tmp_path):
    preview = _preview(tmp_path)
    preview(_slot(), True)
    shown = gui.shown[-1]
    assert shown[ROW, 5, 0] == 10 and shown[ROW, 155, 0] == 200
    assert shown[ROW, 0, 0] == 50


def test_keys_toggle_effect_step_strength_split_mirror_and_quit(gui, tmp_path):
    controls = Controls(strength=1.0)
    stop = threading.Event()
    preview = _preview(tmp_path, controls, stop)
    slot = _slot()
    for key, check in [
        (ord(" "), lambda: controls.effect is False),
        (ord(" "), lambda: controls.effect is True),
        (ord("+"), lambda: controls.strength == pytest.approx(1.1)),
        (ord("-"), lambda: controls.strength == pytest.approx(1.0)),
    ]:
        gui.keys.append(key)
        preview(slot, False)
        assert check()
    for _ in range(15):
        gui.keys.append(ord("+"))
        preview(slot, False)
    assert controls.strength == 2.0, "strength stays within 0..2"
    gui.keys.append(ord("s"))  # the split view published to the call, as the terminal's s key does
    preview(slot, False)
    assert controls.split == "on"
    gui.keys.append(ord("f"))
    preview(slot, False)
    preview(slot, True)
    mirrored = gui.shown[-1]
    assert mirrored[ROW, 0, 0] == 70 and mirrored[ROW, 5, 0] == 10 and mirrored[ROW, 155, 0] == 200
    assert not stop.is_set()
    gui.keys.append(ord("q"))
    preview(slot, False)
    assert stop.is_set()


def test_snapshot_saves_the_sent_frame(gui, tmp_path, capsys):
    preview = _preview(tmp_path)
    preview(_slot(), True)
    gui.keys.append(ord("p"))
    preview(_slot(), False)
    (saved,) = tmp_path.glob("kdcam-snapshot-*.png")
    assert np.all(cv2.imread(str(saved)) == 200)


def test_closing_the_window_stops(gui, tmp_path):
    stop = threading.Event()
    preview = _preview(tmp_path, stop=stop)
    gui.visible = 0.0
    preview(_slot(), True)
    assert stop.is_set()
