"""PyTorch: the reference engine on the CPU (fp32) and the GPU fallback on CUDA (fp16)."""

from __future__ import annotations

import numpy as np
import torch

from distill.frame_graph import DeltaGraph, FrameGraph
from engines.frame_engine import DeltaEngine, FrameEngine


def availability() -> str | None:
    return None


def cuda_availability() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to PyTorch"
    return None


class TorchEngine(DeltaEngine):
    """Eager PyTorch on the CPU in fp32."""

    name = "torch"

    def __init__(self, *, student, threads: int = 0) -> None:
        super().__init__(multiple=student.multiple, luma=student.in_channels == 1)
        if threads:
            torch.set_num_threads(threads)
        self._graph = DeltaGraph(student).eval()
        self._strength = torch.ones(1)

    def _infer(self, planes: np.ndarray, strength: float, delta: np.ndarray) -> None:
        self._strength[0] = strength
        with torch.inference_mode():
            torch.from_numpy(delta).copy_(self._graph(torch.from_numpy(planes), self._strength))

    def describe(self) -> str:
        return f"torch {torch.__version__} (CPU, fp32, {torch.get_num_threads()} threads)"


class TorchCudaEngine(FrameEngine):
    """PyTorch on CUDA: fp16 network; one uint8 upload and one download per frame."""

    name = "torch-cuda"

    def __init__(self, *, student) -> None:
        super().__init__(multiple=student.multiple)
        self._device = torch.device("cuda")
        self._graph = FrameGraph(student, dtype=torch.float16).to(self._device).eval()
        self._strength = torch.ones(1, device=self._device)

    def _allocate(self, height: int, width: int) -> None:
        self._host_in = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
        self._host_out = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
        self._dev_in = torch.empty((height, width, 3), dtype=torch.uint8, device=self._device)

    def _process(self, frame: np.ndarray, strength: float, out: np.ndarray) -> None:
        self._strength.fill_(strength)
        self._host_in.numpy()[...] = frame
        with torch.inference_mode():
            self._dev_in.copy_(self._host_in, non_blocking=True)
            self._host_out.copy_(self._graph(self._dev_in, self._strength), non_blocking=True)
        torch.cuda.current_stream().synchronize()  # the host reads the result next
        out[...] = self._host_out.numpy()

    def describe(self) -> str:
        return f"torch {torch.__version__} (CUDA {torch.cuda.get_device_name()}, fp16)"


def create(*, student, threads: int = 0, **_) -> TorchEngine:
    return TorchEngine(student=student, threads=threads)


def create_cuda(*, student, **_) -> TorchCudaEngine:
    return TorchCudaEngine(student=student)
