"""The Restormer teacher: run it on images, and store the teachers we train ourselves.

* :func:`restore` runs a model on a ``[0, 1]`` NCHW image with the official test-time
  padding, optionally in overlapping tiles for frames too large for memory.
* :func:`save_teacher` / :func:`load_teacher` store a teacher we trained as one
  ``.safetensors`` file whose JSON header (``engines.file_header``) carries the
  constructor kwargs and a model card, so loading needs nothing but that file.
* :func:`load_any_teacher` takes such a file or a released ``.pth``
  (``distill.official_weights``); :func:`teacher_bgr` and :class:`RGBTeacher` adapt the
  RGB network to kdcam's BGR crops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distill.official_weights import load_official_checkpoint, load_strict, resolve_config
from distill.restormer import Restormer
from engines.atomic import atomic_path, file_sha256
from engines.errors import KdcamError
from engines.file_header import read_json_header

#: the header of a kdcam teacher file (JSON under this safetensors metadata key)
TEACHER_FORMAT = "kdcam-restormer-teacher"
TEACHER_FORMAT_VERSION = 2
_META_KEY = "kdcam_teacher"


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
    """Save ``model`` as one ``.safetensors`` file, atomically; its header holds the
    constructor kwargs (``config``) and the model card."""
    from safetensors.torch import save_file

    if not isinstance(model, Restormer):
        raise TypeError(f"save_teacher() needs a Restormer, got {type(model).__name__}")
    header = {
        "format": TEACHER_FORMAT,
        "version": TEACHER_FORMAT_VERSION,
        "config": model.config,
        "card": dict(card or {}),
    }
    try:
        text = json.dumps(header, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise KdcamError(
            f"the teacher card is not JSON-serializable ({err}); use str/number/list/dict values"
        ) from None
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: text})
    return path


def read_teacher_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """``{"config": kwargs, "card": dict}`` of a kdcam teacher file, without loading weights."""
    path = Path(path)
    if not path.is_file():
        raise KdcamError(f"teacher file {path} does not exist; check the path")
    header = read_json_header(
        path,
        key=_META_KEY,
        fmt=TEACHER_FORMAT,
        version=TEACHER_FORMAT_VERSION,
        what="teacher file",
        fix="pass a teacher saved by `kdcam distill fit-teacher`",
    )
    return {"config": header.get("config"), "card": header.get("card") or {}}


def load_teacher(path: str | os.PathLike) -> Restormer:
    """Load a teacher written by :func:`save_teacher`, in eval mode on the CPU.

    The architecture is rebuilt from the header's config alone; the weights are then
    loaded strictly. The card is in ``read_teacher_metadata(path)["card"]``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_teacher_metadata(path)
    try:
        model = Restormer(**resolve_config(meta.get("config")))
    except KdcamError as err:  # checked against the limits before anything is built
        raise KdcamError(f"{path}: {err}; re-save the teacher") from None
    except (TypeError, KeyError):
        raise KdcamError(f"{path} has an invalid teacher config; re-save the teacher") from None
    try:
        load_strict(model, load_file(str(path)))
    except (ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        raise KdcamError(f"{path} weights do not match its own config ({reason}); re-save the teacher") from None
    return model.eval()


def load_any_teacher(path: str | Path | None) -> tuple[nn.Module, dict[str, Any]]:
    """A teacher from our own ``.safetensors`` (save_teacher) or a released Restormer ``.pth``.

    Returns ``(model in eval mode on the CPU, description for model cards)``.
    """
    if path is None:
        raise KdcamError("no teacher given; pass --teacher FILE (.safetensors from fit-teacher, or an official .pth)")
    path = Path(path).expanduser()
    if not path.is_file():
        raise KdcamError(f"{path}: teacher file not found; pass a teacher .safetensors or an official Restormer .pth")
    if path.suffix == ".safetensors":
        model, card, kind = load_teacher(path), read_teacher_metadata(path).get("card", {}), "kdcam-teacher"
    else:
        model, card, kind = load_official_checkpoint(path), {}, "official-restormer"
    desc = {"file": path.name, "kind": kind, "sha256": file_sha256(path)[:16], "config": model.config}
    if card.get("size"):
        desc["size"] = card["size"]
    return model.eval(), desc


def teacher_bgr(model: nn.Module, bgr: torch.Tensor, *, tile: int | None = None) -> torch.Tensor:
    """Run a Restormer (which works in RGB) on BGR ``[N,3,H,W]`` in [0, 1]; BGR out, clamped."""
    return restore(model, bgr.flip(1), tile=tile).flip(1)


class RGBTeacher(nn.Module):
    """A Restormer seen as ``BGR [N,3,H,W] -> BGR`` (H, W multiples of 8), for training."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        return self.model(bgr.flip(1)).flip(1)
