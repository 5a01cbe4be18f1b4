"""Every registered student: re-parameterisation, export forms, checkpoints."""

from __future__ import annotations

import json
import pickle

import onnx
import pytest
import torch

from engines.model.checkpoint import DEFAULT_MODEL, load_student, read_metadata, save_student
from engines.errors import KdcamError
from engines.model.onnx_export import OPSET, export_onnx
from engines.model.students import STUDENTS, create_student, student_macs_per_pixel


def _trained_like(name: str):
    torch.manual_seed(0)
    student = create_student(name)
    with torch.no_grad():
        for p in student.parameters():
            p.normal_(0.0, 0.03)
    return student.eval()


@pytest.mark.parametrize("name", list(STUDENTS))
def test_collapsed_and_fused_forms_equal_the_training_form(name):
    student = _trained_like(name)
    plain = student.collapse()
    x = torch.rand(2, student.in_channels, 8 * student.multiple, 6 * student.multiple)
    with torch.no_grad():
        ref = student(x)
        assert (plain(x) - ref).abs().max() < 1e-5
        assert (x + student.fused()(x) - ref).abs().max() < 1e-5
    if getattr(student.config, "reparam", False):
        assert not any(".conv1." in k for k in plain.state_dict()), "the inference form is plain 3x3 convs"


@pytest.mark.parametrize("name", list(STUDENTS))
def test_any_frame_size_and_identity_start(name):
    student = create_student(name).eval()
    for h, w in [(1, 1), (5, 3), (37, 53)]:
        bgr = torch.rand(1, 3, h, w)
        with torch.no_grad():
            out = student.restore_bgr(bgr)
        assert out.shape == bgr.shape
        if name.startswith("kd-"):  # the output conv starts at zero: a new student is the identity
            assert torch.equal(out, bgr)


def test_default_student_is_small_enough():
    student, meta = load_student(None)
    assert student_macs_per_pixel(student) <= 2000
    assert meta["card"]["macs_per_pixel"] == student_macs_per_pixel(student)
    assert meta["card"]["data_split"]["train_images"] > 0 and "eval" in meta["card"]


def test_checkpoint_round_trip_rebuilds_from_the_file_alone(tmp_path):
    student = _trained_like("kd-s4-c24").collapse()
    path = save_student(student, tmp_path / "m.safetensors", card={"note": "x"})
    path.with_suffix(".json").unlink()  # the sidecar is for people; the file carries the config
    loaded, meta = load_student(path)
    assert meta["arch"] == "kd-s4-c24" and meta["card"] == {"note": "x"}
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), student(x))
    assert read_metadata(path)["config"]["channels"] == 24


def test_non_kdcam_files_are_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    for name, data in [
        ("evil.pt", pickle.dumps(Boom())),
        ("evil.safetensors", pickle.dumps(Boom())),
        ("empty.safetensors", b""),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(KdcamError, match="not a kdcam student checkpoint") as err:
            load_student(tmp_path / name)
        assert "\n" not in str(err.value)
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(KdcamError, match="not a kdcam student checkpoint"):
        load_student(other)


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    import engines.model.checkpoint as ckpt

    target = tmp_path / "m.safetensors"

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", fail)
    with pytest.raises(OSError):
        save_student(create_student("kd-s4-c16"), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("graph", ["delta", "frame"])
def test_onnx_export_has_dynamic_size_and_passes_the_checker(tmp_path, graph):
    path = export_onnx(_trained_like("kd-s4-c16"), tmp_path / f"{graph}.onnx", graph=graph)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) == OPSET >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims[:2]), "height and width are symbolic"


def test_default_model_files_agree():
    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert meta == read_metadata(DEFAULT_MODEL)
    from engines.model.checkpoint import open_model
    from engines.model.onnx_cache import is_current, onnx_for, onnx_stamp, sibling_onnx

    shipped = sibling_onnx(DEFAULT_MODEL)
    model = open_model(None)
    assert is_current(shipped, onnx_stamp(model.sha256, "delta", "fp32")), (
        "the shipped ONNX file is stale: re-export it with engines.model.onnx_cache.write_onnx"
    )
    assert onnx_for(model) == shipped  # engines use it as shipped, no export at start-up
