"""The Restormer teacher: load released checkpoints, run it on images, save our own.

* :func:`load_official_checkpoint` reads a released Restormer ``.pth`` safely (tensors
  only, never arbitrary unpickling) and works out its configuration from the weights.
* :func:`restore` runs a model on a ``[0, 1]`` NCHW image with the official test-time
  padding, optionally in overlapping tiles for frames too large for memory.
* :func:`save_teacher` / :func:`load_teacher` store a teacher we trained ourselves as one
  ``.safetensors`` file whose header metadata carries the constructor kwargs and a
  free-form model card (JSON), so loading needs nothing but that file.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from distill.atomic import atomic_path
from distill.errors import KdcamError
from distill.restormer import RESTORMER_DEFAULTS, Restormer, preset_config

__all__ = [
    "TEACHER_FORMAT",
    "infer_config",
    "load_official_checkpoint",
    "load_teacher",
    "read_teacher_metadata",
    "restore",
    "save_teacher",
]

#: Value of the ``format`` metadata entry that marks a kdcam teacher file.
TEACHER_FORMAT = "kdcam-restormer-teacher"
TEACHER_FORMAT_VERSION = 1

_LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


# --------------------------------------------------------------------------- official checkpoints


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


def _load_strict(model: Restormer, state: Mapping[str, torch.Tensor]) -> None:
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
            raise ValueError(f"{name} has shape {tuple(state[name].shape)}, the configuration needs {tuple(param.shape)}")
    model.load_state_dict(state, strict=True)


def _resolve_config(config: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(config, str):
        return preset_config(config)
    unknown = set(config) - set(RESTORMER_DEFAULTS)
    if unknown:
        raise KdcamError(f"unknown Restormer config keys {sorted(unknown)}; use the official constructor kwargs")
    return {**RESTORMER_DEFAULTS, **config}


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
        cfg = _resolve_config(config)

    model = Restormer(**cfg)
    try:
        _load_strict(model, state)
    except (ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        raise KdcamError(f"{path} does not fit the Restormer configuration: {reason}; check config=") from None
    return model.eval()


# --------------------------------------------------------------------------- inference


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins along one axis: every ``stride``, plus one flush with the end."""
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters(), None)
    if param is None:
        return torch.device("cpu"), torch.float32
    return param.device, param.dtype


def restore(model: torch.nn.Module, image: torch.Tensor, *, tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """Run ``model`` on an NCHW ``image`` in ``[0, 1]``; return the result clamped to ``[0, 1]``.

    Follows the official test convention: reflect-pad bottom/right up to a multiple of 8,
    run, crop back. With ``tile`` (a multiple of 8), the padded image is processed in
    ``tile`` x ``tile`` windows overlapping by at least ``overlap`` pixels, and
    overlapping outputs are averaged with equal weights. Tiling bounds memory but changes
    the result (Restormer's attention uses whole-image statistics; see
    docs/restormer-tiling.md). The result has the input's shape, dtype and device; the
    computation runs on the model's device and dtype.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise KdcamError("restore() needs an NCHW image tensor; add a batch axis with image[None]")
    if tile is not None:
        if tile <= 0 or tile % 8:
            raise KdcamError(f"tile size must be a positive multiple of 8, got {tile}")
        if not 0 <= overlap < tile:
            raise KdcamError(f"tile overlap must be in [0, tile), got {overlap} for tile {tile}")

    n, _, h, w = image.shape
    pad_h, pad_w = -h % 8, -w % 8
    if pad_h >= h or pad_w >= w:
        raise KdcamError(f"image of {h}x{w} px is too small to reflect-pad to a multiple of 8; use at least 8x8")

    device, dtype = _model_device_dtype(model)
    with torch.inference_mode():
        x = image.to(device=device, dtype=dtype)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        ph, pw = x.shape[-2:]

        if tile is None or (tile >= ph and tile >= pw):
            out = model(x)
        else:
            tile_h, tile_w = min(tile, ph), min(tile, pw)
            stride = tile - overlap
            out = None
            weight = torch.zeros(1, 1, ph, pw, device=device, dtype=dtype)
            for top in _tile_starts(ph, tile_h, stride):
                for left in _tile_starts(pw, tile_w, stride):
                    piece = model(x[..., top : top + tile_h, left : left + tile_w])
                    if out is None:
                        out = torch.zeros(n, piece.shape[1], ph, pw, device=device, dtype=dtype)
                    out[..., top : top + tile_h, left : left + tile_w] += piece
                    weight[..., top : top + tile_h, left : left + tile_w] += 1
            out = out / weight

        out = out[..., :h, :w].clamp_(0.0, 1.0).to(device=image.device, dtype=image.dtype)
    # Cloned outside inference mode: a normal tensor, usable as a target in a loss.
    return out.clone()


# --------------------------------------------------------------------------- our own teachers


def save_teacher(path: str | os.PathLike, model: Restormer, *, card: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` as one ``.safetensors`` file, atomically.

    The header metadata holds ``format``, ``format_version``, ``config`` (the
    constructor kwargs, JSON) and ``card`` (free-form JSON: data, steps, scores...).
    Returns the path written.
    """
    from safetensors.torch import save_file

    if not isinstance(model, Restormer):
        raise TypeError(f"save_teacher() needs a Restormer, got {type(model).__name__}")
    try:
        card_json = json.dumps(dict(card or {}), sort_keys=True)
    except (TypeError, ValueError) as err:
        raise KdcamError(f"the teacher card is not JSON-serializable ({err}); use str/number/list/dict values") from None
    metadata = {
        "format": TEACHER_FORMAT,
        "format_version": str(TEACHER_FORMAT_VERSION),
        "config": json.dumps(model.config, sort_keys=True),
        "card": card_json,
    }
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_teacher_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """``{"config": kwargs, "card": dict}`` of a kdcam teacher file, without loading weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise KdcamError(f"teacher file {path} does not exist; check the path")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:
        raise KdcamError(f"{path} is not a safetensors file; pass a teacher saved by kdcam (save_teacher)") from None
    if meta.get("format") != TEACHER_FORMAT:
        raise KdcamError(f"{path} is not a kdcam teacher file (no '{TEACHER_FORMAT}' marker); pass a file saved by save_teacher")
    version = meta.get("format_version", "")
    if version != str(TEACHER_FORMAT_VERSION):
        raise KdcamError(f"{path} has teacher format version {version!r}, this kdcam reads {TEACHER_FORMAT_VERSION}; upgrade kdcam")
    try:
        config = json.loads(meta["config"])
        card = json.loads(meta.get("card", "{}"))
    except (KeyError, json.JSONDecodeError):
        raise KdcamError(f"{path} has a damaged teacher header; re-save the teacher") from None
    return {"config": config, "card": card}


def load_teacher(path: str | os.PathLike) -> Restormer:
    """Load a teacher written by :func:`save_teacher`, in eval mode on the CPU.

    The architecture is rebuilt from the JSON config in the header alone; the weights
    are then loaded strictly. The card is in ``read_teacher_metadata(path)["card"]``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_teacher_metadata(path)
    try:
        model = Restormer(**_resolve_config(meta["config"]))
    except TypeError:
        raise KdcamError(f"{path} has an invalid teacher config; re-save the teacher") from None
    try:
        _load_strict(model, load_file(str(path)))
    except (ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        raise KdcamError(f"{path} weights do not match its own config ({reason}); re-save the teacher") from None
    return model.eval()
