"""Restormer (Zamir et al., CVPR 2022), written from the paper and the published facts.

This is the teacher network of kdcam. Parameter names, registration order and shapes
match the released checkpoints exactly, so ``load_state_dict(ckpt["params"],
strict=True)`` works on every released ``.pth``; the constructor takes the same keyword
arguments as the official model.

Shape of the network (``C = dim``)::

    image (inp_channels) --3x3--> C
      encoder 1 (C)  ----------------------------------------------+
      down -> encoder 2 (2C)  ------------------------------+      |
        down -> encoder 3 (4C)  ---------------------+      |      |
          down -> latent (8C)                        |      |      |
          up -> [up, enc3] -> 1x1 -> decoder 3 (4C) <+      |      |
        up -> [up, enc2] -> 1x1 -> decoder 2 (2C) <---------+      |
      up -> [up, enc1] -> decoder 1 (2C, no reduction) <-----------+
      refinement (2C) --3x3--> out_channels (+ input image)

Every stage is a stack of transformer blocks: channel-wise attention (MDTA) and a gated
depthwise feed-forward (GDFN), each behind a per-pixel LayerNorm over channels. The
attention is computed across channels with q and k L2-normalized over all pixels, so
its cost is linear in the pixel count and its result depends on the whole image.

H and W of the input must be multiples of 8; :func:`distill.teacher.restore` pads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engines.errors import KdcamError

__all__ = [
    "RESTORMER_PRESETS",
    "RESTORMER_DEFAULTS",
    "Restormer",
    "restormer_macs_per_pixel",
    "num_parameters",
    "preset_config",
]

# The official constructor defaults (the motion-deblurring configuration).
RESTORMER_DEFAULTS: dict[str, Any] = {
    "inp_channels": 3,
    "out_channels": 3,
    "dim": 48,
    "num_blocks": [4, 6, 6, 8],
    "num_refinement_blocks": 4,
    "heads": [1, 2, 4, 8],
    "ffn_expansion_factor": 2.66,
    "bias": False,
    "LayerNorm_type": "WithBias",
    "dual_pixel_task": False,
}


def _released(**changes: Any) -> dict[str, Any]:
    merged = {**RESTORMER_DEFAULTS, **changes}
    return {k: list(v) if isinstance(v, list) else v for k, v in merged.items()}  # no shared lists


#: Named constructor configurations. The first seven are the released checkpoints (same
#: architecture, they differ only in channels, norm type and the dual-pixel head); the
#: last three are small sizes for a teacher we can train ourselves on a CPU.
#: MACs per input pixel (convolutions + attention matmuls, see ``restormer_macs_per_pixel``) and
#: parameter counts:
#:   released 3-channel  2,363,312 MAC/px  26.13 M params (BiasFree: 26.11 M)
#:   dual-pixel          2,369,216 MAC/px  26.13 M
#:   gray                2,360,720 MAC/px  26.11 M
#:   medium                575,526 MAC/px   6.71 M
#:   small                 202,728 MAC/px   2.53 M
#:   tiny                   76,665 MAC/px   0.80 M
RESTORMER_PRESETS: dict[str, dict[str, Any]] = {
    "motion_deblurring": _released(),
    "single_image_defocus_deblurring": _released(),
    "dual_pixel_defocus_deblurring": _released(inp_channels=6, dual_pixel_task=True),
    "deraining": _released(),
    "real_denoising": _released(LayerNorm_type="BiasFree"),
    "gaussian_color_denoising": _released(LayerNorm_type="BiasFree"),
    "gaussian_gray_denoising": _released(inp_channels=1, out_channels=1, LayerNorm_type="BiasFree"),
    # Our own CPU-trainable teachers: same code paths, far fewer blocks and channels.
    "tiny": _released(dim=16, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 4]),
    "small": _released(dim=24, num_blocks=[1, 2, 2, 2], num_refinement_blocks=1, heads=[1, 2, 4, 8]),
    "medium": _released(dim=32, num_blocks=[2, 3, 3, 4], num_refinement_blocks=2, heads=[1, 2, 4, 8]),
}


def preset_config(name: str) -> dict[str, Any]:
    """A fresh copy of the named preset's constructor kwargs."""
    try:
        cfg = RESTORMER_PRESETS[name]
    except KeyError:
        raise KdcamError(
            f"unknown Restormer preset {name!r}; choose one of: {', '.join(RESTORMER_PRESETS)}"
        ) from None
    return {k: list(v) if isinstance(v, list) else v for k, v in cfg.items()}


# --------------------------------------------------------------------------- building blocks


class WithBiasNorm(nn.Module):
    """Standard LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class BiasFreeNorm(nn.Module):
    """Restormer's bias-free norm: x / sqrt(var + eps) * w.

    The variance is the centered one, but the mean is NOT subtracted from x itself: this
    is neither RMSNorm nor LayerNorm without a bias.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + 1e-5) * self.weight


class ChannelNorm(nn.Module):
    """Normalize every pixel over its channels (NCHW in, NCHW out).

    The actual norm lives in ``.body`` so parameter names read ``norm1.body.weight`` as
    in the released checkpoints.
    """

    def __init__(self, channels: int, norm_type: str) -> None:
        super().__init__()
        self.body = BiasFreeNorm(channels) if norm_type == "BiasFree" else WithBiasNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels last for the norm, then back.
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelAttention(nn.Module):
    """MDTA: multi-head attention across channels.

    1x1 conv to q|k|v, depthwise 3x3 on all of them, split into contiguous thirds, split
    each into contiguous head groups, L2-normalize q and k over the pixels, softmax of
    (q k^T * temperature) over keys, times v, merge heads, 1x1 projection.
    """

    def __init__(self, channels: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        # Registered first: the checkpoints list the temperature before the convs.
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            channels * 3, channels * 3, kernel_size=3, padding=1, groups=channels * 3, bias=bias
        )
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, heads, C/heads, H*W); head i owns channels [i*C/heads, (i+1)*C/heads)."""
        n, c, h, w = t.shape
        return t.reshape(n, self.num_heads, c // self.num_heads, h * w)

    def attention_map(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Softmax attention between channels, (N, heads, C/heads, C/heads).

        q and k are L2-normalized over ALL pixels, so this map depends on the whole image.
        """
        q = F.normalize(self.split_heads(q), dim=-1)
        k = F.normalize(self.split_heads(k), dim=-1)
        return ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        out = self.attention_map(q, k) @ self.split_heads(v)
        return self.project_out(out.reshape(x.shape))


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 conv to 2*hidden, depthwise 3x3, GELU(first half) * second half, 1x1 back."""

    def __init__(self, channels: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias
        )
        self.project_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)  # exact (erf) GELU


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(self, channels: int, num_heads: int, ffn_expansion_factor: float, bias: bool, norm_type: str) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(channels, norm_type)
        self.attn = ChannelAttention(channels, num_heads, bias)
        self.norm2 = ChannelNorm(channels, norm_type)
        self.ffn = GatedFeedForward(channels, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class PatchEmbed(nn.Module):
    """3x3 conv from image channels to ``dim`` (never a bias)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve H and W, double channels: 3x3 conv to C/2, then PixelUnshuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1, bias=False),
            nn.PixelUnshuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double H and W, halve channels: 3x3 conv to 2C, then PixelShuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1, bias=False),
            nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# --------------------------------------------------------------------------- the network


def _check_config(cfg: dict[str, Any]) -> None:
    def bad(msg: str) -> KdcamError:
        return KdcamError(f"invalid Restormer configuration: {msg}")

    if len(cfg["num_blocks"]) != 4 or len(cfg["heads"]) != 4:
        raise bad("num_blocks and heads need 4 entries each (one per level)")
    if cfg["LayerNorm_type"] not in ("WithBias", "BiasFree"):
        raise bad(f"LayerNorm_type must be 'WithBias' or 'BiasFree', not {cfg['LayerNorm_type']!r}")
    dim = cfg["dim"]
    if dim < 2 or dim % 2:
        raise bad(f"dim must be an even number >= 2, not {dim}")
    widths = [dim, 2 * dim, 4 * dim, 8 * dim]
    for level, (width, heads) in enumerate(zip(widths, cfg["heads"]), start=1):
        if heads < 1 or width % heads:
            raise bad(f"level {level} has {width} channels, not divisible into {heads} heads")
    if (2 * dim) % cfg["heads"][0]:
        raise bad(f"decoder level 1 has {2 * dim} channels, not divisible into {cfg['heads'][0]} heads")
    if not cfg["dual_pixel_task"] and cfg["inp_channels"] != cfg["out_channels"]:
        raise bad("inp_channels must equal out_channels unless dual_pixel_task (the input is added to the output)")
    if int(dim * cfg["ffn_expansion_factor"]) < 1:
        raise bad(f"ffn_expansion_factor {cfg['ffn_expansion_factor']} gives no hidden channels")


class Restormer(nn.Module):
    """Restormer with the official constructor arguments and state_dict layout."""

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: list[int] = [4, 6, 6, 8],  # noqa: B006 (official signature; never mutated)
        num_refinement_blocks: int = 4,
        heads: list[int] = [1, 2, 4, 8],  # noqa: B006
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # noqa: N803 (official keyword name)
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        #: The constructor kwargs; ``Restormer(**model.config)`` rebuilds the architecture.
        self.config: dict[str, Any] = {
            "inp_channels": int(inp_channels),
            "out_channels": int(out_channels),
            "dim": int(dim),
            "num_blocks": [int(b) for b in num_blocks],
            "num_refinement_blocks": int(num_refinement_blocks),
            "heads": [int(h) for h in heads],
            "ffn_expansion_factor": float(ffn_expansion_factor),
            "bias": bool(bias),
            "LayerNorm_type": str(LayerNorm_type),
            "dual_pixel_task": bool(dual_pixel_task),
        }
        _check_config(self.config)
        self.dual_pixel_task = bool(dual_pixel_task)

        def stage(width: int, n_heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(
                *(TransformerBlock(width, n_heads, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(count))
            )

        c1, c2, c3, c4 = dim, dim * 2, dim * 4, dim * 8
        # Registration order = state_dict order of the released checkpoints.
        self.patch_embed = PatchEmbed(inp_channels, c1)
        self.encoder_level1 = stage(c1, heads[0], num_blocks[0])
        self.down1_2 = Downsample(c1)
        self.encoder_level2 = stage(c2, heads[1], num_blocks[1])
        self.down2_3 = Downsample(c2)
        self.encoder_level3 = stage(c3, heads[2], num_blocks[2])
        self.down3_4 = Downsample(c3)
        self.latent = stage(c4, heads[3], num_blocks[3])

        self.up4_3 = Upsample(c4)
        self.reduce_chan_level3 = nn.Conv2d(c4, c3, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(c3, heads[2], num_blocks[2])
        self.up3_2 = Upsample(c3)
        self.reduce_chan_level2 = nn.Conv2d(c3, c2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(c2, heads[1], num_blocks[1])
        self.up2_1 = Upsample(c2)
        # Level 1 keeps the concatenated width (2 * dim): no channel reduction.
        self.decoder_level1 = stage(c2, heads[0], num_blocks[0])
        self.refinement = stage(c2, heads[0], num_refinement_blocks)

        if self.dual_pixel_task:
            self.skip_conv = nn.Conv2d(c1, c2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(c2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if not torch.jit.is_tracing() and (h % 8 or w % 8):
            raise KdcamError(
                f"Restormer needs H and W divisible by 8, got {h}x{w}; pad the image (distill.teacher.restore does)"
            )
        embedded = self.patch_embed(image)
        enc1 = self.encoder_level1(embedded)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        # Decoder: upsampled features first, encoder skip second.
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        features = self.refinement(dec1)

        if self.dual_pixel_task:
            return self.output(features + self.skip_conv(embedded))
        return self.output(features) + image


# --------------------------------------------------------------------------- cost


def restormer_macs_per_pixel(config: dict[str, Any] | str) -> dict[str, float]:
    """Multiply-accumulates per input pixel: ``{"conv", "attention_matmuls", "total"}``.

    Counts every convolution and the two matrix products of each attention (q k^T and
    attn v); elementwise work is not counted. Constant per pixel because the attention
    is across channels. Computed by running the model on the ``meta`` device (no memory,
    no arithmetic).
    """
    cfg = preset_config(config) if isinstance(config, str) else dict(config)
    with torch.device("meta"):
        model = Restormer(**cfg)
    side = 64
    pixels = side * side
    conv = 0.0
    attn = 0.0

    def conv_hook(mod: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal conv
        kh, kw = mod.kernel_size
        conv += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw

    def attn_hook(mod: ChannelAttention, inp: tuple[torch.Tensor, ...], _out: Any) -> None:
        nonlocal attn
        _, c, h, w = inp[0].shape
        per_head = c // mod.num_heads
        attn += 2 * mod.num_heads * per_head * per_head * h * w

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, ChannelAttention):
            handles.append(mod.register_forward_hook(attn_hook))
    with torch.no_grad():
        model(torch.empty(1, cfg["inp_channels"], side, side, device="meta"))
    for handle in handles:
        handle.remove()
    return {"conv": conv / pixels, "attention_matmuls": attn / pixels, "total": (conv + attn) / pixels}


def num_parameters(model: nn.Module) -> int:
    """Total number of scalars in the model's parameters."""
    return sum(p.numel() for p in model.parameters())
