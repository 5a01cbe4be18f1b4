"""What every student is: a residual network on images in [0, 1], NCHW.

``forward(x) = x + residual(x)``. Luma students (``in_channels=1``) see only the Y plane;
``restore_bgr`` and the exported frame graphs add the luma residual to all three BGR
channels, which changes Y by exactly that amount and leaves chroma (Cr, Cb) untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# OpenCV's BT.601 luma weights, in BGR order (cv2.COLOR_BGR2YCrCb uses the same).
BGR_TO_LUMA = (0.114, 0.587, 0.299)
# The same weights as OpenCV's exact fixed-point BGR->grey conversion of uint8 frames:
# grey = (B*3735 + G*19235 + R*9798 + 2**14) >> 15. Engines feed the network that plane.
BGR_TO_GREY_Q15 = (3735, 19235, 9798)


def grey_from_bgr_uint8(frame: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``COLOR_BGR2GRAY`` of a uint8-valued [..., 3] tensor, bit-exact, as float.

    Elementwise (no matmul), so every partial sum is an exact integer below 2**24 in
    float32 and no TF32 matmul path can round it.
    """
    x = frame.to(torch.float32)
    b, g, r = BGR_TO_GREY_Q15
    acc = x[..., 0:1] * b + x[..., 1:2] * g + x[..., 2:3] * r + 16384.0
    return torch.floor(acc * (1.0 / 32768.0))


class ResidualStudent(nn.Module):
    """Common surface of every student: residual(), forward(), restore_bgr(), collapse()."""

    config: object  # the dataclass config the student was built from
    arch: str = ""
    #: frame sides must be a multiple of this (engines and restore_bgr pad internally)
    multiple: int = 1

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)

    def collapse(self) -> ResidualStudent:
        """The plain inference form (a copy); equal to this one within float rounding."""
        return self

    def fused(self) -> nn.Module:
        """A module computing ``residual`` in the form fastest to export (for graphs)."""
        return _Residual(self.collapse())

    def restore_bgr(self, bgr: torch.Tensor) -> torch.Tensor:
        """Restore BGR images ``[N, 3, H, W]`` in [0, 1] of any size (not clamped)."""
        h, w = bgr.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        x = bgr
        if pad_h or pad_w:
            # reflect (no edge repeat), or replicate where a side is too short to reflect
            mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        if self.in_channels == 1:
            weights = x.new_tensor(BGR_TO_LUMA).view(1, 3, 1, 1)
            luma = (x * weights).sum(dim=1, keepdim=True)
            out = x + self.residual(luma)
        else:
            out = self(x)
        return out[..., :h, :w]


class _Residual(nn.Module):
    def __init__(self, student: ResidualStudent) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student.residual(x)
