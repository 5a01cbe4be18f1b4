"""The engine protocol: one BGR uint8 frame in, one sharpened BGR uint8 frame out.

Every runtime (ONNX Runtime, PyTorch, OpenVINO, TensorRT) implements this. The whole
per-frame graph (luma extraction, the network, the residual blend with ``strength``,
rounding and clamping) lives inside the exported model, so each engine only moves one
uint8 frame in and one out.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Engine(Protocol):
    #: registry name, e.g. "onnxruntime"
    name: str

    def sharpen(self, frame: np.ndarray, *, strength: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        """Sharpen one HxWx3 BGR uint8 frame (any H, W >= 1).

        ``strength`` blends between the input (0.0) and the full model (1.0); values up to
        2.0 extrapolate. The result is written into ``out`` when given (HxWx3 uint8,
        C-contiguous), else into a buffer the engine owns and reuses: that array is
        overwritten by the next call, so copy it (or pass ``out``) to keep it.
        """
        ...

    def describe(self) -> str:
        """One line: runtime, device, precision."""
        ...

    def close(self) -> None:
        """Release runtime resources. Idempotent."""
        ...
