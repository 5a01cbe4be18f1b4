"""The student networks: small, fast CNNs that run on every frame.

Students are registered by name (timm style) and built from a dataclass config that is
saved inside every checkpoint, so a model can be rebuilt from its file alone.

Every student is a residual network on images in [0, 1], NCHW:
``forward(x) = x + residual(x)``. Luma students (``in_channels=1``) see only the Y plane;
``restore_bgr`` and the exported frame graph add the luma residual to all three BGR
channels, which changes Y by exactly that amount and leaves chroma (Cr, Cb) untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.errors import KdcamError

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


@dataclass
class S2DConfig:
    """A space-to-depth residual CNN: unshuffle, a stack of 3x3 convs, shuffle back."""

    scale: int = 4  # space-to-depth factor: the convs run at 1/scale of the frame size
    channels: int = 32  # width of the hidden 3x3 convs
    num_convs: int = 4  # 3x3 convs in all, ReLU between them (>= 2)
    in_channels: int = 1  # 1: luma only, chroma passes through; 3: all BGR channels
    reparam: bool = False  # train with parallel 1x1 and identity branches; collapse() folds them


@dataclass
class SRCNNConfig:
    """The seed project's 3-layer SRCNN-style network (9-5-5), kept as a speed reference."""

    channels: tuple[int, int] = (64, 32)  # widths after the 9x9 and the 5x5 conv
    kernels: tuple[int, int, int] = (9, 5, 5)  # kernel sizes of the three convs
    in_channels: int = 3  # works on all BGR channels


class _Residual(nn.Module):
    def __init__(self, student: ResidualStudent) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student.residual(x)


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


class ResidualStudent(nn.Module):
    """Common surface of every student: residual(), forward(), restore_bgr(), collapse()."""

    config: S2DConfig | SRCNNConfig
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


class SpaceToDepthStudent(ResidualStudent):
    def __init__(self, config: S2DConfig) -> None:
        super().__init__()
        if config.num_convs < 2:
            raise KdcamError(f"S2D student needs num_convs >= 2, got {config.num_convs}")
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
        self.shuffle = nn.PixelShuffle(config.scale)
        # Start as the identity map: the residual begins at zero, so early training
        # cannot make a frame worse than the input.
        last = self.convs[-1]
        for p in (last.parameters() if config.reparam else [last.weight, last.bias]):
            nn.init.zeros_(p)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        h = self.unshuffle(x)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return self.shuffle(h)

    def fused(self) -> nn.Module:
        """Inference form for graphs: the unshuffle and the first 3x3 conv folded into one
        strided conv on the full-resolution input (kernel 3*scale, stride scale, padding
        scale). Same MACs, no 6-D transpose in the exported graph."""
        return _FusedSpaceToDepth(self.collapse())

    def collapse(self) -> SpaceToDepthStudent:
        plain = SpaceToDepthStudent(dataclasses.replace(self.config, reparam=False))
        plain.arch = self.arch
        for dst, src in zip(plain.convs, self.convs):
            folded = src.fold() if isinstance(src, RepConv3x3) else src
            dst.load_state_dict(folded.state_dict())
        return plain.eval()


class _FusedSpaceToDepth(nn.Module):
    def __init__(self, plain: SpaceToDepthStudent) -> None:
        super().__init__()
        r, first = plain.config.scale, plain.convs[0]
        c_in, c_out = plain.config.in_channels, first.out_channels
        self.stem = nn.Conv2d(c_in, c_out, 3 * r, stride=r, padding=r)
        # unshuffle channel c*r*r + a*r + b at low-res tap (di, dj) reads full-res pixel
        # (r*di + a, r*dj + b) of the 3r x 3r window.
        w = first.weight.detach().view(c_out, c_in, r, r, 3, 3)  # [o, c, a, b, di, dj]
        self.stem.weight.data.copy_(w.permute(0, 1, 4, 2, 5, 3).reshape(c_out, c_in, 3 * r, 3 * r))
        self.stem.bias.data.copy_(first.bias.detach())
        self.convs = nn.ModuleList(plain.convs[1:])
        self.shuffle = plain.shuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return self.shuffle(h)


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


def student_macs_per_pixel(model: ResidualStudent) -> float:
    """Multiply-accumulates per frame pixel of the network's convolutions."""
    probe = torch.zeros(1, model.in_channels, 4 * model.multiple, 4 * model.multiple)
    total = 0.0

    def hook(mod: nn.Conv2d, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.residual(probe)
    for h in handles:
        h.remove()
    return total / (probe.shape[-1] * probe.shape[-2])


# --- registry -----------------------------------------------------------------------

_CONFIG_TYPES: dict[str, type] = {"S2DConfig": S2DConfig, "SRCNNConfig": SRCNNConfig}
_BUILDERS: dict[type, type[ResidualStudent]] = {S2DConfig: SpaceToDepthStudent, SRCNNConfig: SRCNNStudent}
STUDENTS: dict[str, Callable[[], S2DConfig | SRCNNConfig]] = {}

#: the architecture of the shipped default student
DEFAULT_STUDENT = "kd-s4-c16"


def register(name: str):
    def wrap(fn: Callable[[], S2DConfig | SRCNNConfig]):
        STUDENTS[name] = fn
        return fn

    return wrap


@register("kd-s4-c32")
def kd_s4_c32() -> S2DConfig:
    return S2DConfig(scale=4, channels=32, num_convs=4, reparam=True)


@register("kd-s4-c16")
def kd_s4_c16() -> S2DConfig:
    return S2DConfig(scale=4, channels=16, num_convs=3, reparam=True)


# the default minus one conv: faster, but a smaller receptive field (docs/distill/headroom.md)
@register("kd-s4-c16-n2")
def kd_s4_c16_n2() -> S2DConfig:
    return S2DConfig(scale=4, channels=16, num_convs=2, reparam=True)


@register("kd-s4-c24")
def kd_s4_c24() -> S2DConfig:
    return S2DConfig(scale=4, channels=24, num_convs=3, reparam=True)


@register("kd-s4-c48")
def kd_s4_c48() -> S2DConfig:
    return S2DConfig(scale=4, channels=48, num_convs=5, reparam=True)


@register("kd-s2-c16")
def kd_s2_c16() -> S2DConfig:
    return S2DConfig(scale=2, channels=16, num_convs=3, reparam=True)


@register("srcnn-955")
def srcnn_955() -> SRCNNConfig:
    return SRCNNConfig()


def build_from_config(arch: str, config: S2DConfig | SRCNNConfig) -> ResidualStudent:
    model = _BUILDERS[type(config)](config)
    model.arch = arch
    return model


def create_student(name: str, **overrides) -> ResidualStudent:
    """Build a registered student, optionally overriding config fields."""
    if name not in STUDENTS:
        raise KdcamError(f"unknown student '{name}'; choose one of: {', '.join(STUDENTS)}")
    config = STUDENTS[name]()
    try:
        config = dataclasses.replace(config, **overrides)
    except TypeError as err:
        raise KdcamError(f"bad option for student '{name}': {err}") from None
    return build_from_config(name, config)


def config_to_dict(config: S2DConfig | SRCNNConfig) -> dict:
    return {"type": type(config).__name__, **dataclasses.asdict(config)}


def config_from_dict(data: dict) -> S2DConfig | SRCNNConfig:
    data = dict(data)
    cls = _CONFIG_TYPES.get(data.pop("type", ""))
    if cls is None:
        raise KdcamError(f"unknown student config type in checkpoint: {data!r}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise KdcamError(f"checkpoint config has unknown fields {sorted(unknown)}; upgrade kdcam")
    for key, value in data.items():
        if isinstance(value, list):
            data[key] = tuple(value)
    return cls(**data)
