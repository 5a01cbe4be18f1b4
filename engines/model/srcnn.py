"""The seed project's 3-layer SRCNN-style network (9-5-5), kept as a speed reference.

It works on all BGR channels at full resolution: tens of thousands of multiply-accumulates
per pixel, which is what the space-to-depth students (``engines.model.s2d``) avoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engines.model.residual import ResidualStudent


@dataclass
class SRCNNConfig:
    """The seed project's 3-layer SRCNN-style network (9-5-5), kept as a speed reference.

    As in ``S2DConfig``, each field's ``metadata`` holds the values a checkpoint may give it
    (for a tuple: each item)."""

    # widths after the 9x9 and the 5x5 conv
    channels: tuple[int, int] = field(default=(64, 32), metadata={"range": (1, 256)})
    # kernel sizes of the three convs (odd: the padding keeps the size)
    kernels: tuple[int, int, int] = field(default=(9, 5, 5), metadata={"choices": (1, 3, 5, 7, 9, 11, 13, 15)})
    # 3: all BGR channels; 1: luma only
    in_channels: int = field(default=3, metadata={"choices": (1, 3)})


class SRCNNStudent(ResidualStudent):
    def __init__(self, config: SRCNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        k1, k2, k3 = config.kernels
        ch = config.in_channels
        self.conv1 = nn.Conv2d(ch, c1, k1, padding=k1 // 2)
        self.conv2 = nn.Conv2d(c1, c2, k2, padding=k2 // 2)
        self.conv3 = nn.Conv2d(c2, ch, k3, padding=k3 // 2)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
