"""End to end: ``kdcam start`` on the shared clip, recording, through the real CLI and
the real engine; every recorded frame is checked against the engine's output for the
input frame it came from."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import run_kdcam


FRAMES = 120
STRENGTH = 2.0


def _decode(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))


@pytest.mark.slow
def test_start_records_the_engine_output_of_each_input_frame(
    shared_dir, tmp_path, capsys, monkeypatch, random_student_path
):
    video = shared_dir / "data" / "video" / "vtest.avi"
    output = tmp_path / "OUT.mp4"
    frame_log = tmp_path / "frames.csv"
    # In-process through the CLI's main(): the same path as the kdcam script, without a
    # second interpreter loading torch and the runtime again. A random-weight student, whose change is
    # visible on every frame (an installed, gated student may leave this clip nearly untouched);
    # strength 2 because mp4v's loss is about as large as the model's change at strength 1.
    code, out, err = run_kdcam(
        [
            "start",
            "--device",
            str(video),
            "--no-vcam",
            "--output",
            str(output),
            "--max-frames",
            str(FRAMES),
            "--engine",
            "onnxruntime",
            "--model",
            str(random_student_path),
            "--strength",
            str(STRENGTH),
            "--frame-log",
            str(frame_log),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert f"sent {FRAMES} " in out, out  # the exit summary

    recorded = _decode(output)
    assert len(recorded) == FRAMES
    assert all(frame.shape == (576, 768, 3) for frame in recorded)

    with open(frame_log, newline="") as f:
        rows = [(int(r["seq"]), int(r["pos"]), r["fresh"] == "1") for r in csv.DictReader(f)]
    assert len(rows) == FRAMES and rows[0][2], "the first send is a processed frame"

    from engines import create_engine

    engine = create_engine("onnxruntime", model=random_student_path)
    inputs = _decode(video, limit=max(pos for _, pos, _ in rows) + 2)
    expected: dict[int, np.ndarray] = {}

    def sharpened(pos: int) -> np.ndarray:
        if pos not in expected:
            expected[pos] = engine.sharpen(inputs[pos], strength=STRENGTH).copy()
        return expected[pos]

    fresh_positions = []
    for i, (seq, pos, fresh) in enumerate(rows):
        if not fresh:
            # The sender had to repeat: the same processed frame as the send before.
            assert (seq, pos) == rows[i - 1][:2]
            continue
        assert not fresh_positions or pos > fresh_positions[-1], "never an older (stale) frame"
        fresh_positions.append(pos)
        # mp4v is lossy: compare distances rather than equality. The recorded frame is
        # nearest to the engine's output for its own input frame: not the input itself
        # (a copy), not the engine's output for the neighbouring frames (stale or mixed up).
        got = recorded[i]
        own = _mse(got, sharpened(pos))
        assert own < _mse(got, inputs[pos]), f"sent frame {i} looks like the unsharpened input {pos}"
        for other in (pos - 1, pos + 1):
            if 0 <= other < len(inputs):
                assert own < _mse(got, sharpened(other)), f"sent frame {i} looks like input {other}, not {pos}"
    engine.close()
    # A 10 fps file sent at 30 fps: about one fresh frame in three; nearly all file frames arrive.
    assert len(fresh_positions) >= 25, fresh_positions
    assert fresh_positions[-1] - fresh_positions[0] <= 2 * len(fresh_positions), "few input frames were skipped"


def test_start_reads_the_model_file_once(tmp_path, capsys, monkeypatch):
    """``kdcam start`` finds and hashes the student once; a CPU engine runs its shipped ONNX graph and never
    builds the PyTorch student."""
    from engines import atomic
    from engines.model import checkpoint

    calls = {"load": 0, "hash": 0}
    load, sha = checkpoint.load_student, atomic.file_sha256

    def counting_load(*args, **kwargs):
        calls["load"] += 1
        return load(*args, **kwargs)

    def counting_sha(path):
        calls["hash"] += Path(path).suffix == ".safetensors"
        return sha(path)

    monkeypatch.setattr(checkpoint, "load_student", counting_load)
    monkeypatch.setattr(checkpoint, "file_sha256", counting_sha)
    code, _out, err = run_kdcam(
        [
            "start",
            "--device",
            str(Path(__file__).resolve().parents[1] / "samples" / "vtest_clip.avi"),
            "--no-vcam",
            "--max-frames",
            "5",
            "--engine",
            "onnxruntime",
            "--model",
            "quality",
        ],  # auto times each installed model once
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert calls == {"load": 0, "hash": 1}
