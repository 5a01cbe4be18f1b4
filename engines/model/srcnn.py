"""The seed project's 3-layer SRCNN-style network (9-5-5), kept as a speed reference.

It works on all BGR channels at full resolution: tens of thousands of multiply-accumulates
per pixel, which is what the space-to-depth students (``engines.model.s2d``) avoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engines.model.configs import SRCNNConfig
from engines.model.residual import ResidualStudent


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
