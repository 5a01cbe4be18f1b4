"""The CPU path never imports PyTorch nor any other package of the ``train`` extra: `kdcam start` (with
and without its control panel), `kdcam sharpen`, `kdcam bench`, `kdcam ctl`, `kdcam devices` and
`kdcam setup` on the CPU engines run the ONNX graph shipped beside each installed student, so a plain
``pip install kdcam`` (no extras) runs them.

Each command runs in a fresh interpreter with an import hook that refuses every module of the ``train``
extra (as if it were not installed) and reports, on exit, which of them were ever imported. A command that
does need them (``kdcam distill``, an export) says so in one line naming the extra.
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

#: the top-level modules that only the ``train`` (or ``gpu``) extra installs
TRAIN_ONLY = ("torch", "onnx", "onnxscript", "skimage", "matplotlib", "scipy", "tqdm")
NONE_IMPORTED = "train-only imported: []"

#: refuses every module of TRAIN_ONLY, runs the CLI, says on stderr which of them were imported
WRAPPER = f"""
import sys

BLOCKED = {TRAIN_ONLY!r}

class NoTrainExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is blocked by tests/test_torch_free.py")

sys.meta_path.insert(0, NoTrainExtra())
sys.argv = ["kdcam", *sys.argv[1:]]
from vcam.cli import main
try:
    main()
finally:
    print("train-only imported:", sorted(name for name in BLOCKED if name in sys.modules), file=sys.stderr)
"""


def _error_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if not line.startswith("train-only imported:")]


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
    assert NONE_IMPORTED in run.stderr, run.stderr


def test_start_with_model_auto_never_imports_torch(tmp_path):
    run = _kdcam_without_torch(
        tmp_path, "start", "--device", str(SAMPLE), "--no-vcam", "--max-frames", "10", "--no-panel",
        "--engine", "onnxruntime", "--model", "auto",
    )
    assert run.returncode == 0, run.stderr
    assert "kdcam: model auto ->" in run.stderr and NONE_IMPORTED in run.stderr, run.stderr


def test_sharpen_on_a_cpu_engine_never_imports_torch(tmp_path):
    out = tmp_path / "out"
    run = _kdcam_without_torch(tmp_path, "sharpen", str(_image(tmp_path / "in.png")), "--output", str(out))
    assert run.returncode == 0, run.stderr
    assert NONE_IMPORTED in run.stderr, run.stderr
    assert cv2.imread(str(out / "in.png")).shape == (48, 64, 3)


def test_bench_on_a_cpu_engine_never_imports_torch(tmp_path):
    run = _kdcam_without_torch(tmp_path, "bench", "--sizes", "64x48", "--engine", "onnxruntime")
    assert run.returncode == 0, run.stderr
    assert NONE_IMPORTED in run.stderr, run.stderr
    assert ("no SRCNN reference row: building it needs PyTorch, onnx, onnxscript (pip install 'kdcam[train]')"
            in run.stderr), run.stderr
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
    lines = _error_lines(run)
    assert len(lines) == 1 and lines[0].startswith("kdcam: error: "), run.stderr
    assert "has no ONNX graph beside it" in lines[0] and "pip install 'kdcam[train]'" in lines[0], lines[0]
    assert "needs PyTorch, onnx, onnxscript, which are not installed" in lines[0], lines[0]
    assert not (out / "in.png").exists()


def test_start_with_its_control_panel_imports_no_training_package(tmp_path):
    run = _kdcam_without_torch(
        tmp_path, "start", "--device", str(SAMPLE), "--no-vcam", "--max-frames", "10", "--engine", "onnxruntime"
    )
    assert run.returncode == 0, run.stderr
    assert "control panel" in run.stderr.lower() and NONE_IMPORTED in run.stderr, run.stderr


@pytest.mark.parametrize("command", [("devices",), ("setup", "--os", "linux"), ("ctl", "status")])
def test_the_other_camera_commands_import_no_training_package(command, tmp_path):
    run = _kdcam_without_torch(tmp_path, *command)
    assert NONE_IMPORTED in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    if command[0] == "ctl":  # nothing is running: one error line, not a missing module
        lines = _error_lines(run)
        assert run.returncode == 1 and len(lines) == 1 and "no kdcam start is running" in lines[0], run.stderr
    else:
        assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("command", [
    ("distill", "evaluate", "--out", "eval"),
    ("distill", "train", "--out", "run", "--data", "photos"),
    ("distill", "export", "--output", "x.safetensors", "--checkpoint", str(FAST)),
])
def test_distill_without_the_train_extra_is_one_line_naming_it(command, tmp_path):
    run = _kdcam_without_torch(tmp_path, *command)
    lines = _error_lines(run)
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith("kdcam: error: kdcam distill needs PyTorch, onnx, onnxscript, skimage, "), lines
    assert lines[0].endswith("not installed: pip install 'kdcam[train]'"), lines
    assert not (tmp_path / "eval").exists() and not (tmp_path / "run").exists()


def test_distill_help_needs_no_training_package(tmp_path):
    run = _kdcam_without_torch(tmp_path, "distill", "train", "--help")
    assert run.returncode == 0, run.stderr
    assert "--out" in run.stdout and NONE_IMPORTED in run.stderr, run.stderr
