"""The space-to-depth student: unshuffle the luma plane, a few 3x3 convs, shuffle back.

The convs run at 1/``scale`` of the frame size on ``scale**2`` sub-pixel channels, so a
16-channel body costs a few hundred multiply-accumulates per pixel. Options (all in the
config, saved in the checkpoint):

* ``act``: ReLU, or PReLU (one slope per channel: keeps the negative half of a feature);
* ``reparam``: train each 3x3 conv with parallel 1x1 and identity branches, folded into
  one 3x3 conv for inference (``collapse``);
* ``gate``: a whole-frame code that decides how much to sharpen (blind adaptivity). A side
  branch reads the high-pass of the unshuffled plane (each sub-pixel minus its block's
  mean), two stride-2 3x3 convs with ReLU, the log of its mean over the whole frame, and a
  linear layer to one gate per hidden channel plus one for the residual, each
  ``2 * sigmoid`` in (0, 2). It starts at 1 (the head is zero-initialised), and the body's
  last conv starts at zero, so training starts at the identity. A sharp frame can so
  switch the residual off, a soft one turn it up; the network never sees a preset's name.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from engines.errors import KdcamError
from engines.model.configs import GATES, S2DConfig
from engines.model.residual import ResidualStudent


class RepConv3x3(nn.Module):
    """A 3x3 conv trained with parallel 1x1 and identity branches (ECBSR / RepVGG style).

    The branches are linear and share the input, so they fold exactly into one 3x3 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, *, identity: bool = True) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 1)
        self.identity = identity and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(x) + self.conv1(x)
        return y + x if self.identity else y

    def fold(self) -> nn.Conv2d:
        conv = nn.Conv2d(self.conv3.in_channels, self.conv3.out_channels, 3, padding=1)
        weight = self.conv3.weight.detach() + F.pad(self.conv1.weight.detach(), (1, 1, 1, 1))
        if self.identity:
            eye = torch.zeros_like(weight)
            idx = torch.arange(weight.shape[0])
            eye[idx, idx, 1, 1] = 1.0
            weight = weight + eye
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(self.conv3.bias.detach() + self.conv1.bias.detach())
        return conv


def _activation(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(channels, init=0.1)
    if kind == "relu":
        return nn.ReLU()
    raise KdcamError(f"unknown activation '{kind}'; use relu or prelu")


class FrameCode(nn.Module):
    """The whole-frame code: gates in (0, 2) for the hidden channels and the residual.

    Two stride-2 3x3 convs over the high-pass plane, then a pooling over the whole frame:
    ``mean`` (the log of the mean of their features), or ``attention`` (the first conv's
    features in the log domain, where local contrast ratios become differences, and an
    attention-weighted mean beside the log mean: the code can look at the parts of the
    frame that tell sharp from soft)."""

    def __init__(self, *, in_channels: int, width: int, gates: int, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.first = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self.second = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.attend = nn.Conv2d(width, 1, 1) if pooling == "attention" else None
        self.head = nn.Linear(2 * width if pooling == "attention" else width, gates)
        nn.init.zeros_(self.head.weight)  # every gate starts at 1
        nn.init.zeros_(self.head.bias)

    def code(self, first: torch.Tensor) -> torch.Tensor:
        """The code from the first conv's output (the fused graph computes that conv itself)."""
        if self.attend is None:
            return torch.log(F.relu(self.second(F.relu(first))).mean(dim=(2, 3)) + 1e-3)
        features = F.relu(self.second(torch.log(F.relu(first) + 1e-3)))
        weights = torch.softmax(self.attend(features).flatten(2), dim=-1)  # [N, 1, locations]
        pooled = (features.flatten(2) * weights).sum(dim=-1)
        return torch.cat([pooled, torch.log(features.mean(dim=(2, 3)) + 1e-3)], dim=1)

    def gates_from_first(self, first: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.sigmoid(self.head(self.code(first)))

    def forward(self, high_pass: torch.Tensor) -> torch.Tensor:
        return self.gates_from_first(self.first(high_pass))


class SpaceToDepthStudent(ResidualStudent):
    def __init__(self, config: S2DConfig) -> None:
        super().__init__()
        if config.num_convs < 2:
            raise KdcamError(f"S2D student needs num_convs >= 2, got {config.num_convs}")
        if config.gate not in GATES:
            raise KdcamError(f"unknown gate '{config.gate}'; use one of {', '.join(GATES)}")
        self.config = config
        self.multiple = config.scale
        grid = config.in_channels * config.scale**2
        widths = [grid] + [config.channels] * (config.num_convs - 1) + [grid]
        pairs = list(zip(widths[:-1], widths[1:]))
        if config.reparam:
            # no identity branch on the output conv, so a zeroed conv is a zero residual
            convs = [RepConv3x3(i, o, identity=k < len(pairs) - 1) for k, (i, o) in enumerate(pairs)]
        else:
            convs = [nn.Conv2d(i, o, 3, padding=1) for i, o in pairs]
        self.unshuffle = nn.PixelUnshuffle(config.scale)
        self.convs = nn.ModuleList(convs)
        self.acts = nn.ModuleList([_activation(config.act, config.channels) for _ in pairs[:-1]])
        self.shuffle = nn.PixelShuffle(config.scale)
        self.code = (
            FrameCode(
                in_channels=grid,
                width=config.gate_channels,
                gates=(len(pairs) - 1) * config.channels + 1,
                pooling=GATES[config.gate],
            )
            if config.gate != "none"
            else None
        )
        # Start as the identity map: the residual begins at zero, so early training
        # cannot make a frame worse than the input.
        last = self.convs[-1]
        for p in last.parameters() if config.reparam else [last.weight, last.bias]:
            nn.init.zeros_(p)

    def gates(self, grid_planes: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor] | None:
        """Per-frame gates of each hidden layer ``[N, C, 1, 1]`` and of the residual ``[N, 1, 1, 1]``."""
        if self.code is None:
            return None
        g = self.code(grid_planes - grid_planes.mean(dim=1, keepdim=True))  # the high-pass of the plane
        c = self.config.channels
        hidden = [g[:, k * c : (k + 1) * c, None, None] for k in range(len(self.acts))]
        return hidden, g[:, -1:, None, None]

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        s = self.unshuffle(x)
        gates = self.gates(s)
        h = s
        for i, conv in enumerate(self.convs[:-1]):
            h = self.acts[i](conv(h))
            if gates is not None:
                h = h * gates[0][i]
        r = self.convs[-1](h)
        if gates is not None:
            r = r * gates[1]
        return self.shuffle(r)

    def fused(self) -> nn.Module:
        """Inference form for graphs: the unshuffle folded into the first conv of the body
        and of the code branch (full-resolution strided convs). Same MACs, no 6-D
        transpose in the exported graph."""
        return _FusedSpaceToDepth(self.collapse())

    def collapse(self) -> SpaceToDepthStudent:
        plain = SpaceToDepthStudent(dataclasses.replace(self.config, reparam=False))
        plain.arch = self.arch
        for dst, src in zip(plain.convs, self.convs):
            folded = src.fold() if isinstance(src, RepConv3x3) else src
            dst.load_state_dict(folded.state_dict())
        plain.acts.load_state_dict(self.acts.state_dict())
        if self.code is not None:
            plain.code.load_state_dict(self.code.state_dict())
        return plain.eval()


def _unshuffled_conv_at_full_res(conv: nn.Conv2d, r: int, *, high_pass: bool = False) -> nn.Conv2d:
    """A 3x3 conv (stride s, padding 1) on the x``r`` unshuffled grid of the planes as one
    conv on the full-resolution planes: kernel 3r, stride s*r, padding r. With ``high_pass``
    the grid's per-block mean is taken out first, which is linear too and folds in."""
    c_out, c_in = conv.out_channels, conv.in_channels // (r * r)
    full = nn.Conv2d(c_in, c_out, 3 * r, stride=conv.stride[0] * r, padding=r)
    w = conv.weight.detach()
    if high_pass:  # conv(s - mean_k s) == conv'(s) with every tap's mean over the block removed
        w = w - w.mean(dim=1, keepdim=True)
    # unshuffle channel c*r*r + a*r + b at low-res tap (di, dj) reads full-res pixel
    # (r*di + a, r*dj + b) of the 3r x 3r window.
    w = w.reshape(c_out, c_in, r, r, 3, 3)  # [o, c, a, b, di, dj]
    full.weight.data.copy_(w.permute(0, 1, 4, 2, 5, 3).reshape(c_out, c_in, 3 * r, 3 * r))
    full.bias.data.copy_(conv.bias.detach())
    return full


class _FusedSpaceToDepth(nn.Module):
    def __init__(self, plain: SpaceToDepthStudent) -> None:
        super().__init__()
        r = plain.config.scale
        self.stem = _unshuffled_conv_at_full_res(plain.convs[0], r)
        self.convs = nn.ModuleList(plain.convs[1:])
        self.acts = plain.acts
        self.shuffle = plain.shuffle
        self.channels = plain.config.channels
        self.code = None
        if plain.code is not None:
            self.code_first = _unshuffled_conv_at_full_res(plain.code.first, r, high_pass=True)
            self.code = plain.code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = res_gate = None
        if self.code is not None:
            g = self.code.gates_from_first(self.code_first(x))
            c = self.channels
            hidden = [g[:, k * c : (k + 1) * c, None, None] for k in range(len(self.acts))]
            res_gate = g[:, -1:, None, None]
        h = self.acts[0](self.stem(x))
        if hidden is not None:
            h = h * hidden[0]
        for i, conv in enumerate(self.convs[:-1]):
            h = self.acts[i + 1](conv(h))
            if hidden is not None:
                h = h * hidden[i + 1]
        out = self.convs[-1](h)
        if res_gate is not None:
            out = out * res_gate
        return self.shuffle(out)
