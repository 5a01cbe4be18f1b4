"""Distributed setup under ``torchrun``: the process group, this rank's device, and the few
collective steps the training loop and the labeller need."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from engines.errors import KdcamError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def pick_device(device: str = "auto", *, local_rank: int = 0) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise KdcamError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        return torch.device("cuda", local_rank)
    if device == "cpu":
        return torch.device("cpu")
    raise KdcamError(f"unknown device '{device}'; choose auto, cpu or cuda")


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistInfo]:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA).

    Yields the rank, world size and the device this process trains on; leaves the group
    on exit (if it joined it).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank=local_rank)
    info = DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        info.initialized_here = True
    try:
        yield info
    finally:
        if info.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast_error(info: DistInfo, message: str | None) -> None:
    """Raise KdcamError on every rank if rank 0 found a problem (so no rank hangs)."""
    if not info.distributed:
        if message:
            raise KdcamError(message)
        return
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0)
    if box[0]:
        raise KdcamError(box[0])


def reduce_means(sums: dict[str, float], count: int, info: DistInfo) -> dict[str, float]:
    """The means of ``sums`` over ``count`` items on every rank together."""
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
    if info.distributed:
        import torch.distributed as dist

        dist.all_reduce(values)
    total = float(values[-1]) or 1.0
    return {k: float(v) / total for k, v in zip(keys, values[:-1].tolist())}
