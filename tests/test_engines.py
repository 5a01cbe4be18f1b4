"""One contract, checked against every engine that can run here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engines.model.checkpoint import DEFAULT_MODEL, load_student
from engines.errors import KdcamError
from engines.model.residual import grey_from_bgr_uint8
from engines import ENGINES, create_engine, engine_status

STATUS = engine_status()
# The contract holds each engine in its exact (fp32) mode; reduced precision is checked
# separately, with its own tolerance.
EXACT = {"openvino": {"precision": "fp32"}}
SIZES = [(48, 64), (37, 53), (1, 1), (3, 7), (130, 98), (720 // 4, 1280 // 4)]


def reference_sharpen(student, frame: np.ndarray, strength: float) -> np.ndarray:
    """The contract in float64: pad (reflect, bottom/right), OpenCV's uint8 grey plane
    as the luma input, residual, round, clamp."""
    model = student.collapse().double()
    x = torch.from_numpy(frame).double().permute(2, 0, 1).unsqueeze(0)
    h, w = frame.shape[:2]
    m = student.multiple
    ph, pw = (-h) % m, (-w) % m
    mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
    xp = F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x
    with torch.no_grad():
        if student.in_channels == 1:
            luma = grey_from_bgr_uint8(xp.permute(0, 2, 3, 1)).double().permute(0, 3, 1, 2) / 255
            delta = model.residual(luma)
        else:
            delta = model.residual(xp / 255)
    out = torch.clamp(xp + torch.round(strength * 255 * delta), 0, 255)[..., :h, :w]
    return out[0].permute(1, 2, 0).numpy().astype(np.uint8)


def _models(random_student_path):
    models = [random_student_path]
    if DEFAULT_MODEL.is_file():
        models.append(None)
    return models


@pytest.mark.parametrize("name", [s.name for s in ENGINES])
def test_engine_contract(name, random_student_path):
    if STATUS[name] is not None:
        pytest.skip(f"engine {name} unavailable here: {STATUS[name]}")
    rng = np.random.default_rng(0)
    for model in _models(random_student_path):
        student, _ = load_student(model)
        with create_engine(name, model=model, quiet=True, **EXACT.get(name, {})) as engine:
            assert engine.name == name
            for h, w in SIZES:
                # a soft frame (blurred noise): a gated student leaves a frame it finds sharp untouched
                frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
                for strength in (1.0, 0.5):
                    got = engine.sharpen(frame, strength=strength)
                    want = reference_sharpen(student, frame, strength)
                    assert got.shape == frame.shape and got.dtype == np.uint8
                    diff = np.abs(got.astype(int) - want.astype(int))
                    assert diff.max() <= 1, f"{name} {h}x{w} s={strength}: max diff {diff.max()}"
                    # the model really changes the frame (not a copy of the input)
                    if strength == 1.0 and h * w > 64:
                        assert not np.array_equal(got, frame)


@pytest.mark.parametrize("name", [s.name for s in ENGINES])
def test_engine_buffers_and_strength(name, random_student_path):
    if STATUS[name] is not None:
        pytest.skip(f"engine {name} unavailable here: {STATUS[name]}")
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    with create_engine(name, model=random_student_path, quiet=True, **EXACT.get(name, {})) as engine:
        assert np.array_equal(engine.sharpen(frame, strength=0.0), frame)
        first = engine.sharpen(frame)
        second = engine.sharpen(frame)
        assert second is first, "the engine-owned result buffer is reused frame to frame"
        out = np.empty_like(frame)
        assert engine.sharpen(frame, out=out) is out and np.array_equal(out, first)
        # a non-contiguous view (a crop) is accepted
        view = np.ascontiguousarray(np.pad(frame, ((0, 0), (0, 8), (0, 0))))[:, :96]
        assert np.array_equal(engine.sharpen(view), first)
        with pytest.raises(KdcamError, match="strength"):
            engine.sharpen(frame, strength=3.0)
        with pytest.raises(KdcamError, match="uint8 BGR frame"):
            engine.sharpen(frame.astype(np.float32))
        assert name in engine.describe() or engine.describe()


def test_openvino_bf16_stays_close_to_the_reference():
    if STATUS["openvino"] is not None:
        pytest.skip(f"engine openvino unavailable here: {STATUS['openvino']}")
    import openvino as ov

    from engines.openvino_engine import supports_bf16

    if not supports_bf16(ov.Core()):
        pytest.skip("this CPU has no bf16 support (no AMX / AVX512-BF16), so OpenVINO runs fp32 here")
    student, _ = load_student(None)
    frame = np.random.default_rng(2).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    with create_engine("openvino", quiet=True, precision="bf16") as engine:
        diff = np.abs(engine.sharpen(frame).astype(int) - reference_sharpen(student, frame, 1.0).astype(int))
    # bf16 keeps 8 bits of mantissa: a few levels at worst, well under one on average
    assert diff.max() <= 4 and diff.mean() < 0.5


def test_openvino_keeps_compiled_graphs_in_the_cache_and_runs_without_one(tmp_path, monkeypatch):
    if STATUS["openvino"] is not None:
        pytest.skip(f"engine openvino unavailable here: {STATUS['openvino']}")
    frame = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    results = []
    for cache in (tmp_path / "cache", tmp_path / "cache", tmp_path / "a-file"):
        monkeypatch.setenv("KDCAM_CACHE_DIR", str(cache))
        (tmp_path / "a-file").touch()  # a cache "folder" that is a file: nothing kept, still runs
        with create_engine("openvino", quiet=True, precision="fp32") as engine:
            results.append(engine.sharpen(frame))
    assert len(list((tmp_path / "cache" / "openvino").iterdir())) == 1  # compiled once, then imported
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_unknown_engine_lists_every_engine(random_student_path):
    with pytest.raises(KdcamError) as err:
        create_engine("vulkan", model=random_student_path)
    msg = str(err.value)
    assert "\n" not in msg and "unknown engine 'vulkan'" in msg
    for spec in ENGINES:
        assert spec.name in msg


def test_unavailable_engine_says_why(random_student_path):
    out = [n for n, why in STATUS.items() if why is not None]
    if not out:
        pytest.skip("every engine is available on this machine")
    with pytest.raises(KdcamError, match=f"engine '{out[0]}' is not available"):
        create_engine(out[0], model=random_student_path)


def test_auto_says_what_it_chose(random_student_path, capsys):
    engine = create_engine("auto", model=random_student_path)
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"kdcam: engine {engine.name} [{engine.describe()}]: ") and "\n" not in line
    engine.close()


def test_bad_model_file_is_one_line_error(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(KdcamError, match="not a kdcam student checkpoint"):
        create_engine("onnxruntime", model=bad)
    with pytest.raises(KdcamError, match="not found"):
        create_engine("onnxruntime", model=tmp_path / "missing.safetensors")


def test_an_option_the_engine_does_not_take_is_an_error_not_dropped(random_student_path):
    with pytest.raises(KdcamError, match=r"engine 'onnxruntime' has no option --precision \(its options: --threads\)"):
        create_engine("onnxruntime", model=random_student_path, precision="fp16")
