"""PyTorch: the reference engine on the CPU (fp32) and the GPU fallback on CUDA (fp16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from engines.base import DeltaEngine
from engines.cuda_base import CudaFrameEngine
from engines.model.graphs import DeltaGraph, FrameGraph

if TYPE_CHECKING:
    from engines.model.checkpoint import ResolvedModel


class TorchEngine(DeltaEngine):
    """Eager PyTorch on the CPU in fp32."""

    name = "torch"

    def __init__(self, *, student, threads: int = 0) -> None:
        super().__init__(multiple=student.multiple, luma=student.in_channels == 1)
        if threads:
            torch.set_num_threads(threads)
        self._graph = DeltaGraph(student).eval()
        self._strength = torch.ones(1)

    def _infer(self, planes: np.ndarray, strength: float, pos: np.ndarray, neg: np.ndarray) -> None:
        self._strength[0] = strength
        with torch.inference_mode():
            p, n = self._graph(torch.from_numpy(planes), self._strength)
            torch.from_numpy(pos).copy_(p)
            torch.from_numpy(neg).copy_(n)

    def describe(self) -> str:
        return f"torch {torch.__version__} (CPU, fp32, {torch.get_num_threads()} threads)"


class TorchCudaEngine(CudaFrameEngine):
    """PyTorch on CUDA: the GPU fallback when TensorRT is absent.

    fp16 network with channels_last weights (NHWC convolutions, what tensor cores want),
    the whole frame graph on the device (``engines.cuda_base``), and the graph captured as
    a CUDA graph at the current frame size: one replay per frame instead of dozens of
    kernel launches. A new frame size re-captures.
    """

    name = "torch-cuda"

    def __init__(
        self,
        *,
        student,
        device: str = "cuda",
        dtype: torch.dtype = torch.float16,
        channels_last: bool = True,
        cuda_graph: bool = True,
    ) -> None:
        super().__init__(multiple=student.multiple, device=device)
        self._dtype = dtype
        self._graph = FrameGraph(student, dtype=dtype).to(self._device).eval()
        self._channels_last = channels_last
        if channels_last:  # applies to the 4-D conv weights only
            self._graph.to(memory_format=torch.channels_last)
        self._use_cuda_graph = cuda_graph and self._on_cuda
        self._captured: torch.cuda.CUDAGraph | None = None
        self._static_out: torch.Tensor | None = None
        if self._on_cuda:
            # Fixed frame sizes: let cuDNN time its algorithms once per size.
            torch.backends.cudnn.benchmark = True

    def _prepare_device(self, height: int, width: int) -> None:
        self._captured = None  # free the old capture (and its memory pool)
        self._static_out = None
        if self._use_cuda_graph:
            self._capture()

    def _capture(self) -> None:
        """Warm up on our stream (cuDNN autotuning, lazy init), then capture one forward.

        CUDA graphs replay fixed addresses: ``_dev_in`` and ``_strength`` are the inputs
        (written in place before each replay), ``_static_out`` the output.
        https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs
        """
        stream = self._stream
        stream.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):
                self._graph(self._dev_in, self._strength)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, stream=stream):
            self._static_out = self._graph(self._dev_in, self._strength)
        self._captured = graph

    def _run_device(self) -> torch.Tensor:
        if self._captured is not None:
            self._captured.replay()
            return self._static_out
        return self._graph(self._dev_in, self._strength)

    def describe(self) -> str:
        where = f"CUDA {torch.cuda.get_device_name(self._device)}" if self._on_cuda else "CPU"
        extras = [str(self._dtype).replace("torch.float", "fp")]
        if self._channels_last:
            extras.append("channels_last")
        if self._use_cuda_graph:
            extras.append("CUDA graph")
        return f"torch {torch.__version__} ({where}, {', '.join(extras)})"

    def close(self) -> None:
        super().close()
        self._captured = None
        self._static_out = None


def create(model: ResolvedModel, *, threads: int = 0) -> TorchEngine:
    return TorchEngine(student=model.student, threads=threads)


def create_cuda(model: ResolvedModel, *, cuda_graph: bool = True) -> TorchCudaEngine:
    return TorchCudaEngine(student=model.student, cuda_graph=cuda_graph)
