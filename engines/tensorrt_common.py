"""What the TensorRT builder and runner both need: the import, the GPU check, the logger
and the names of the frame graph's tensors.

API reference (TensorRT 10.x and 11.x, name-based I/O):
https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/python-api-docs.html
"""

from __future__ import annotations

import sys

from engines import engine_cache as ec
from engines.errors import KdcamError

INSTALL_HINT = "pip install 'kdcam[tensorrt]'"
#: the frame graph's tensors (see engines.model.onnx_export.GRAPHS["frame"])
INPUT_NAME = "frame"
STRENGTH_NAME = "strength"
OUTPUT_NAME = "sharpened"
#: the builder's workspace limit, MiB (``kdcam build-engine --workspace-mb``)
DEFAULT_WORKSPACE_MB = 2048


# --- imports and checks -------------------------------------------------------------------


def import_tensorrt():
    """The ``tensorrt`` module, or a KdcamError that names the extra to install."""
    try:
        import tensorrt as trt
    except ImportError as err:
        detail = "" if getattr(err, "name", None) == "tensorrt" else f" ({str(err).splitlines()[0]})"
        raise KdcamError(f"TensorRT is not installed{detail}; install it with: {INSTALL_HINT}") from None
    return trt


def cuda_problem() -> str | None:
    """None when PyTorch sees a CUDA GPU (TensorRT's I/O buffers are torch CUDA tensors),
    else why not."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "PyTorch is not installed"
    if torch.version.cuda is None:
        return f"PyTorch {torch.__version__} is a CPU-only build (install a CUDA build of PyTorch)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)"
    return None


def require_cuda() -> None:
    why = cuda_problem()
    if why is not None:
        raise KdcamError(
            f"TensorRT needs an NVIDIA GPU, but {why}; on this machine use a CPU engine (--engine onnxruntime)"
        )


def device_info(trt) -> dict[str, str]:
    """This machine's GPU and TensorRT version (a seam the tests replace)."""
    return ec.current_device_info(trt.__version__)


def availability() -> str | None:
    """None when TensorRT can run here, else why not (for the engine registry)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return f"tensorrt is not installed ({INSTALL_HINT})"
    return cuda_problem()


# --- logger -------------------------------------------------------------------------------


def make_logger(trt, *, verbose: bool = False):
    """A ``trt.ILogger`` that prints warnings and errors with a kdcam prefix and keeps the
    errors, so a failed build can say why in its one-line message.

    Python loggers must call ``trt.ILogger.__init__`` (Python API docs, "The Build Phase").
    """

    class KdcamTrtLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            try:
                if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                    self.errors.append(" ".join(str(msg).split()))
                    print(f"kdcam: tensorrt: {msg}", file=sys.stderr)
                elif severity == trt.ILogger.WARNING or verbose:
                    print(f"kdcam: tensorrt: {msg}", file=sys.stderr)
            except Exception:  # never raise into TensorRT
                pass

    return KdcamTrtLogger()
