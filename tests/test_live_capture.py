"""Capture: the one-slot mailbox, reconnects, file pacing, even sizes."""

from __future__ import annotations

import platform
import threading
import time

import cv2
import numpy as np
import pytest
from live_fixtures import NumberedSource, frame_number

from engines.errors import KdcamError
from vcam.live.capture import CaptureThread
from vcam.live.mailbox import LatestFrame
from vcam.live.sources import SourceInfo, fit_into, open_camera, open_video, output_shape
from vcam.live.stats import LiveStats


def test_mailbox_gives_the_newest_frame_and_drops_the_rest():
    box = LatestFrame(shape=(2, 2, 3))
    for n in range(1, 6):
        slot = box.writable()
        slot.frame[:] = n
        slot.seq = n
        box.publish()
    taken = box.take(timeout=0)
    assert taken.seq == 5 and int(taken.frame[0, 0, 0]) == 5
    assert box.take(timeout=0) is None  # nothing newer: no stale frame handed out again


def test_mailbox_reader_slot_is_never_written_while_held():
    box = LatestFrame(shape=(1, 1, 3))
    box.writable().seq = 1
    box.publish()
    held = box.take(timeout=0)
    for n in range(2, 10):  # the writer goes on; the reader keeps its slot
        slot = box.writable()
        assert slot is not held
        slot.seq = n
        box.publish()
    assert held.seq == 1
    assert box.take(timeout=0).seq == 9


def test_mailbox_close_wakes_a_waiting_reader_and_keeps_the_last_frame():
    box = LatestFrame(shape=(1, 1, 3))
    results = []
    reader = threading.Thread(target=lambda: results.append(box.take(timeout=10)))
    reader.start()
    time.sleep(0.05)
    box.close()
    reader.join(5)
    assert results == [None] and box.closed
    box.writable().seq = 7
    box.publish()
    assert box.take(timeout=0).seq == 7  # a frame published before/at close is still delivered


def _run_capture(source, factory, *, frames: int, timeout: float = 10.0):
    box = LatestFrame(shape=(48, 64, 3))
    stats = LiveStats(engine="none")
    stop = threading.Event()
    logs: list[str] = []
    thread = CaptureThread(
        source=source, factory=factory, mailbox=box, stats=stats, stop=stop, log=logs.append, backoff=(0.01, 0.05)
    )
    thread.start()
    seen = []
    deadline = time.monotonic() + timeout
    while len(seen) < frames and time.monotonic() < deadline:
        slot = box.take(timeout=0.5)
        if slot is not None:
            seen.append((slot.seq, frame_number(slot.frame)))
        elif box.closed:
            break
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    if thread.error:
        raise thread.error
    return seen, stats, logs


def test_capture_reconnects_a_source_that_fails_mid_stream():
    first = NumberedSource(fps=200, fail_after=5)
    opened = []
    attempts = {"n": 0}

    def factory():
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise KdcamError("camera 0 is not there yet")  # the first retry fails: backoff, retry
        source = NumberedSource(fps=200, start=100)
        opened.append(source)
        return source

    seen, stats, logs = _run_capture(first, factory, frames=30)
    numbers = [n for _, n in seen]
    assert first.closed, "the failed source is released"
    assert attempts["n"] >= 2 and stats.reconnects == 1
    assert any(n >= 100 for n in numbers), f"frames from the reopened source arrive: {numbers}"
    assert [s for s, _ in seen] == sorted(s for s, _ in seen), "sequence numbers only grow"
    assert any("reconnect failed" in line for line in logs) and any("reconnected" in line for line in logs)
    assert opened[0].closed  # released at stop


def test_capture_ends_a_finite_source_without_reconnecting():
    def factory():
        raise AssertionError("a file that ended must not be reopened")

    seen, stats, logs = _run_capture(NumberedSource(fail_after=3, finite=True), factory, frames=100)
    assert stats.captured == 3 and stats.reconnects == 0
    assert any("ended" in line for line in logs)


def test_fit_into_trims_odd_sides_and_scales_other_sizes():
    odd = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    dst = np.zeros((4, 6, 3), np.uint8)
    fit_into(odd, dst)
    assert np.array_equal(dst, odd[:4, :6])
    big = np.full((100, 200, 3), 9, np.uint8)
    fit_into(big, dst)
    assert np.all(dst == 9)


def test_output_shape_is_the_source_size_or_the_asked_size_never_silently_trimmed():
    info = SourceInfo(name="x", width=641, height=481, fps=30, fourcc="")
    with pytest.raises(KdcamError, match="x is 641x481.*--size 640x480"):
        output_shape(info, None)
    assert output_shape(info, (320, 240)) == (240, 320, 3)
    assert output_shape(SourceInfo(name="y", width=640, height=480, fps=30, fourcc=""), None) == (480, 640, 3)


@pytest.mark.skipif(platform.system() != "Linux", reason="device nodes (/dev/videoN) exist on Linux only")
def test_open_camera_reports_a_missing_index(tmp_path):
    with pytest.raises(KdcamError, match="no camera 7.*kdcam devices"):
        open_camera(7, size=None, fps=30, dev_root=tmp_path)


def test_open_video_rejects_a_missing_file(tmp_path):
    with pytest.raises(KdcamError, match="no camera or video file"):
        open_video(str(tmp_path / "nope.mp4"), loop=False, fps=30)


def _write_video(path, *, frames: int, fps: float, shape=(48, 64)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"HFYU"), fps, (shape[1], shape[0]))
    assert writer.isOpened()
    for n in range(frames):
        writer.write(np.full((*shape, 3), n * 10, np.uint8))
    writer.release()


def test_a_video_file_is_paced_at_its_own_fps_and_loops(tmp_path):
    path = tmp_path / "clip.mkv"
    _write_video(path, frames=4, fps=20)
    source = open_video(str(path), loop=True, fps=30)
    buf = np.zeros((48, 64, 3), np.uint8)
    t0 = time.perf_counter()
    positions, values = [], []
    for _ in range(10):
        frame = source.read(buf)
        positions.append(source.pos)
        values.append(int(frame[0, 0, 0]))
    elapsed = time.perf_counter() - t0
    source.close()
    assert positions == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert values[:4] == [0, 10, 20, 30] and values[4] == 0
    assert elapsed >= 9 * (1 / 20) * 0.8, f"10 frames at 20 fps take about 0.45 s, took {elapsed:.3f} s"


def test_a_finite_video_file_ends(tmp_path):
    path = tmp_path / "clip.mkv"
    _write_video(path, frames=2, fps=200)
    source = open_video(str(path), loop=False, fps=30)
    buf = np.zeros((48, 64, 3), np.uint8)
    assert source.finite
    assert source.read(buf) is not None and source.read(buf) is not None
    assert source.read(buf) is None
    source.close()
