"""The training photos split into a training side and a validation side, and the crops cut
from each: the ``PatchDataset`` a run trains on and the fixed validation batch it scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.config import DataConfig
from distill.data import PatchDataset, file_weights, list_images, load_images, split_train_val
from engines.errors import KdcamError


@dataclass
class DataSplit:
    """Training photos split into train and validation sides (images as uint8 BGR)."""

    root: Path
    train_paths: list[Path]
    val_paths: list[Path]
    train_images: list[np.ndarray]
    val_images: list[np.ndarray]

    def describe(self) -> dict[str, Any]:
        return {"dir": str(self.root), "train_images": len(self.train_images), "val_images": len(self.val_images)}


def looks_like_eval_set(root: Path) -> bool:
    parts = root.resolve().parts
    return len(parts) >= 3 and parts[-3:] == ("shared", "data", "eval")


def prepare_data(config: DataConfig, *, load_val: bool = True) -> DataSplit:
    """List, split (by file name and seed) and load the photos under ``config.data``."""
    if config.data is None:
        raise KdcamError("no training data; pass --data DIR (a folder of photos)")
    root = Path(config.data).expanduser()
    if not root.is_dir():
        raise KdcamError(f"{root}: no such folder; pass --data DIR, a folder of training photos")
    if looks_like_eval_set(root):
        raise KdcamError(f"{root} is the evaluation set and must never be trained on; use data/train")
    paths = list_images(root)
    if not paths:
        raise KdcamError(f"{root}: no images found (jpg, png, webp, bmp); pass a folder of training photos")
    train_paths, val_paths = split_train_val(paths, val_fraction=config.val_fraction, seed=config.seed)
    train_images, skipped = load_images(train_paths, max_side=config.max_side, dtype="uint8")
    train_paths = [p for p in train_paths if p not in set(skipped)]
    if not train_images:
        raise KdcamError(f"{root}: none of the training images could be read; check the files")
    val_images: list[np.ndarray] = []
    if load_val and val_paths:
        val_images, skipped = load_images(val_paths, max_side=config.max_side, dtype="uint8")
        val_paths = [p for p in val_paths if p not in set(skipped)]
    return DataSplit(root, train_paths, val_paths, train_images, val_images)


def make_patches(split: DataSplit, config: DataConfig, *, length: int) -> PatchDataset:
    """The training PatchDataset (people photos oversampled by ``distill.data.file_weights``)."""
    return PatchDataset(split.train_images, crop=config.crop, degradation=config.degradation, seed=config.seed,
                        length=length, augment=True, weights=file_weights(split.train_paths),
                        soft_reference=config.soft_reference)


def make_val_batch(split: DataSplit, config: DataConfig, *, items: int) -> dict[str, torch.Tensor] | None:
    """A fixed validation batch cut from the held-out photos (None if there are none)."""
    if not split.val_images or items <= 0:
        return None
    ds = PatchDataset(split.val_images, crop=config.crop, degradation=config.degradation, seed=config.seed + 7919,
                      length=items, augment=False, soft_reference=config.soft_reference)
    rows = [ds[i] for i in range(items)]
    return {"input": torch.stack([r["input"] for r in rows]), "target": torch.stack([r["target"] for r in rows])}
