"""TensorRT on an NVIDIA GPU: the fastest engine where it can load.

The engine runs the student's whole frame graph (``distill.frame_graph.FrameGraph``):
uint8 BGR in, luma extraction, the network, blend with ``strength``, rounding and
clamping, uint8 BGR out. So per frame the host makes one upload and one download, and
the work in between is one ``execute_async_v3`` on one CUDA stream.

Engines come from ``engines.tensorrt_build`` and carry a metadata sidecar
(``engines.engine_cache``). An engine from the per-user cache that no longer fits (other
GPU, other TensorRT version, other model, a frame outside its size range, or bytes that
fail to deserialize) is rebuilt; an engine file given explicitly is never overwritten:
the error says exactly which ``kdcam build-engine`` command makes a fitting one.

Runtime API used (TensorRT 10.x and 11.x, name-based I/O):
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/python-api-docs.html
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distill.errors import KdcamError
from engines import engine_cache as ec
from engines.frame_engine import FrameEngine
from engines.tensorrt_build import (
    INPUT_NAME,
    build_engine,
    cuda_problem,
    device_info,
    import_tensorrt,
    is_current,
    make_logger,
    prepare,
)

STRENGTH_NAME = "strength"
OUTPUT_NAME = "sharpened"


def availability() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed (pip install 'kdcam[tensorrt]')"
    return cuda_problem()


class EngineLoadError(Exception):
    """The engine bytes did not deserialize (corrupt, or from another TensorRT build)."""


class TensorRTEngine(FrameEngine):
    """Runs a serialized TensorRT engine of the frame graph.

    ``rebuild(frame_size)`` (optional) returns the path of a fitting engine when a frame
    (width, height, padded to the grid) falls outside this one's profile; without it such
    a frame raises ``KdcamError`` with ``what_to_run(frame_size)`` in the message.
    """

    name = "tensorrt"

    def __init__(
        self,
        *,
        engine_path: Path,
        multiple: int,
        rebuild: Callable[[tuple[int, int]], Path] | None = None,
        what_to_run: Callable[[tuple[int, int]], str] | None = None,
        trt=None,
    ) -> None:
        import torch

        super().__init__(multiple=multiple)
        self._trt = trt or import_tensorrt()
        self._torch = torch
        self._rebuild = rebuild
        self._what_to_run = what_to_run
        self._logger = make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
        self._device = torch.device("cuda")
        self._stream = torch.cuda.Stream(self._device)
        self._strength = torch.ones(1, dtype=torch.float32, device=self._device)
        self._last_strength = 1.0
        self._engine = self._context = None
        self._load(Path(engine_path))

    # -- loading -------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        trt = self._trt
        self._context = self._engine = None  # release the old engine before loading a new one
        try:
            data = path.read_bytes()
        except OSError as err:
            raise KdcamError(f"cannot read TensorRT engine {path}: {err.strerror or err}") from None
        # Returns None (and logs why) for bytes from another TensorRT version or a corrupt
        # file. Runtime reference:
        # https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Runtime.html
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EngineLoadError("; ".join(self._logger.errors[-2:]) or "deserialize_cuda_engine returned None")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = {n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        outputs = {n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT}
        if inputs != {INPUT_NAME, STRENGTH_NAME} or outputs != {OUTPUT_NAME}:
            raise KdcamError(
                f"{path}: not a kdcam frame-graph engine (inputs {sorted(inputs)}, outputs {sorted(outputs)}); "
                "rebuild it with `kdcam build-engine`"
            )
        for name, want in ((INPUT_NAME, trt.DataType.UINT8), (OUTPUT_NAME, trt.DataType.UINT8), (STRENGTH_NAME, trt.DataType.FLOAT)):
            if engine.get_tensor_dtype(name) != want:
                raise KdcamError(f"{path}: tensor '{name}' is {engine.get_tensor_dtype(name)}, expected {want}; rebuild it")
        # (min, opt, max) shapes of the frame input in profile 0, each (H, W, 3).
        lo, _opt, hi = engine.get_tensor_profile_shape(INPUT_NAME, 0)
        self._range = ((int(lo[1]), int(lo[0])), (int(hi[1]), int(hi[0])))  # (w, h) min and max
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise KdcamError(f"{path}: TensorRT could not create an execution context (out of GPU memory?)")
        self._path = path
        meta = ec.read_meta(path) or {}
        self._precision = meta.get("precision", "?")

    def _covers(self, w: int, h: int) -> bool:
        (lw, lh), (hw, hh) = self._range
        return lw <= w <= hw and lh <= h <= hh

    # -- FrameEngine -----------------------------------------------------------------------

    def _allocate(self, height: int, width: int) -> None:
        torch = self._torch
        if not self._covers(width, height):
            (lw, lh), (hw, hh) = self._range
            if self._rebuild is None:
                hint = f"; build one that does with: {self._what_to_run((width, height))}" if self._what_to_run else ""
                raise KdcamError(
                    f"frame {width}x{height} (padded) is outside the TensorRT engine's range "
                    f"{lw}x{lh}..{hw}x{hh} ({self._path}){hint}"
                )
            self._load(self._rebuild((width, height)))
        # I/O allocated once per frame size: pinned host buffers, device buffers.
        self._dev_in = torch.empty((height, width, 3), dtype=torch.uint8, device=self._device)
        self._dev_out = torch.empty((height, width, 3), dtype=torch.uint8, device=self._device)
        self._host_in = torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=True)
        self._host_out = torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=True)
        self._host_in_np = self._host_in.numpy()
        self._host_out_np = self._host_out.numpy()
        self._shape = (height, width, 3)

    def _enqueue(self) -> None:
        """Shapes, addresses and ``execute_async_v3`` on our stream (ExecutionContext API:
        https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ExecutionContext.html)."""
        ctx = self._context
        if not ctx.set_input_shape(INPUT_NAME, self._shape):
            raise KdcamError(f"TensorRT rejected input shape {self._shape} for {self._path}")
        ctx.set_tensor_address(INPUT_NAME, self._dev_in.data_ptr())
        ctx.set_tensor_address(STRENGTH_NAME, self._strength.data_ptr())
        ctx.set_tensor_address(OUTPUT_NAME, self._dev_out.data_ptr())
        if not ctx.execute_async_v3(self._stream.cuda_stream):
            why = "; ".join(self._logger.errors[-2:]) or "execute_async_v3 returned False"
            raise KdcamError(f"TensorRT inference failed: {why}")

    def _process(self, frame: np.ndarray, strength: float, out: np.ndarray) -> None:
        torch = self._torch
        np.copyto(self._host_in_np, frame)
        with torch.cuda.stream(self._stream):
            self._dev_in.copy_(self._host_in, non_blocking=True)  # the one upload
            if strength != self._last_strength:
                self._strength.fill_(strength)
                self._last_strength = strength
            self._enqueue()
            self._host_out.copy_(self._dev_out, non_blocking=True)  # the one download
        self._stream.synchronize()
        np.copyto(out, self._host_out_np)

    def time_device(self, iterations: int = 100) -> float:
        """Seconds per frame of the device work alone (no host copies), for benchmarks;
        call after ``sharpen`` has seen a frame of the size to measure."""
        torch = self._torch
        with torch.cuda.stream(self._stream):
            self._enqueue()
            self._stream.synchronize()
            start = time.perf_counter()
            for _ in range(iterations):
                self._enqueue()
            self._stream.synchronize()
        return (time.perf_counter() - start) / iterations

    def describe(self) -> str:
        torch = self._torch
        return (
            f"tensorrt {self._trt.__version__} (CUDA {torch.cuda.get_device_name(self._device)}, "
            f"{self._precision}, engine {self._path.name})"
        )

    def close(self) -> None:
        super().close()
        self._context = self._engine = None
        for attr in ("_dev_in", "_dev_out", "_host_in", "_host_out", "_host_in_np", "_host_out_np"):
            self.__dict__.pop(attr, None)


# --- finding or building the engine file -------------------------------------------------------


def create(
    *,
    model: str | Path | None,
    student,
    engine_file: str | Path | None = None,
    size: str | tuple[int, int] | None = None,
    precision: str | None = None,
    quiet: bool = False,
    **_,
) -> TensorRTEngine:
    """The TensorRT engine for ``model``.

    Without ``engine_file``: the per-user cache entry for this GPU, TensorRT version,
    model and ``precision`` (default fp16), built now if missing or stale, and rebuilt with
    a wider profile if a frame falls outside it. With ``engine_file``: that file, checked
    against its metadata; a mismatch raises with the command that builds a fitting one.
    ``size`` (WxH) is the frame size to optimize a new build for (default 1280x720).
    """
    if precision == "auto":  # the generic CLI default: fp16 on a GPU
        precision = None
    trt = import_tensorrt()
    why = cuda_problem()
    if why is not None:
        raise KdcamError(f"TensorRT needs an NVIDIA GPU, but {why}; use a CPU engine (--engine onnxruntime)")
    current = device_info(trt)
    if engine_file is not None:
        return _from_file(Path(engine_file).expanduser(), model=model, student=student, precision=precision, trt=trt, current=current)
    return _from_cache(model=model, student=student, size=size or "1280x720", precision=precision or "fp16", trt=trt, current=current, quiet=quiet)


def _from_cache(*, model, student, size, precision, trt, current, quiet) -> TensorRTEngine:
    _onnx, meta, profile = prepare(model=model, size=size, min_size=None, max_size=None, precision=precision, current=current)
    state = {"profile": profile}

    def build(prof: ec.Profile, *, force: bool = False) -> Path:
        return build_engine(
            model=model,
            size=prof.opt,
            min_size=prof.min,
            max_size=prof.max,
            precision=precision,
            force=force,
            quiet=quiet,
        )

    def rebuild(frame_size: tuple[int, int]) -> Path:
        state["profile"] = ec.widened_profile(state["profile"], frame_size)
        if not quiet:
            print(f"kdcam: frame {ec.format_size(frame_size)} is outside the cached TensorRT engine's range; rebuilding", file=sys.stderr)
        return build(state["profile"])

    path = ec.default_engine_path(meta)
    if not is_current(path, meta):
        path = build(profile)
    try:
        return TensorRTEngine(engine_path=path, multiple=student.multiple, rebuild=rebuild, trt=trt)
    except EngineLoadError as err:
        if not quiet:
            print(f"kdcam: cached TensorRT engine {path} does not load ({err}); rebuilding", file=sys.stderr)
        path = build(profile, force=True)
        try:
            return TensorRTEngine(engine_path=path, multiple=student.multiple, rebuild=rebuild, trt=trt)
        except EngineLoadError as err2:
            raise KdcamError(f"a freshly built TensorRT engine does not load ({err2}); use --engine torch-cuda") from None


def _from_file(path: Path, *, model, student, precision, trt, current) -> TensorRTEngine:
    from distill.atomic import file_sha256

    if not path.is_file():
        raise KdcamError(f"{path}: TensorRT engine file not found; build it with: kdcam build-engine --output {path}")
    meta = ec.read_meta(path)
    built_precision = precision or (meta or {}).get("precision", "fp16")
    built_profile = _profile_of(meta)
    _onnx, want, _ = prepare(
        model=model,
        size=built_profile.opt,
        min_size=built_profile.min,
        max_size=built_profile.max,
        precision=built_precision if built_precision in ec.PRECISIONS else "fp16",
        current=current,
    )

    def command(frame_size: tuple[int, int] | None = None) -> str:
        prof = built_profile if frame_size is None else ec.widened_profile(built_profile, frame_size)
        return ec.rebuild_command(model=None if model is None else str(model), profile=prof, precision=want["precision"], output=path)

    decision = ec.check_engine(
        meta,
        current,
        onnx_sha256=want["onnx_sha256"],
        precision=precision,
        engine_sha256=file_sha256(path),
    )
    if not decision.usable:
        raise KdcamError(f"{path}: this TensorRT engine cannot run here ({decision.why()}); rebuild it with: {command()}")
    try:
        return TensorRTEngine(engine_path=path, multiple=student.multiple, what_to_run=command, trt=trt)
    except EngineLoadError as err:
        raise KdcamError(f"{path}: TensorRT cannot load this engine ({err}); rebuild it with: {command()}") from None


def _profile_of(meta: dict | None) -> ec.Profile:
    try:
        return ec.Profile.from_dict(meta["profile"])  # type: ignore[index]
    except (KeyError, TypeError, KdcamError):
        return ec.make_profile("1280x720")
