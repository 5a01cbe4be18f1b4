"""The virtual camera output: a real ``pyvirtualcam.Camera`` over a test backend
registered with pyvirtualcam's own ``register_backend``; device choice; error mapping."""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam import PixelFormat
from live_fixtures import InvertEngine, NumberedSource

from engines.errors import KdcamError
from vcam.live.settings import LiveSettings
from vcam.media.devices import list_loopback_devices
from vcam.live.session import run_live
from vcam.media.virtual_camera import open_virtual_camera

BGR_FOURCC = int.from_bytes(PixelFormat.BGR.value.encode("ascii"), "little")


class RecordingBackend:
    """A pyvirtualcam backend (the documented protocol) that keeps what it is sent."""

    opened: list[RecordingBackend] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "kdcam-test-device"
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingBackend.opened.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int:
        return self.fourcc

    def close(self) -> None:
        self.closed = True


class FailingBackend(RecordingBackend):
    def __init__(self, **kw) -> None:
        raise RuntimeError("device is busy")


@pytest.fixture
def test_backend():
    RecordingBackend.opened.clear()
    pyvirtualcam.register_backend("kdcam-test", RecordingBackend)
    pyvirtualcam.register_backend("kdcam-failing", FailingBackend)
    yield RecordingBackend
    for name in ("kdcam-test", "kdcam-failing"):
        pyvirtualcam.camera.BACKENDS.pop(name, None)


def test_frames_reach_the_virtual_camera_in_bgr_at_the_size_and_fps(test_backend):
    source = NumberedSource(shape=(48, 64, 3), fps=60)
    settings = LiveSettings(device="numbered", fps=25, vcam_backend="kdcam-test", max_frames=20)
    summary = run_live(
        settings=settings, engine=InvertEngine(), factory=lambda: source, report_every=None, log=lambda _line: None
    )
    (backend,) = test_backend.opened
    assert backend.fourcc == BGR_FOURCC, "published as PixelFormat.BGR: no colour conversion"
    assert (backend.width, backend.height, backend.fps) == (64, 48, 25)
    assert len(backend.frames) == summary["sent"] == 20
    # pyvirtualcam hands backends flat uint8 arrays; each is a processed (inverted) frame.
    frame = backend.frames[-1].reshape(48, 64, 3)
    assert frame.dtype == np.uint8
    numbers = [255 - int(f.reshape(48, 64, 3)[0, 0, 0]) for f in backend.frames]
    assert (frame[:4, :4, 0] == 255 - numbers[-1]).all(), "the corner carries one inverted frame number"
    assert numbers == sorted(numbers) and numbers[-1] <= source.pos, "frames the source gave, in order"
    assert np.array_equal(frame[8:, 8:], 255 - source._base[8:, 8:])
    assert backend.closed, "the virtual device is released at the end"


def test_odd_source_sizes_are_refused_unless_an_even_size_is_asked(test_backend):
    """Never trimmed silently: refused like an odd --size; an even --size crops the odd pixel."""
    settings = LiveSettings(device="numbered", fps=30, vcam_backend="kdcam-test", max_frames=3)
    odd = lambda: NumberedSource(shape=(49, 65, 3))  # noqa: E731
    with pytest.raises(KdcamError, match="is 65x49.*pass --size 64x48"):
        run_live(settings=settings, engine=InvertEngine(), factory=odd, report_every=None, log=lambda _line: None)
    assert test_backend.opened == []
    asked = LiveSettings(device="numbered", size=(64, 48), fps=30, vcam_backend="kdcam-test", max_frames=3)
    run_live(settings=asked, engine=InvertEngine(), factory=odd, report_every=None, log=lambda _line: None)
    (backend,) = test_backend.opened
    assert (backend.width, backend.height) == (64, 48)


def test_unknown_backend_is_one_clear_line():
    with pytest.raises(KdcamError, match="unknown virtual camera backend 'nope'.*kdcam setup"):
        open_virtual_camera(width=64, height=48, fps=30, backend="nope")


# pyvirtualcam's Camera.__del__ trips over the half-built object after its KeyError.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pyvirtualcam_keyerror_is_mapped(monkeypatch):
    # Past our own check (a backend that vanished): pyvirtualcam's bare KeyError.
    monkeypatch.setattr("vcam.media.virtual_camera._registered_backends", lambda: ["ghost"])
    with pytest.raises(KdcamError, match="unknown virtual camera backend 'ghost'"):
        open_virtual_camera(width=64, height=48, fps=30, backend="ghost")


def test_empty_runtimeerror_means_no_backend_for_this_os(monkeypatch):
    # On an OS pyvirtualcam does not support it registers nothing and raises RuntimeError('').
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    with pytest.raises(KdcamError) as err:
        open_virtual_camera(width=64, height=48, fps=30, system="Plan9")
    message = str(err.value)
    assert "\n" not in message and "no virtual camera backend for Plan9" in message and "kdcam setup" in message


def test_a_backend_failure_is_one_line_pointing_to_setup(test_backend):
    with pytest.raises(
        KdcamError, match=r"cannot open a virtual camera \('kdcam-failing' backend: device is busy\).*kdcam setup"
    ):
        open_virtual_camera(width=64, height=48, fps=30, backend="kdcam-failing")


def _fake_sysfs(root: Path, labels: dict[int, str]) -> Path:
    for index, label in labels.items():
        node = root / "devices" / "virtual" / "video4linux" / f"video{index}"
        node.mkdir(parents=True)
        (node / "name").write_text(label + "\n")
    return root


def _capture_attempt(monkeypatch):
    calls = []

    class FakeCamera:
        def __init__(self, width, height, fps, *, fmt, device, backend):
            calls.append({"fmt": fmt, "device": device, "backend": backend})

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    return calls


def test_linux_picks_the_loopback_device_labelled_with_the_camera_name(tmp_path, monkeypatch):
    sysfs = _fake_sysfs(tmp_path, {4: "Dummy video device", 10: "KD Sharpen Cam"})
    calls = _capture_attempt(monkeypatch)
    notes = []
    open_virtual_camera(width=64, height=48, fps=30, system="Linux", sysfs_root=sysfs, log=notes.append)
    assert calls == [{"fmt": PixelFormat.BGR, "device": "/dev/video10", "backend": "v4l2loopback"}]
    assert notes == []


def test_linux_falls_back_to_the_first_loopback_device_and_says_so(tmp_path, monkeypatch):
    sysfs = _fake_sysfs(tmp_path, {7: "Dummy video device", 3: "OBS Virtual Camera"})
    calls = _capture_attempt(monkeypatch)
    notes = []
    open_virtual_camera(width=64, height=48, fps=30, system="Linux", sysfs_root=sysfs, log=notes.append)
    assert calls[0]["device"] == "/dev/video3"
    assert len(notes) == 1 and "no virtual camera labelled 'KD Sharpen Cam'" in notes[0] and "/dev/video3" in notes[0]


def test_linux_without_loopback_devices_points_to_setup(tmp_path):
    with pytest.raises(KdcamError, match="no v4l2loopback virtual camera found: run `kdcam setup`"):
        open_virtual_camera(width=64, height=48, fps=30, system="Linux", sysfs_root=tmp_path)


def test_windows_tries_unity_capture_by_name_then_obs(monkeypatch):
    calls = []

    class FakeCamera:
        def __init__(self, width, height, fps, *, fmt, device, backend):
            calls.append((backend, device))
            if backend == "unitycapture":
                raise RuntimeError("'unitycapture' backend: device not found")

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    notes = []
    open_virtual_camera(width=64, height=48, fps=30, system="Windows", log=notes.append)
    assert calls == [("unitycapture", "KD Sharpen Cam"), ("obs", None)]
    assert "OBS Virtual Camera" in notes[0]


def _real_loopback() -> str | None:
    if platform.system() != "Linux":
        return None
    devices = list_loopback_devices()
    return devices[0].path if devices and Path(devices[0].path).exists() else None


@pytest.mark.v4l2loopback
@pytest.mark.skipif(
    _real_loopback() is None,
    reason="no v4l2loopback device here (needs Linux with the module loaded: see `kdcam setup`)",
)
def test_real_v4l2loopback_device_receives_frames():
    import cv2

    device = _real_loopback()
    label = next(d.name for d in list_loopback_devices() if d.path == device)
    source = NumberedSource(shape=(240, 320, 3), fps=30)
    settings = LiveSettings(device="numbered", fps=30, camera_name=label, duration=3.0)
    received = []

    def read_back():
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        for _ in range(20):
            ok, frame = cap.read()
            if ok:
                received.append(frame.shape)
        cap.release()

    reader = threading.Timer(1.0, read_back)
    reader.start()
    run_live(
        settings=settings, engine=InvertEngine(), factory=lambda: source, report_every=None, log=lambda _line: None
    )
    reader.join(10)
    assert received and received[0][:2] == (240, 320)
