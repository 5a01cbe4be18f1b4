"""TensorRT on an NVIDIA GPU: the fastest engine where it can load.

The engine runs the student's whole frame graph (``engines.model.graphs.FrameGraph``):
uint8 BGR in, luma extraction, the network, blend with ``strength``, rounding and
clamping, uint8 BGR out. So per frame the host makes one upload and one download, and
the work in between is one ``execute_async_v3`` on one CUDA stream.

This module only runs an engine file. Finding, building and rebuilding engine files (the
per-user cache, the metadata sidecars, what to do when a frame falls outside an engine's
size range) is ``engines.tensorrt_build``'s job; it is also the registry's factory.

Runtime API used (TensorRT 10.x and 11.x, name-based I/O):
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/python-api-docs.html
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engines import engine_cache as ec
from engines import tensorrt_common as trtc
from engines.cuda_base import CudaFrameEngine
from engines.errors import KdcamError
from engines.tensorrt_common import INPUT_NAME, OUTPUT_NAME, STRENGTH_NAME

class EngineLoadError(Exception):
    """The engine bytes did not deserialize (corrupt, or from another TensorRT build)."""


class TensorRTEngine(CudaFrameEngine):
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
        trtc.require_cuda()  # the one CUDA check of the TensorRT code, before CUDA is touched
        super().__init__(multiple=multiple, device="cuda")
        self._trt = trt or trtc.import_tensorrt()
        self._rebuild = rebuild
        self._what_to_run = what_to_run
        self._logger = trtc.make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
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
        for name, want in (
            (INPUT_NAME, trt.DataType.UINT8),
            (OUTPUT_NAME, trt.DataType.UINT8),
            (STRENGTH_NAME, trt.DataType.FLOAT),
        ):
            if engine.get_tensor_dtype(name) != want:
                raise KdcamError(
                    f"{path}: tensor '{name}' is {engine.get_tensor_dtype(name)}, expected {want}; rebuild it"
                )
        # (min, opt, max) shapes of the frame input in profile 0, each (H, W, 3).
        lo, _opt, hi = engine.get_tensor_profile_shape(INPUT_NAME, 0)
        self._profile = ec.Profile(
            min=(int(lo[1]), int(lo[0])), opt=(int(_opt[1]), int(_opt[0])), max=(int(hi[1]), int(hi[0]))
        )  # (w, h) pairs
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise KdcamError(f"{path}: TensorRT could not create an execution context (out of GPU memory?)")
        self._path = path
        meta = ec.read_meta(path) or {}
        self._precision = meta.get("precision", "?")

    # -- CudaFrameEngine -------------------------------------------------------------------

    def _prepare_device(self, height: int, width: int) -> None:
        if not self._profile.covers(width, height):
            (lw, lh), (hw, hh) = self._profile.min, self._profile.max
            if self._rebuild is None:
                hint = f"; build one that does with: {self._what_to_run((width, height))}" if self._what_to_run else ""
                raise KdcamError(
                    f"frame {width}x{height} (padded) is outside the TensorRT engine's range "
                    f"{lw}x{lh}..{hw}x{hh} ({self._path}){hint}"
                )
            self._load(self._rebuild((width, height)))
        self._dev_out = self._torch.empty((height, width, 3), dtype=self._torch.uint8, device=self._device)
        self._shape = (height, width, 3)

    def _run_device(self):
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
        return self._dev_out

    def describe(self) -> str:
        torch = self._torch
        return (
            f"tensorrt {self._trt.__version__} (CUDA {torch.cuda.get_device_name(self._device)}, "
            f"{self._precision}, engine {self._path.name})"
        )

    def close(self) -> None:
        super().close()
        self._context = self._engine = None
        self.__dict__.pop("_dev_out", None)
