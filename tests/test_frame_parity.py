"""The frames kdcam makes do not change when its code is reorganised.

``tests/data/kd-s4-c16-v1.*`` is the default student as shipped before the dependency
refactor (weights, and the ONNX delta graph exported then). Its output on fixed frames
(the sample clip's first frames and an odd-sized random frame, at two strengths) was
hashed with that code; the engines must still give exactly those bytes. ONNX Runtime runs
the shipped ONNX file as it is; the torch engine rebuilds the graph from the weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "tests" / "data" / "kd-s4-c16-v1.safetensors"
#: sha256 of the output bytes, recorded with the code of commit 7d00dfa (AVX2 CPU, fp32)
RECORDED = {
    "onnxruntime": "5ebc4dbb6840d2d86b2b20d544a2bff6bca88d66b463ae75041baff9232f26b5",
    "torch": "5ebc4dbb6840d2d86b2b20d544a2bff6bca88d66b463ae75041baff9232f26b5",
}


def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(REPO / "samples" / "vtest_clip.avi"))
    out = [cap.read()[1] for _ in range(3)]
    cap.release()
    out.append(np.random.default_rng(7).integers(0, 256, (67, 101, 3), dtype=np.uint8))
    return out


def test_the_shipped_onnx_file_is_what_runs():
    from engines.model.checkpoint import open_model
    from engines.model.onnx_cache import onnx_for, sibling_onnx

    assert onnx_for(open_model(MODEL)) == sibling_onnx(MODEL)


@pytest.mark.parametrize("engine", sorted(RECORDED))
def test_frames_are_bit_identical_to_the_recorded_ones(engine):
    from engines import create_engine

    digest = hashlib.sha256()
    with create_engine(engine, model=MODEL, quiet=True) as runner:
        for frame in frames():
            for strength in (1.0, 0.5):
                digest.update(runner.sharpen(frame, strength=strength).tobytes())
    assert digest.hexdigest() == RECORDED[engine]
