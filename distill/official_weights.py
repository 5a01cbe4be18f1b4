"""Released Restormer checkpoints: read a ``.pth`` safely and work out its configuration.

:func:`load_official_checkpoint` reads a released ``.pth`` with
``torch.load(weights_only=True)`` (tensors and plain containers only, never arbitrary
unpickling) and infers the constructor kwargs from the weights' names and shapes, so the
model loads with ``strict=True``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from distill.restormer import RESTORMER_DEFAULTS, Restormer, preset_config
from engines.errors import KdcamError, shown

_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


def _count_blocks(keys: set[str], stage: str) -> int:
    indices = {int(k.split(".")[1]) for k in keys if k.startswith(stage + ".") and k.split(".")[1].isdigit()}
    if indices != set(range(len(indices))):
        raise ValueError(f"the block indices of {stage} are not 0..n-1")
    return len(indices)


def _infer_ffn_factor(widths_and_hidden: list[tuple[int, int]]) -> float:
    """The shortest decimal ``f`` with ``int(width * f) == hidden`` at every level."""
    lo, hi = 0.0, float("inf")
    for width, hidden in widths_and_hidden:
        lo = max(lo, hidden / width)
        hi = min(hi, (hidden + 1) / width)
    for decimals in range(0, 10):
        scale = 10**decimals
        for candidate in (round(lo * scale) / scale, (int(lo * scale) + 1) / scale):
            if all(int(width * candidate) == hidden for width, hidden in widths_and_hidden):
                return candidate
    raise ValueError("no ffn_expansion_factor reproduces the feed-forward widths")


def infer_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Restormer constructor kwargs that produce ``state_dict``'s names and shapes.

    Only names and ``.shape`` are used, so meta tensors work. Raises ``KeyError`` or
    ``ValueError`` when the dict does not look like a Restormer state_dict.
    """
    keys = set(state_dict)

    def shape(name: str) -> tuple[int, ...]:
        if name not in keys:
            raise KeyError(f"no {name!r} entry")
        return tuple(state_dict[name].shape)

    dim, inp_channels = shape("patch_embed.proj.weight")[:2]
    out_channels = shape("output.weight")[0]
    num_blocks = [_count_blocks(keys, stage) for stage in _LEVELS]
    if 0 in num_blocks:
        raise ValueError("a level has no transformer blocks")
    heads = [shape(f"{stage}.0.attn.temperature")[0] for stage in _LEVELS]
    widths = [dim, 2 * dim, 4 * dim, 8 * dim]
    hidden = [shape(f"{stage}.0.ffn.project_out.weight")[1] for stage in _LEVELS]
    config = {
        "inp_channels": inp_channels,
        "out_channels": out_channels,
        "dim": dim,
        "num_blocks": num_blocks,
        "num_refinement_blocks": _count_blocks(keys, "refinement"),
        "heads": heads,
        "ffn_expansion_factor": _infer_ffn_factor(list(zip(widths, hidden))),
        "bias": "encoder_level1.0.attn.qkv.bias" in keys,
        "LayerNorm_type": "WithBias" if "encoder_level1.0.norm1.body.bias" in keys else "BiasFree",
        "dual_pixel_task": "skip_conv.weight" in keys,
    }
    return config


def _unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """``{'params': sd}`` (official), ``{'state_dict': sd}`` or a bare ``sd``; strips ``module.``."""
    if isinstance(obj, Mapping):
        for wrapper in ("params", "state_dict"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError("it holds no state_dict (expected {'params': state_dict} or a bare state_dict)")
    state: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"entry {name!r} is not a tensor")
        state[name.removeprefix("module.") if isinstance(name, str) else name] = value
    return state


def load_strict(model: Restormer, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
        raise ValueError("keys do not match the configuration: " + ", ".join(parts))
    for name, param in expected.items():
        if tuple(state[name].shape) != tuple(param.shape):
            raise ValueError(
                f"{name} has shape {tuple(state[name].shape)}, the configuration needs {tuple(param.shape)}"
            )
    model.load_state_dict(state, strict=True)


#: what a Restormer config from a file may say, checked before anything is built (the released
#: checkpoints use dim 48, 4-8 blocks a level, 1-8 heads): field -> (types, lowest, highest) or choices
CONFIG_LIMITS: dict[str, tuple] = {
    "inp_channels": ((int,), (1, 3, 6)),
    "out_channels": ((int,), (1, 3)),
    "dim": ((int,), 1, 256),
    "num_blocks": ((list, tuple), 1, 16),
    "num_refinement_blocks": ((int,), 1, 16),
    "heads": ((list, tuple), 1, 64),
    "ffn_expansion_factor": ((int, float), 0.5, 8.0),
    "bias": ((bool,), (False, True)),
    "LayerNorm_type": ((str,), ("WithBias", "BiasFree")),
    "dual_pixel_task": ((bool,), (False, True)),
}


def _check_field(key: str, value: Any) -> None:
    types, *limits = CONFIG_LIMITS[key]
    sequence = list in types
    want = (
        f"4 integers of {limits[0]} to {limits[1]}"
        if sequence
        else f"one of {limits[0]}"
        if len(limits) == 1
        else f"a number of {limits[0]} to {limits[1]}"
    )
    if isinstance(value, bool) != (bool in types) or not isinstance(value, types) or (sequence and len(value) != 4):
        raise KdcamError(f"Restormer config {key!r} is {shown(value)}; expected {want}")
    for item in value if sequence else [value]:
        if sequence and (isinstance(item, bool) or not isinstance(item, int)):
            raise KdcamError(f"Restormer config {key!r} is {shown(value)}; expected {want}")
        if not (item in limits[0] if len(limits) == 1 else limits[0] <= item <= limits[1]):
            raise KdcamError(f"Restormer config {key!r} is {shown(value)}; expected {want}")


def resolve_config(config: Mapping[str, Any] | str) -> dict[str, Any]:
    """The constructor kwargs of a preset name, or of a config read from a file: its keys,
    types and sizes checked against ``CONFIG_LIMITS`` before anything is built."""
    if isinstance(config, str):
        return preset_config(config)
    if not isinstance(config, Mapping):
        raise KdcamError(f"a Restormer config is a JSON object, not {type(config).__name__}")
    unknown = set(config) - set(RESTORMER_DEFAULTS)
    if unknown:
        raise KdcamError(f"unknown Restormer config keys {sorted(unknown)[:5]}; use the official constructor kwargs")
    merged = {**RESTORMER_DEFAULTS, **config}
    for key, value in merged.items():
        _check_field(key, value)
    widths = [merged["dim"] * 2**level for level in range(4)]
    if any(width % heads for width, heads in zip(widths, merged["heads"])):
        raise KdcamError(f"Restormer config heads {merged['heads']} do not divide the widths {widths}")
    return merged


def load_official_checkpoint(path: str | os.PathLike, *, config: Mapping[str, Any] | str | None = None) -> Restormer:
    """Load a released Restormer ``.pth`` into a float32 CPU model in eval mode.

    The file is read with ``torch.load(weights_only=True)``: tensors and plain
    containers only, never arbitrary pickled objects. ``config`` (kwargs or a preset
    name) overrides the configuration otherwise inferred from the weights. Every failure
    raises ``KdcamError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise KdcamError(f"Restormer checkpoint {path} does not exist; check the path or download the released .pth")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            raise KdcamError(
                f"{path} contains pickled Python objects beyond tensors and is refused for safety; "
                "use a released Restormer .pth or re-save it as torch.save({'params': state_dict})"
            ) from None
        raise KdcamError(
            f"{path} cannot be read safely as a tensor checkpoint (damaged, not a PyTorch file, or it needs "
            "full unpickling, which kdcam refuses); use a released Restormer .pth"
        ) from None
    except Exception as err:  # torch raises many kinds for corrupt/foreign files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KdcamError(f"{path} is not a readable PyTorch checkpoint ({reason}); re-download it") from None

    try:
        state = _unwrap_state_dict(obj)
    except ValueError as err:
        raise KdcamError(f"{path} is not a Restormer checkpoint: {err}; pass a released Restormer .pth") from None

    if config is None:
        try:
            cfg = infer_config(state)
        except (KeyError, ValueError) as err:
            raise KdcamError(
                f"cannot infer the Restormer configuration of {path} ({err}); pass config= with the constructor kwargs"
            ) from None
    else:
        cfg = resolve_config(config)

    model = Restormer(**cfg)
    try:
        load_strict(model, state)
    except (ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        raise KdcamError(f"{path} does not fit the Restormer configuration: {reason}; check config=") from None
    return model.eval()
