"""The CPU path never imports PyTorch: `kdcam start`, `kdcam sharpen` and `kdcam bench` on the CPU engines
run the ONNX graph shipped beside each installed student.

Each command runs in a fresh interpreter with an import hook that refuses ``torch`` (as if it were not
installed) and reports, on exit, whether it was ever imported.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "vtest_clip.avi"
FAST = REPO / "engines" / "model" / "zoo" / "fast" / "student.safetensors"

#: refuses `import torch`, runs the CLI, says on stderr whether torch was imported
WRAPPER = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked by tests/test_torch_free.py")

sys.meta_path.insert(0, NoTorch())
sys.argv = ["kdcam", *sys.argv[1:]]
from vcam.cli import main
try:
    main()
finally:
    print("torch imported:", "torch" in sys.modules, file=sys.stderr)
"""


def _kdcam_without_torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        **os.environ,
        "KDCAM_CACHE_DIR": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    return subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=240, check=False,
    )


def _image(path: Path) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


def _engines() -> list[str]:
    found = ["onnxruntime"]
    return found + (["openvino"] if importlib.util.find_spec("openvino") is not None else [])


@pytest.mark.parametrize("engine", _engines())
def test_start_on_a_cpu_engine_never_imports_torch(engine, tmp_path):
    run = _kdcam_without_torch(
        tmp_path, "start", "--device", str(SAMPLE), "--no-vcam", "--max-frames", "30", "--no-panel", "--engine", engine
    )
    assert run.returncode == 0, run.stderr
    assert "torch imported: False" in run.stderr, run.stderr


def test_start_with_model_auto_never_imports_torch(tmp_path):
    run = _kdcam_without_torch(
        tmp_path, "start", "--device", str(SAMPLE), "--no-vcam", "--max-frames", "10", "--no-panel",
        "--engine", "onnxruntime", "--model", "auto",
    )
    assert run.returncode == 0, run.stderr
    assert "kdcam: model auto ->" in run.stderr and "torch imported: False" in run.stderr, run.stderr


def test_sharpen_on_a_cpu_engine_never_imports_torch(tmp_path):
    out = tmp_path / "out"
    run = _kdcam_without_torch(tmp_path, "sharpen", str(_image(tmp_path / "in.png")), "--output", str(out))
    assert run.returncode == 0, run.stderr
    assert "torch imported: False" in run.stderr, run.stderr
    assert cv2.imread(str(out / "in.png")).shape == (48, 64, 3)


def test_bench_on_a_cpu_engine_never_imports_torch(tmp_path):
    run = _kdcam_without_torch(tmp_path, "bench", "--sizes", "64x48", "--engine", "onnxruntime")
    assert run.returncode == 0, run.stderr
    assert "torch imported: False" in run.stderr, run.stderr
    assert "no SRCNN reference row: building it needs PyTorch (pip install 'kdcam[train]')" in run.stderr
    assert "| quality | onnxruntime |" in run.stdout


def test_a_checkpoint_without_onnx_names_the_extra_when_torch_is_missing(tmp_path):
    model = tmp_path / "model" / "student.safetensors"
    model.parent.mkdir()
    shutil.copy(FAST, model)  # the weights alone, without the ONNX graph beside them
    out = tmp_path / "out"
    run = _kdcam_without_torch(
        tmp_path, "sharpen", str(_image(tmp_path / "in.png")), "--output", str(out),
        "--model", str(model), "--engine", "onnxruntime",
    )
    assert run.returncode == 1, run.stderr
    lines = [line for line in run.stderr.splitlines() if not line.startswith("torch imported:")]
    assert len(lines) == 1 and lines[0].startswith("kdcam: error: "), run.stderr
    assert "has no ONNX graph beside it" in lines[0] and "pip install 'kdcam[train]'" in lines[0], lines[0]
    assert not (out / "in.png").exists()
