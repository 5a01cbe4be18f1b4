"""TensorRT engine metadata, cache key, paths, atomic writes and the rebuild decision.

All pure: no TensorRT, no GPU. "Current device info" is a plain dict.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from engines.errors import KdcamError
from engines import engine_cache as ec

HERE = {"gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "tensorrt_version": "10.9.0"}


def _meta(**over):
    current = {k: over.pop(k, HERE[k]) for k in ec.DEVICE_FIELDS}
    kwargs = dict(onnx_sha256="a" * 64, precision="fp16", profile=ec.make_profile("1280x720", multiple=4))
    kwargs.update(over)
    return ec.make_meta(current, **kwargs)


# --- sizes and profiles ------------------------------------------------------------------


def test_parse_size():
    assert ec.parse_size("1280x720") == (1280, 720)
    assert ec.parse_size("1920X1080") == (1920, 1080)
    for bad in ("1280", "axb", "0x720", "1280x720x3", "-4x4", "99999x10"):
        with pytest.raises(KdcamError, match="size|range"):
            ec.parse_size(bad)


def test_profile_defaults_rounding_and_order():
    p = ec.make_profile("1280x720", multiple=4)
    assert p.opt == (1280, 720) and p.min == (4, 4) and p.max == (1920, 1080)
    assert p.covers(4, 4) and p.covers(1920, 1080) and not p.covers(1924, 1080)
    assert p.input_shapes() == ((4, 4, 3), (720, 1280, 3), (1080, 1920, 3))  # H, W, 3
    big = ec.make_profile("3840x2160")
    assert big.max == (3840, 2160)  # max grows to the size
    odd = ec.make_profile("1366x767", "321x241", "1367x769", multiple=4)
    assert odd.opt == (1368, 768) and odd.min == (324, 244) and odd.max == (1368, 772)
    assert ec.Profile.from_dict(odd.to_dict()) == odd
    assert odd.to_dict() == {"min": "324x244", "opt": "1368x768", "max": "1368x772"}
    with pytest.raises(KdcamError, match="--min-size <= --size <= --max-size"):
        ec.make_profile("1280x720", max_size="640x480")
    with pytest.raises(KdcamError, match="--min-size"):
        ec.make_profile("1280x720", min_size="nope")


def test_widened_profile_covers_the_frame():
    p = ec.make_profile("1280x720", "640x360", "1920x1080")
    w = ec.widened_profile(p, (3840, 2160))
    assert w.covers(3840, 2160) and w.covers(640, 360) and w.opt == (3840, 2160)
    w2 = ec.widened_profile(p, (320, 1200))
    assert w2.min == (320, 360) and w2.max == (1920, 1200)


# --- metadata and key ----------------------------------------------------------------------


def test_meta_has_everything_an_engine_is_tied_to():
    meta = _meta()
    for field in ("gpu_name", "compute_capability", "tensorrt_version", "onnx_sha256", "precision", "profile"):
        assert field in meta
    assert meta["profile"] == {"min": "4x4", "opt": "1280x720", "max": "1920x1080"}
    json.dumps(meta)  # plain JSON
    with pytest.raises(KdcamError, match="precision"):
        _meta(precision="int8")


def test_cache_key_is_stable_and_changes_with_every_key_field():
    key = ec.cache_key(_meta())
    assert key == ec.cache_key(_meta()) and len(key) == 24
    assert ec.cache_key(dict(_meta(), model="/elsewhere", created=1)) == key  # not key fields
    changed = [
        _meta(gpu_name="NVIDIA GeForce RTX 4090"),
        _meta(compute_capability="8.9"),
        _meta(tensorrt_version="11.0.0"),
        _meta(onnx_sha256="b" * 64),
        _meta(precision="fp32"),
        _meta(profile=ec.make_profile("1920x1080", multiple=4)),
    ]
    keys = {ec.cache_key(m) for m in changed}
    assert len(keys) == len(changed) and key not in keys


def test_default_paths_live_in_the_per_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("KDCAM_CACHE_DIR", str(tmp_path))
    meta = _meta()
    path = ec.default_engine_path(meta)
    assert path == tmp_path / "tensorrt" / f"{ec.cache_key(meta)}.engine"
    assert ec.meta_path_for(path) == tmp_path / "tensorrt" / f"{ec.cache_key(meta)}.engine.json"
    tc = ec.timing_cache_path(HERE)
    assert tc.parent == tmp_path / "tensorrt"
    assert tc != ec.timing_cache_path(dict(HERE, tensorrt_version="11.0.0"))
    assert tc == ec.timing_cache_path(dict(HERE, unrelated="x"))


# --- writing ---------------------------------------------------------------------------------


def test_write_and_read_engine(tmp_path):
    path = tmp_path / "sub" / "x.engine"
    ec.write_engine(path, b"\x00engine-bytes", _meta())
    assert path.read_bytes() == b"\x00engine-bytes"
    meta = ec.read_meta(path)
    assert meta["engine_sha256"] == hashlib.sha256(b"\x00engine-bytes").hexdigest() and meta["engine_bytes"] == 13
    assert ec.check_engine(meta, HERE, engine_sha256=hashlib.sha256(path.read_bytes()).hexdigest()).usable
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.engine", "x.engine.json"]


def test_failure_mid_write_leaves_no_partial_engine(tmp_path, monkeypatch):
    path = tmp_path / "x.engine"

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ec.os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        ec.write_engine(path, b"new-engine" * 1000, _meta())
    assert list(tmp_path.iterdir()) == []  # no engine, no temporary file, no sidecar

    monkeypatch.undo()
    ec.write_engine(path, b"old-engine", _meta())
    monkeypatch.setattr(ec.os, "fsync", boom)
    with pytest.raises(OSError):
        ec.write_engine(path, b"new-engine" * 1000, _meta())
    assert path.read_bytes() == b"old-engine"  # the previous engine is untouched
    assert ec.read_meta(path)["engine_sha256"] == hashlib.sha256(b"old-engine").hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.engine", "x.engine.json"]


def test_read_meta_missing_or_corrupt(tmp_path):
    path = tmp_path / "x.engine"
    assert ec.read_meta(path) is None
    ec.meta_path_for(path).write_text("{not json")
    assert ec.read_meta(path) is None
    ec.meta_path_for(path).write_text("[1, 2]")
    assert ec.read_meta(path) is None


# --- the decision ------------------------------------------------------------------------------


def test_matching_engine_is_used():
    meta = dict(_meta(), engine_sha256="e" * 64)
    d = ec.check_engine(
        meta, HERE, onnx_sha256="a" * 64, precision="fp16", frame_size=(1280, 720), engine_sha256="e" * 64
    )
    assert d.usable and d.action == "use" and d.reasons == ()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("gpu_name", "NVIDIA GeForce RTX 3060", "GPU"),
        ("compute_capability", "8.6", "compute capability"),
        ("tensorrt_version", "11.1.0", "TensorRT version"),
    ],
)
def test_other_device_means_rebuild(field, value, says):
    d = ec.check_engine(_meta(), dict(HERE, **{field: value}))
    assert d.action == "rebuild" and len(d.reasons) == 1
    assert says in d.why() and value in d.why() and HERE[field] in d.why()


def test_every_mismatch_is_reported():
    meta = dict(_meta(), engine_sha256="e" * 64)
    here = dict(HERE, gpu_name="other", tensorrt_version="11.0.0")
    d = ec.check_engine(
        meta, here, onnx_sha256="b" * 64, precision="fp32", frame_size=(3840, 2160), engine_sha256="f" * 64
    )
    assert not d.usable and len(d.reasons) == 6
    why = d.why()
    for part in (
        "GPU",
        "TensorRT version",
        "different model",
        "fp16, fp32 requested",
        "3840x2160 is outside",
        "does not match its metadata",
    ):
        assert part in why


def test_unknown_metadata_means_rebuild():
    assert ec.check_engine(None, HERE).action == "rebuild"
    assert "kdcam TensorRT" in ec.check_engine({"format": "x"}, HERE).why()
    assert "newer" in ec.check_engine(dict(_meta(), version=99), HERE).why()
    broken = dict(_meta(), profile="garbage")
    assert "profile" in ec.check_engine(broken, HERE, frame_size=(64, 64)).why()
    # don't-care fields are not checked
    assert ec.check_engine(_meta(), HERE, onnx_sha256=None, precision=None, frame_size=None).usable


def test_rebuild_command_is_exact():
    p = ec.make_profile("1280x720", "320x240", "1920x1080")
    cmd = ec.rebuild_command(model="/m y/s.safetensors", profile=p, precision="fp16", output=Path("/tmp/e.engine"))
    assert cmd == (
        "kdcam build-engine --model '/m y/s.safetensors' --size 1280x720 --min-size 320x240 "
        "--max-size 1920x1080 --precision fp16 --output /tmp/e.engine"
    )
    assert ec.rebuild_command(model=None, profile=p, precision="fp32").startswith("kdcam build-engine --size")


def test_device_key_ignores_other_fields():
    assert ec.device_key(HERE) == ec.device_key(dict(HERE, onnx_sha256="x"))
    assert ec.device_key(HERE) != ec.device_key(dict(HERE, compute_capability="8.0"))
    assert os.path.basename(str(ec.timing_cache_path(HERE))).startswith("timing-")
