"""PyTorch where a command really needs it: one line naming the extra to install when it is missing.

The live loop, ``kdcam sharpen`` and ``kdcam bench`` on the CPU engines run the ONNX graph
shipped beside each installed student and never import torch; building the PyTorch
student (the torch engines, an ONNX or TensorRT export, training) does. A plain
``pip install kdcam`` has none of these packages; ``kdcam[train]`` (training, export) and
``kdcam[gpu]`` (the CUDA engines) add them.
"""

from __future__ import annotations

from engines.errors import KdcamError
from engines.foundation.installed import installed

#: what to install for PyTorch and the ONNX exporter
TORCH_EXTRA = "pip install 'kdcam[train]'"
#: what to install for the CUDA engines
GPU_EXTRA = "pip install 'kdcam[gpu]'"
#: what an ONNX export imports (torch.onnx's exporter writes the graph with onnxscript)
EXPORT_MODULES = ("torch", "onnx", "onnxscript")


def missing(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` that are not installed (found without importing them)."""
    return [name for name in modules if not installed(name)]


def named(absent: list[str]) -> str:
    """``absent`` modules as a message names them: "PyTorch, onnx"."""
    return ", ".join("PyTorch" if name == "torch" else name for name in absent)


def require_installed(what: str, modules: tuple[str, ...]) -> None:
    """A one-line KdcamError "``what`` needs PyTorch, ...: pip install 'kdcam[train]'" when any of
    ``modules`` is not installed (nothing is imported)."""
    absent = missing(modules)
    if absent:
        raise KdcamError(f"{what} needs {named(absent)}, which {'is' if len(absent) == 1 else 'are'} not installed: "
                         f"{TORCH_EXTRA}")


def require_torch(what: str, *, modules: tuple[str, ...] = ("torch",)):
    """``torch``, imported; the one-line KdcamError of ``require_installed`` when it, or another
    of ``modules``, is not installed."""
    require_installed(what, modules)
    try:
        import torch
    except ImportError as err:
        raise KdcamError(f"{what} needs PyTorch, which cannot be imported ({err}): {TORCH_EXTRA}") from None
    return torch
