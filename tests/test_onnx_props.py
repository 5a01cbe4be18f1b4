"""An ONNX file's metadata is read without the onnx package (the CPU install has none), the same
as onnx reads it; bytes that are not an ONNX model are a NotOnnx error or a stale stamp, never a crash."""

from __future__ import annotations

import io
from pathlib import Path

import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.model.onnx_cache import is_current
from engines.model.onnx_props import NotOnnx, metadata_props

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "engines" / "model" / "zoo"
SHIPPED = sorted(ZOO.rglob("*.onnx")) + sorted((REPO / "tests" / "data").glob("*.onnx"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_metadata_is_what_onnx_reads(path):
    expected = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    with open(path, "rb") as f:
        assert metadata_props(f) == expected
    assert "kdcam_weights_sha256" in expected


def test_metadata_written_by_onnx_round_trips(tmp_path):
    model = onnx.load(str(SHIPPED[0]))
    del model.metadata_props[:]
    written = {"a": "1", "kdcam_graph": "delta-fp32-v2", "unicode é": "x" * 300}
    for key, value in written.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with open(path, "rb") as f:
        assert metadata_props(f) == written


def test_a_cut_short_file_is_not_current(tmp_path):
    data = SHIPPED[0].read_bytes()
    with open(SHIPPED[0], "rb") as f:
        stamp = metadata_props(f)
    for cut in (1, 7, len(data) // 2, len(data) - 3):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        assert not is_current(path, stamp)
    assert is_current(SHIPPED[0], stamp)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_dict_or_not_onnx(data):
    try:
        assert isinstance(metadata_props(io.BytesIO(data)), dict)
    except NotOnnx:
        pass
