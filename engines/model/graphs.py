"""The graphs that engines run on each frame.

``DeltaGraph`` (CPU engines): the luma plane (or the BGR planes) as uint8 in, the
sharpening delta out as two uint8 planes, its positive and its negative part. The host
does the cheap per-pixel work with OpenCV's saturating uint8 kernels (grey conversion
in, ``frame + pos - neg`` out; at most one of the two is non-zero at a pixel, so that
equals ``frame + delta`` clamped), several times faster at 1080p than float elementwise
ops over the whole BGR frame in a graph.

``FrameGraph`` (GPU engines): the whole frame, uint8 BGR in and out, with luma
extraction, blend, rounding and clamping on the device, so the host makes one upload and
one download per frame.

Both compute ``round(strength * 255 * residual)``, so for the same network input they
agree exactly; the reference is ``frame + that``, clamped to 0..255.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.model.residual import ResidualStudent, grey_from_bgr_uint8


class DeltaGraph(nn.Module):
    """``forward(planes uint8 [H, W] (luma) or [H, W, 3] (BGR), strength [1]) -> (pos, neg)``,
    both uint8 of the planes' shape."""

    def __init__(self, student: ResidualStudent, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.residual = student.fused().to(dtype)
        self.dtype = dtype
        self.luma = student.in_channels == 1

    def forward(self, planes: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        x = planes.to(self.dtype) * (1.0 / 255.0)
        x = x.unsqueeze(0).unsqueeze(0) if self.luma else x.permute(2, 0, 1).unsqueeze(0)
        r = self.residual(x).to(torch.float32)
        r = r[0, 0] if self.luma else r[0].permute(1, 2, 0)
        delta = torch.round(r * (strength * 255.0))
        pos = torch.clamp(delta, 0.0, 255.0).to(torch.uint8)
        neg = torch.clamp(-delta, 0.0, 255.0).to(torch.uint8)
        return pos, neg


class FrameGraph(nn.Module):
    """``forward(frame uint8 [H, W, 3], strength [1]) -> uint8 [H, W, 3]``; all on device."""

    def __init__(self, student: ResidualStudent, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.residual = student.fused().to(dtype)
        self.dtype = dtype
        self.luma = student.in_channels == 1

    def forward(self, frame: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        x = frame.to(torch.float32)  # [H, W, 3], 0..255
        if self.luma:
            # Bit-exact OpenCV grey plane, so CPU and GPU engines feed the network the
            # same input.
            planes = (grey_from_bgr_uint8(x) * (1.0 / 255.0)).permute(2, 0, 1).unsqueeze(0)
        else:
            planes = (x * (1.0 / 255.0)).permute(2, 0, 1).unsqueeze(0)
        r = self.residual(planes.to(self.dtype)).to(torch.float32)[0].permute(1, 2, 0)
        delta = torch.round(r * (strength * 255.0))
        return torch.clamp(x + delta, 0.0, 255.0).to(torch.uint8)
