"""PyTorch where a command really needs it: one line naming the extra to install when it is missing.

The live loop, ``kdcam sharpen`` and ``kdcam bench`` on the CPU engines run the ONNX graph
shipped beside each installed student and never import torch; building the PyTorch
student (the torch engines, an ONNX or TensorRT export, training) does.
"""

from __future__ import annotations

from engines.errors import KdcamError

#: what to install for PyTorch
TORCH_EXTRA = "pip install 'kdcam[train]'"


def require_torch(what: str):
    """``torch``, imported; a one-line KdcamError "``what`` needs PyTorch: ..." when it cannot be."""
    try:
        import torch
    except ImportError:
        raise KdcamError(f"{what} needs PyTorch, which is not installed: {TORCH_EXTRA}") from None
    return torch
