"""`kdcam bench`: every row measured in the same run, ratios taken within it."""

from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from engines import engine_status
from vcam.cli import app


def test_bench_measures_every_installed_model_on_every_available_engine_srcnn_and_unsharp(tmp_path):
    from engines.model.zoo import installed

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--sizes", "64x48", "--json", str(out), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    available = {name for name, why in engine_status().items() if why is None}
    rows = {(r["design"], r["engine"]) for r in data["rows"]}
    models = installed()
    assert {(m, e) for m in models for e in available} | {("srcnn-955", e) for e in available} <= rows
    assert ("unsharp-mask", "opencv") in rows
    assert all(r["fps"] > 0 and r["size"] == "64x48" for r in data["rows"])
    assert {r["engine"] for r in data["ratios"]} == available
    # every ratio is taken within this run, from its own rows (how fast each is depends on the machine's load:
    # that is the benchmark's finding, not a test's)
    fps = {(r["design"], r["engine"], r["size"]): r["fps"] for r in data["rows"]}
    for r in data["ratios"]:
        want = fps[(r["design"], r["engine"], r["size"])] / fps[("srcnn-955", r["engine"], r["size"])]
        assert r["vs_srcnn"] == pytest.approx(want, rel=1e-6), r
    assert data["machine"] and data["machine"] in result.output
    assert "bf16" not in " ".join(r["detail"] for r in data["rows"]), (
        "--precision fp32 reaches the engines that have a choice"
    )
    assert {(a["engine"], a["size"]) for a in data["auto"]} == {(e, "64x48") for e in available}
    assert all(a["model"] in models for a in data["auto"])


def test_bench_unknown_engine_is_one_line_error():
    from engines.errors import KdcamError

    result = CliRunner().invoke(app, ["bench", "--engine", "vulkan", "--sizes", "64x48"])
    assert isinstance(result.exception, KdcamError)
    assert "cannot bench engine 'vulkan'" in str(result.exception) and "\n" not in str(result.exception)
