"""The frames kdcam makes do not change when its code is reorganised.

``tests/data/kd-s4-c16-v1.*`` is the default student as shipped before the dependency
refactor (weights, and the ONNX delta graph exported then). Two checks on fixed frames
(the sample clip's first frames and an odd-sized random frame, at two strengths):

* the ONNX Runtime engine gives exactly the frames of that ONNX file run directly, with the
  host steps of the delta graph written out here (grey plane in, ``frame + pos - neg`` out);
* the engines give exactly the bytes hashed with the code of commit 7d00dfa, on a CPU of the
  kind that recorded them (float rounding in the convolutions depends on the instruction set).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "tests" / "data" / "kd-s4-c16-v1.safetensors"
ONNX = MODEL.with_suffix(".delta-fp32.onnx")
#: sha256 of the output bytes, recorded with the code of commit 7d00dfa on an AVX-512 Xeon (fp32)
RECORDED = {
    "onnxruntime": "5ebc4dbb6840d2d86b2b20d544a2bff6bca88d66b463ae75041baff9232f26b5",
    "torch": "5ebc4dbb6840d2d86b2b20d544a2bff6bca88d66b463ae75041baff9232f26b5",
}
STRENGTHS = (1.0, 0.5)


def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(REPO / "samples" / "vtest_clip.avi"))
    out = [cap.read()[1] for _ in range(3)]
    cap.release()
    out.append(np.random.default_rng(7).integers(0, 256, (67, 101, 3), dtype=np.uint8))
    return out


def direct(frame: np.ndarray, strength: float, session) -> np.ndarray:
    """The shipped graph run by ONNX Runtime with the delta graph's host steps (pad, grey, add, subtract)."""
    h, w = frame.shape[:2]
    padded = cv2.copyMakeBorder(frame, 0, (-h) % 4, 0, (-w) % 4, cv2.BORDER_REFLECT_101)
    grey = cv2.cvtColor(padded, cv2.COLOR_BGR2GRAY)
    pos, neg = session.run(None, {"planes": grey, "strength": np.array([strength], np.float32)})
    out = cv2.subtract(cv2.add(padded, cv2.cvtColor(pos, cv2.COLOR_GRAY2BGR)), cv2.cvtColor(neg, cv2.COLOR_GRAY2BGR))
    return out[:h, :w]


def test_the_shipped_onnx_file_is_what_runs():
    from engines.model.checkpoint import open_model
    from engines.model.onnx_cache import onnx_for

    assert onnx_for(open_model(MODEL)) == ONNX


def test_engine_frames_equal_the_shipped_graph_run_directly():
    import onnxruntime as ort

    from engines import create_engine

    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    with create_engine("onnxruntime", model=MODEL, quiet=True) as runner:
        for frame in frames():
            for strength in STRENGTHS:
                assert np.array_equal(runner.sharpen(frame, strength=strength), direct(frame, strength, session))


def _recording_cpu() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512f" in flags


@pytest.mark.skipif(not _recording_cpu(), reason="the hashes were recorded on an AVX-512 CPU; on another instruction "
                    "set fp32 convolutions may round differently (the direct-graph test above still runs)")
@pytest.mark.parametrize("engine", sorted(RECORDED))
def test_frames_are_bit_identical_to_the_recorded_ones(engine):
    from engines import create_engine

    digest = hashlib.sha256()
    with create_engine(engine, model=MODEL, quiet=True) as runner:
        for frame in frames():
            for strength in STRENGTHS:
                digest.update(runner.sharpen(frame, strength=strength).tobytes())
    assert digest.hexdigest() == RECORDED[engine]
