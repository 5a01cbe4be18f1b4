"""`kdcam distill ...` end to end in a test-sized configuration: fit-teacher, train, export, evaluate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from distill.cli import app as distill_app
from engines.errors import KdcamError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EVAL_DIR = SHARED / "data" / "eval"
COMMANDS = ("fit-teacher", "label", "train", "evaluate", "export")

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(distill_app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def run_dir(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "kd"
    invoke("train", "--data", photos, "--out", out, "--arch", "kd-s4-c16", "--alpha", "0", "--steps", "4",
           "--batch-size", "2", "--crop", "32", "--max-side", "256", "--threads", "1", "--val-every", "2",
           "--val-items", "4", "--ckpt-every", "2", "--no-progress")
    return out


def test_distill_help_lists_every_command():
    from vcam.cli import app as kdcam_app

    result = runner.invoke(kdcam_app, ["distill", "--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output
    top = runner.invoke(kdcam_app, ["--help"])
    assert "distill" in top.output


def test_missing_data_is_a_one_line_error_with_exit_1(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "evaluate", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("kdcam: error:") and "--data" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_train_cli_writes_a_run(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["final_val_psnr"] is not None
    assert (run_dir / "loss.png").is_file() and (run_dir / "student-best.safetensors").is_file()


def test_export_writes_a_collapsed_student_and_onnx(run_dir, tmp_path):
    import onnxruntime as ort

    from engines.model.checkpoint import load_student
    from engines.model.graphs import DeltaGraph

    target = tmp_path / "ship" / "student.safetensors"
    result = invoke("export", "--run", run_dir, "--output", target)
    onnx_path = target.with_suffix(".delta-fp32.onnx")
    for path in (target, target.with_suffix(".json"), onnx_path):
        assert path.is_file() and str(path) in result.output
    student, meta = load_student(target)
    card = meta["card"]
    assert meta["config"]["reparam"] is False and card["collapsed"] is True
    assert card["alpha"] == 0.0 and card["steps"] == 4 and card["teacher"] is None
    assert card["val_psnr"] is not None and card["macs_per_pixel"] > 0 and card["data"] and card["data_split"]["dir"]

    # the shipped ONNX graph computes what the collapsed student computes
    plane = np.random.default_rng(0).integers(0, 256, size=(64, 96), dtype=np.uint8)
    strength = np.ones(1, dtype=np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pos, neg = sess.run(None, {"planes": plane, "strength": strength})
    delta = pos.astype(np.int32) - neg.astype(np.int32)
    with torch.no_grad():
        e_pos, e_neg = DeltaGraph(student)(torch.from_numpy(plane), torch.from_numpy(strength))
    expected = e_pos.numpy().astype(np.int32) - e_neg.numpy().astype(np.int32)
    assert delta.shape == (64, 96) and not (pos.astype(bool) & neg.astype(bool)).any()
    assert int(np.abs(delta - expected).max()) <= 1


def test_export_from_a_training_checkpoint_and_bad_sources(run_dir, tmp_path):
    from engines.model.checkpoint import load_student

    target = tmp_path / "mid.safetensors"
    invoke("export", "--checkpoint", run_dir / "train_state.safetensors", "--output", target, "--no-onnx")
    _, meta = load_student(target)
    assert meta["card"]["steps"] == 4 and not target.with_suffix(".delta-fp32.onnx").exists()
    from distill.export import export_student

    with pytest.raises(KdcamError, match="exactly one"):
        export_student(output=target, run=run_dir, checkpoint=target)
    with pytest.raises(KdcamError, match=".safetensors"):
        export_student(output=tmp_path / "x.onnx", run=run_dir)
    with pytest.raises(KdcamError, match="no such run folder"):
        export_student(output=target, run=tmp_path / "nope")


def test_fit_teacher_then_evaluate(photos, run_dir, tmp_path):
    from distill.teacher import load_teacher, read_teacher_metadata

    if not EVAL_DIR.is_dir():
        pytest.skip(f"shared eval photos not found at {EVAL_DIR}")
    tdir = tmp_path / "teacher"
    invoke("fit-teacher", "--data", photos, "--out", tdir, "--size", "tiny", "--steps", "2", "--batch-size", "2",
           "--crop", "32", "--max-side", "256", "--threads", "1", "--ckpt-every", "1", "--log-every", "1",
           "--no-progress")
    teacher_file = tdir / "teacher-best.safetensors"
    model = load_teacher(teacher_file)
    card = read_teacher_metadata(teacher_file)["card"]
    assert card["size"] == "tiny" and card["steps"] == 2 and model.config["dim"] == 16
    assert (tdir / "loss.png").is_file() and (tdir / "train_state.safetensors").is_file()

    images = tmp_path / "eval"
    images.mkdir()
    shutil.copy(sorted(EVAL_DIR.glob("*.png"))[0], images)
    out = tmp_path / "report"
    student = run_dir / "student-best.safetensors"
    invoke("evaluate", "--data", images, "--out", out, "--presets", "defocus", "--teacher", teacher_file,
           "--student", student, "--student", student, "--student", f"named={student}", "--max-side", "96",
           "--no-timing", "--threads", "1", "--engine", "onnxruntime")
    results = json.loads((out / "results.json").read_text())
    rows = results["presets"]["defocus"]["methods"]
    assert {"input", "teacher:teacher-best", "kd", "kd-2", "named"} <= set(rows)
    assert all(np.isfinite(r["psnr"]) for r in rows.values())
    assert (out / "results.md").is_file()

    # the engine row (uint8 in and out) scores as the float PyTorch model does, up to rounding
    ref = tmp_path / "reference"
    invoke("evaluate", "--data", images, "--out", ref, "--presets", "defocus", "--teacher", f"T={teacher_file}",
           "--student", student, "--max-side", "96", "--no-timing", "--threads", "1", "--engine", "reference")
    ref_rows = json.loads((ref / "results.json").read_text())["presets"]["defocus"]["methods"]
    assert ref_rows["T"]["psnr"] == pytest.approx(rows["teacher:teacher-best"]["psnr"], abs=1e-9)
    assert ref_rows["kd"]["psnr"] == pytest.approx(rows["kd"]["psnr"], abs=0.1)
    assert ref_rows["kd"]["psnr"] != rows["kd"]["psnr"]  # really two different paths
