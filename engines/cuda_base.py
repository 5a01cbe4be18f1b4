"""The GPU engines' shared frame path: the whole frame graph on the device.

Per frame the host copies the frame into a pinned buffer, makes one upload, runs the
graph (``_run_device``, which a subclass implements: a CUDA-graph replay for
``torch-cuda``, one ``execute_async_v3`` for ``tensorrt``), and makes one download, all
on one CUDA stream. Host and device buffers are allocated once per frame size.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from engines.base import FrameEngine


class CudaFrameEngine(FrameEngine):
    """Subclasses implement ``_run_device() -> device uint8 frame`` and may override
    ``_prepare_device(height, width)`` (called after the I/O buffers of a new size exist).

    ``device="cpu"`` runs the same path without pinning or a stream (dry runs and tests on
    machines without a GPU).
    """

    def __init__(self, *, multiple: int, device: str = "cuda") -> None:
        import torch

        super().__init__(multiple=multiple)
        self._torch = torch
        self._device = torch.device(device)
        self._on_cuda = self._device.type == "cuda"
        self._stream = torch.cuda.Stream(self._device) if self._on_cuda else None
        self._strength = torch.ones(1, dtype=torch.float32, device=self._device)
        self._last_strength = 1.0

    def _run_device(self):
        raise NotImplementedError

    def _prepare_device(self, height: int, width: int) -> None:
        """Hook: size-dependent device state (output buffers, a CUDA graph capture)."""

    def _stream_ctx(self):
        return self._torch.cuda.stream(self._stream) if self._on_cuda else contextlib.nullcontext()

    def _synchronize(self) -> None:
        if self._on_cuda:
            self._stream.synchronize()

    def _allocate(self, height: int, width: int) -> None:
        torch = self._torch
        shape = (height, width, 3)
        self._host_in = torch.empty(shape, dtype=torch.uint8, pin_memory=self._on_cuda)
        self._host_out = torch.empty(shape, dtype=torch.uint8, pin_memory=self._on_cuda)
        self._host_in_np = self._host_in.numpy()
        self._host_out_np = self._host_out.numpy()
        self._dev_in = torch.zeros(shape, dtype=torch.uint8, device=self._device)
        self._prepare_device(height, width)

    def _process(self, frame: np.ndarray, strength: float, out: np.ndarray) -> None:
        np.copyto(self._host_in_np, frame)
        with self._stream_ctx(), self._torch.inference_mode():
            self._dev_in.copy_(self._host_in, non_blocking=True)  # the one upload
            if strength != self._last_strength:
                self._strength.fill_(strength)
                self._last_strength = strength
            result = self._run_device()
            self._host_out.copy_(result, non_blocking=True)  # the one download
        self._synchronize()  # the host reads the result next
        np.copyto(out, self._host_out_np)

    def time_device(self, iterations: int = 100) -> float:
        """Seconds per frame of the device work alone (no host copies), for benchmarks;
        call after ``sharpen`` has seen a frame of the size to measure."""
        with self._stream_ctx(), self._torch.inference_mode():
            self._run_device()
            self._synchronize()
            start = time.perf_counter()
            for _ in range(iterations):
                self._run_device()
            self._synchronize()
        return (time.perf_counter() - start) / iterations

    def close(self) -> None:
        super().close()
        for attr in ("_dev_in", "_host_in", "_host_out", "_host_in_np", "_host_out_np"):
            self.__dict__.pop(attr, None)
