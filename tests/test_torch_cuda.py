"""The PyTorch CUDA engine: fp16, channels_last, CUDA-graph capture per frame size.

The code path itself also runs on the CPU (``device="cpu"``: no pinning, no graph), which
is tested everywhere; the CUDA tests skip with the reason where no GPU is visible.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.model.checkpoint import load_student
from engines.torch_engine import TorchCudaEngine, TorchEngine

HAVE_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")


@pytest.fixture(scope="module")
def student(random_student_path):
    return load_student(random_student_path)[0]


def _frames(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((48, 64), (37, 53), (48, 64))]


def test_cpu_code_path_matches_the_reference_engine(student):
    ref = TorchEngine(student=student)
    exact = TorchCudaEngine(student=student, device="cpu", dtype=torch.float32)
    half = TorchCudaEngine(student=student, device="cpu")  # fp16 + channels_last, as on CUDA
    assert "channels_last" in half.describe() and "fp16" in half.describe()
    for frame in _frames():
        want = ref.sharpen(frame).astype(int)
        assert np.abs(want - frame).mean() > 1
        # fp32 on both sides; FrameGraph's own luma rounding may differ from OpenCV's
        # fixed-point grey conversion on exact ties, so allow one level
        assert np.abs(exact.sharpen(frame).astype(int) - want).max() <= 1
        assert np.abs(half.sharpen(frame).astype(int) - want).max() <= 2
        assert np.array_equal(exact.sharpen(frame, strength=0.0), frame)
    out = np.empty_like(frame)
    assert exact.sharpen(frame, strength=0.5, out=out) is out
    assert np.abs(out.astype(int) - ref.sharpen(frame, strength=0.5)).max() <= 1
    assert exact.time_device(1) > 0
    for e in (ref, exact, half):
        e.close()


def test_channels_last_weights(student):
    e = TorchCudaEngine(student=student, device="cpu")
    convs = [m for m in e._graph.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert all(c.weight.dtype == torch.float16 for c in convs)


@needs_cuda
@pytest.mark.gpu
def test_cuda_graph_matches_cpu_and_recaptures_on_resize(student):
    ref = TorchEngine(student=student)
    with TorchCudaEngine(student=student) as gpu, TorchCudaEngine(student=student, cuda_graph=False) as eager:
        assert "CUDA graph" in gpu.describe()
        graphs = []
        for frame in _frames(1):
            for strength in (1.0, 0.3):
                a = gpu.sharpen(frame, strength=strength).astype(int)
                b = ref.sharpen(frame, strength=strength).astype(int)
                c = eager.sharpen(frame, strength=strength).astype(int)
                assert np.abs(a - b).max() <= 2
                assert np.array_equal(a, c)  # replaying the graph == running it eagerly
            graphs.append(gpu._captured)
        assert graphs[0] is not None and graphs[1] is not graphs[0] and graphs[2] is not graphs[1]
        assert gpu.time_device(5) > 0


@needs_cuda
@pytest.mark.gpu
def test_auto_on_cuda_is_a_gpu_engine(random_student_path):
    from engines.registry import create_engine

    with create_engine("auto", model=random_student_path, quiet=True) as engine:
        assert engine.name in ("tensorrt", "torch-cuda")


def test_gpu_check_report_helpers(tmp_path):
    """The pure parts of scripts/gpu_check.py (the whole script: --device cpu --dry-run)."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "gpu_check", Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    )
    gc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gc)

    f = gc.test_frame(64, 48)
    assert f.shape == (48, 64, 3) and f.dtype == np.uint8 and np.array_equal(f, gc.test_frame(64, 48))
    assert f.std() > 10
    g = f.copy()
    g[0, 0, 0] = f[0, 0, 0] - 3 if f[0, 0, 0] >= 3 else f[0, 0, 0] + 3
    assert gc.diff_stats(f, g) == {"max_abs": 3, "mean_abs": 3 / g.size, "frac_differing": 1 / g.size}
    res = {
        "environment": gc.environment(torch.device("cpu")),
        "dry_run": False,
        "seconds": 2.0,
        "speed": [
            {"model": "m", "engine": "e", "size": "1920x1080", "e2e_fps": 900.0, "device_fps": 2500.0},
            {"model": "m", "engine": "t", "size": "3840x2160", "skipped": "time budget reached"},
        ],
        "diffs": [
            {
                "model": "m",
                "engine": "e",
                "cpu_engine": "ort",
                "size": "1280x720",
                "max_abs": 1,
                "mean_abs": 0.01,
                "frac_differing": 0.01,
            }
        ],
        "notes": ["n"],
        "errors": [],
    }
    res["target"] = gc.target_line(res, "m", (1920, 1080))
    assert "device only: 2,500 fps (meets)" in res["target"] and "end to end: 900 fps (misses)" in res["target"]
    gc.save(res, tmp_path)
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| m | e | 1920x1080 | 900 | 2,500.0 | 0.400 |" in md and "skipped: time budget reached" in md
    assert json.loads((tmp_path / "gpu_check.json").read_text())["speed"][0]["device_fps"] == 2500.0
