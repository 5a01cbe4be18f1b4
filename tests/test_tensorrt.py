"""`kdcam build-engine` and the TensorRT engine.

Tests marked ``tensorrt`` build and run real engines; they skip with the reason where
tensorrt or a CUDA GPU is missing. Everything else runs anywhere: the error messages, the
fp16 ONNX export that TensorRT builds from, and the build / cache / rebuild logic driven
through a small stand-in for the ``tensorrt`` module that follows the documented Python
API (so the calls kdcam makes, and their order, are checked without a GPU).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.errors import KdcamError
from engines import engine_cache as ec
from engines import tensorrt_build as tb
from engines import tensorrt_common as trtc
from engines import tensorrt_engine as te
from engines.model.checkpoint import open_model
from fake_tensorrt import fake_tensorrt

REPO = Path(__file__).resolve().parents[1]
HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
HAVE_CUDA = torch.cuda.is_available()
needs_trt_gpu = pytest.mark.skipif(
    not (HAVE_TRT and HAVE_CUDA),
    reason="needs tensorrt and a CUDA GPU "
    + ("(tensorrt is not installed: pip install 'kdcam[tensorrt]')" if not HAVE_TRT else "(no CUDA GPU visible)"),
)


# --- a stand-in for the tensorrt module (documented 10.x / 11.x Python API subset) ------------


HERE = {"gpu_name": "Fake GPU", "compute_capability": "9.0"}


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """Returns ``install(trt)``: that stand-in importable, a 'CUDA GPU' present, and a fresh
    engine folder (the session's ONNX cache is kept: exports are slow)."""
    monkeypatch.setattr(ec, "engine_dir", lambda: tmp_path / "engines")

    def install(trt):
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trtc, "cuda_problem", lambda: None)
        monkeypatch.setattr(trtc, "device_info", lambda t: dict(HERE, tensorrt_version=t.__version__))
        return trt

    return install


@pytest.fixture(scope="module")
def onnx_pair(random_student_path):
    """The fp32 and fp16 frame graphs of the random test student (exported once)."""
    from engines.model.onnx_cache import onnx_for

    return {p: onnx_for(open_model(random_student_path), graph="frame", precision=p) for p in ("fp32", "fp16")}


# --- error messages ---------------------------------------------------------------------------


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here, so the not-installed message cannot be seen")
def test_cli_without_tensorrt_exits_1_with_one_line():
    proc = subprocess.run(
        [sys.executable, "-c", "from vcam.cli import main; main()", "build-engine"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kdcam: error: TensorRT is not installed")
    assert "pip install 'kdcam[tensorrt]'" in lines[0]


def test_missing_tensorrt_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(KdcamError) as err:
        tb.build_engine(size="640x480")
    assert "pip install 'kdcam[tensorrt]'" in str(err.value) and "\n" not in str(err.value)
    assert "pip install 'kdcam[tensorrt]'" in tb.availability()


def test_no_gpu_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    with pytest.raises(KdcamError, match="no CUDA GPU is visible") as err:
        tb.build_engine()
    assert "\n" not in str(err.value) and "NVIDIA GPU" in str(err.value)
    assert "no CUDA GPU" in tb.availability()

    # the same through the CLI: exit 1, one line
    from vcam import cli

    monkeypatch.setattr(sys, "argv", ["kdcam", "build-engine", "--size", "640x480"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "no CUDA GPU is visible" in err_lines[0]

    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(KdcamError, match="CPU-only build"):
        tb.build_engine()


def test_bad_options_fail_before_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(KdcamError, match="precision"):
        tb.build_engine(precision="int8")
    with pytest.raises(KdcamError, match="--max-size"):
        tb.build_engine(size="1920x1080", max_size="1280x720")


def test_registry_prefers_tensorrt():
    from engines.registry import ENGINES, engine_status

    assert ENGINES[0].name == "tensorrt" and ENGINES[1].name == "torch-cuda"
    status = engine_status()
    if not (HAVE_TRT and HAVE_CUDA):
        assert status["tensorrt"] is not None


# --- the ONNX TensorRT builds from -------------------------------------------------------------


def test_fp16_onnx_has_fp16_weights_and_runs_close_to_fp32(onnx_pair):
    import onnx
    import onnxruntime as ort

    fp16 = onnx.load(str(onnx_pair["fp16"]))
    onnx.checker.check_model(fp16, full_check=True)
    inits = {t.name: t for t in fp16.graph.initializer}
    conv_weights = [inits[n.input[1]] for n in fp16.graph.node if n.op_type == "Conv"]
    assert conv_weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in conv_weights)
    fp32 = onnx.load(str(onnx_pair["fp32"]))
    inits32 = {t.name: t for t in fp32.graph.initializer}
    assert all(inits32[n.input[1]].data_type == onnx.TensorProto.FLOAT for n in fp32.graph.node if n.op_type == "Conv")
    # the I/O stays uint8 frame + float strength -> uint8 frame in both
    for m in (fp16, fp32):
        assert [i.type.tensor_type.elem_type for i in m.graph.input] == [onnx.TensorProto.UINT8, onnx.TensorProto.FLOAT]
        assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    frame[:, :64] = np.clip(frame[:, :64] // 4 + 100, 0, 255)  # some flat area too
    outs = {}
    for p, path in onnx_pair.items():
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs[p] = sess.run(None, {"frame": frame, "strength": np.array([1.0], np.float32)})[0]
    diff = np.abs(outs["fp16"].astype(int) - outs["fp32"].astype(int))
    assert np.abs(outs["fp32"].astype(int) - frame).mean() > 1  # the model does something
    assert diff.max() <= 2, f"fp16 vs fp32 differ by up to {diff.max()} levels"


# --- building, through the stand-in -------------------------------------------------------------


def test_build_engine_follows_the_documented_api(fake_gpu, random_student_path, onnx_pair, tmp_path):
    trt = fake_gpu(fake_tensorrt("10.9.0.34"))
    path = tb.build_engine(model=random_student_path, size="640x480", progress=True)
    assert path.parent == tmp_path / "engines" and path.suffix == ".engine"
    meta = ec.read_meta(path)
    assert meta["gpu_name"] == "Fake GPU" and meta["compute_capability"] == "9.0"
    assert meta["tensorrt_version"] == "10.9.0.34" and meta["precision"] == "fp16"
    assert meta["onnx_sha256"] == hashlib.sha256(onnx_pair["fp16"].read_bytes()).hexdigest()
    assert meta["profile"] == {"min": "4x4", "opt": "640x480", "max": "1920x1080"}
    assert meta["engine_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f"{ec.cache_key(meta)}.engine"
    assert path.read_bytes() == b"FAKE-ENGINE:FP16"

    log = trt.log
    assert ("create_network", 0) in log
    assert ("parse_from_file", onnx_pair["fp16"].name) in log
    assert ("set_memory_pool_limit", "WORKSPACE", tb.DEFAULT_WORKSPACE_MB << 20) in log
    assert ("set_flag", "FP16") in log  # TensorRT 10: the flag exists, so it is set
    assert ("set_shape", "frame", (4, 4, 3), (480, 640, 3), (1080, 1920, 3)) in log
    assert ("create_timing_cache", b"") in log  # first build: empty timing cache
    assert "IProgressMonitor.__init__" in log
    order = [e if isinstance(e, str) else e[0] for e in log]
    assert order.index("create_network") < order.index("parse_from_file") < order.index("add_optimization_profile")
    assert order.index("create_timing_cache") < order.index("build_serialized_network")
    tc = ec.timing_cache_path(dict(HERE, tensorrt_version="10.9.0.34"))
    assert tc.read_bytes() == b"+timing"

    # same inputs: the cached engine is up to date, nothing is built
    n_builds = log.count("build_serialized_network")
    assert tb.build_engine(model=random_student_path, size="640x480", quiet=True) == path
    assert log.count("build_serialized_network") == n_builds
    # --force rebuilds, reusing the saved timing cache
    tb.build_engine(model=random_student_path, size="640x480", force=True, quiet=True)
    assert log.count("build_serialized_network") == n_builds + 1
    assert ("create_timing_cache", b"+timing") in log
    # an explicit output path
    out = tb.build_engine(model=random_student_path, size="640x480", output=tmp_path / "my.engine", quiet=True)
    assert out == tmp_path / "my.engine" and ec.read_meta(out)["profile"] == meta["profile"]


def test_tensorrt_11_build_sets_no_fp16_flag(fake_gpu, random_student_path, onnx_pair):
    trt = fake_gpu(fake_tensorrt("11.0.0.5"))
    path = tb.build_engine(model=random_student_path, size="320x240", max_size="3840x2160", quiet=True)
    assert not any(isinstance(e, tuple) and e[0] == "set_flag" for e in trt.log)
    assert ("set_shape", "frame", (4, 4, 3), (240, 320, 3), (2160, 3840, 3)) in trt.log
    assert ec.read_meta(path)["tensorrt_version"] == "11.0.0.5"


def test_fp32_build_clears_tf32(fake_gpu, random_student_path, onnx_pair):
    trt = fake_gpu(fake_tensorrt("10.9.0.34"))
    path = tb.build_engine(model=random_student_path, size="320x240", precision="fp32", quiet=True)
    assert ("clear_flag", "TF32") in trt.log and ("set_flag", "FP16") not in trt.log
    assert ("parse_from_file", onnx_pair["fp32"].name) in trt.log
    assert ec.read_meta(path)["precision"] == "fp32"


def test_every_parser_error_is_reported(fake_gpu, random_student_path, onnx_pair):
    fake_gpu(fake_tensorrt(parse_errors=["Unsupported operator Foo", "invalid\nweights"]))
    with pytest.raises(KdcamError) as err:
        tb.build_engine(model=random_student_path, size="320x240", quiet=True)
    msg = str(err.value)
    assert "\n" not in msg and "2 error(s)" in msg
    assert "(1) node_7/Conv: Unsupported operator Foo" in msg and "(2) node_7/Conv: invalid weights" in msg


def test_failed_build_says_why_and_writes_nothing(fake_gpu, random_student_path, onnx_pair, tmp_path):
    fake_gpu(fake_tensorrt(build_fails=True))
    with pytest.raises(KdcamError, match="could not build an engine.*out of memory"):
        tb.build_engine(model=random_student_path, size="320x240", output=tmp_path / "x.engine", quiet=True)
    assert not (tmp_path / "x.engine").exists()


def test_phase_bars_every_backend():
    for backend in ("rich", "tqdm", "plain"):
        buf = io.StringIO()
        bars = tb.PhaseBars(file=buf, backend=backend)
        bars.start("Build", None, 2)
        bars.start("Tactics", "Build", 3)
        for s in range(3):
            bars.step("Tactics", s)
        bars.finish("Tactics")
        bars.step("Build", 0)
        bars.step("unknown phase", 0)  # ignored
        bars.finish("Build")
        bars.close()
        assert "Build" in buf.getvalue(), backend


# --- choosing, rebuilding or refusing an engine file (no GPU: the runner is stubbed) ---------------


class StubRunner:
    """Stands in for TensorRTEngine (which needs CUDA); records what it was asked to load."""

    loads: list[Path] = []
    fail_first = False

    def __init__(self, *, engine_path, multiple, rebuild=None, what_to_run=None, trt=None):
        StubRunner.loads.append(Path(engine_path))
        if StubRunner.fail_first:
            StubRunner.fail_first = False
            raise te.EngineLoadError("Serialization assertion failed (magic tag)")
        self.path, self.rebuild, self.what_to_run = Path(engine_path), rebuild, what_to_run


@pytest.fixture
def stub_runner(monkeypatch):
    StubRunner.loads, StubRunner.fail_first = [], False
    monkeypatch.setattr(tb, "TensorRTEngine", StubRunner)
    return StubRunner


def test_cached_engine_is_built_once_and_rebuilt_on_mismatch(fake_gpu, stub_runner, random_student_path, onnx_pair):
    model = open_model(random_student_path)
    trt = fake_gpu(fake_tensorrt("10.9.0.34"))
    builds = lambda: trt.log.count("build_serialized_network")  # noqa: E731
    eng = tb.create(model, quiet=True)
    assert builds() == 1 and eng.path.is_file()
    tb.create(model, quiet=True)
    assert builds() == 1  # cached
    # the sidecar says another TensorRT version built it: rebuilt
    meta = ec.read_meta(eng.path)
    ec.meta_path_for(eng.path).write_text(json.dumps(dict(meta, tensorrt_version="10.0.1")))
    tb.create(model, quiet=True)
    assert builds() == 2 and ec.read_meta(eng.path)["tensorrt_version"] == "10.9.0.34"
    # bytes that do not deserialize: rebuilt once, then loaded
    stub_runner.fail_first = True
    tb.create(model, quiet=True)
    assert builds() == 3 and stub_runner.loads[-1] == stub_runner.loads[-2]
    # a frame outside the profile: the rebuild callback widens it
    new_path = eng.rebuild((3840, 2160))
    assert builds() == 4 and ec.read_meta(new_path)["profile"]["max"] == "3840x2160"


def test_explicit_engine_file_mismatch_says_what_to_run(
    fake_gpu, stub_runner, random_student_path, onnx_pair, tmp_path
):
    model = open_model(random_student_path)
    trt = fake_gpu(fake_tensorrt("10.9.0.34"))
    path = tb.build_engine(model=random_student_path, size="640x480", output=tmp_path / "cam.engine", quiet=True)
    assert tb.create(model, engine_file=path).path == path

    meta = ec.read_meta(path)
    ec.meta_path_for(path).write_text(json.dumps(dict(meta, gpu_name="NVIDIA GeForce RTX 4090")))
    with pytest.raises(KdcamError) as err:
        tb.create(model, engine_file=path)
    msg = str(err.value)
    assert "\n" not in msg and "built for GPU NVIDIA GeForce RTX 4090, this machine has Fake GPU" in msg
    assert (
        f"rebuild it with: kdcam build-engine --model {random_student_path} --size 640x480 --min-size 4x4 "
        f"--max-size 1920x1080 --precision fp16 --output {path}"
    ) in msg
    n = trt.log.count("build_serialized_network")
    assert n == 1  # an explicit file is never rebuilt behind the user's back

    with pytest.raises(KdcamError, match="engine file not found; build it with: kdcam build-engine --output"):
        tb.create(model, engine_file=tmp_path / "none.engine")


# --- on a real GPU with TensorRT ------------------------------------------------------------------


@needs_trt_gpu
@pytest.mark.tensorrt
def test_real_engine_matches_cpu(random_student_path):
    from engines.registry import create_engine

    rng = np.random.default_rng(2)
    with (
        create_engine("tensorrt", model=random_student_path, size="320x240", quiet=True) as gpu,
        create_engine("onnxruntime", model=random_student_path, quiet=True) as cpu,
    ):
        for h, w in ((240, 320), (37, 53), (240, 320)):
            frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for strength in (1.0, 0.4):
                a = gpu.sharpen(frame, strength=strength).astype(int)
                b = cpu.sharpen(frame, strength=strength).astype(int)
                assert np.abs(a - b).max() <= 2
        assert "tensorrt" in gpu.describe()


@needs_trt_gpu
@pytest.mark.tensorrt
def test_real_auto_prefers_tensorrt(random_student_path):
    from engines.registry import create_engine

    with create_engine("auto", model=random_student_path, quiet=True) as engine:
        assert engine.name == "tensorrt"
