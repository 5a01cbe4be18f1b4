"""Soft labels: run a teacher over the training crops once and cache its outputs on disk.

``kdcam distill label`` builds the same ``PatchDataset`` the student trainer builds (same
photos, train/val split, crop, degradation and seed), runs the teacher on item ``i`` and
stores the result as ``items/<i>.png`` (16-bit BGR, so 1/65535 steps). The trainer reads
item ``i``'s label by index. ``manifest.json`` records what the labels were made with; the
trainer refuses a cache that does not match its own options.

Every label is written atomically and existing ones are skipped, so an interrupted run
keeps what it finished and simply continues when started again. Under ``torchrun`` rank
``r`` of ``w`` labels the items with ``i % w == r``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from distill.config import DataConfig, LabelConfig
from distill.distributed import barrier, broadcast_error, distributed
from distill.footage import footage_frames, footage_patches
from distill.split import make_patches, prepare_data
from distill.teacher import load_any_teacher, teacher_bgr
from engines.atomic import atomic_path, atomic_write_text, remove_stale_partials
from engines.errors import KdcamError
from engines.foundation.options import flag
from engines.pixels import to_float, to_uint

MANIFEST = "manifest.json"
ITEMS_DIR = "items"
LABELS_FORMAT = "kdcam-labels"
LABELS_VERSION = 1


# --------------------------------------------------------------------------- the cache


def _write_png16(path: Path, chw: np.ndarray) -> None:
    image = to_uint(chw.transpose(1, 2, 0), np.uint16)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise KdcamError(f"could not write {path}; check that the label folder is writable")


def _read_png16(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3:
        raise KdcamError(f"{path}: damaged label file; delete it and rerun `kdcam distill label` to redo it")
    return to_float(image).transpose(2, 0, 1)


@dataclass
class LabelCache:
    root: Path
    manifest: dict[str, Any]

    @property
    def items(self) -> int:
        return int(self.manifest["items"])

    def path(self, index: int) -> Path:
        return self.root / ITEMS_DIR / f"{int(index):07d}.png"

    def read(self, index: int) -> torch.Tensor:
        path = self.path(index)
        if not path.is_file():
            raise KdcamError(
                f"{path}: label missing; rerun `kdcam distill label` with the same options to finish the cache"
            )
        return torch.from_numpy(np.ascontiguousarray(_read_png16(path)))

    def missing(self) -> list[int]:
        present = {p.name for p in (self.root / ITEMS_DIR).glob("*.png")} if (self.root / ITEMS_DIR).is_dir() else set()
        return [i for i in range(self.items) if f"{i:07d}.png" not in present]

    def check_complete(self) -> None:
        missing = self.missing()
        if missing:
            raise KdcamError(
                f"{self.root}: {len(missing)} of {self.items} labels are missing (first: item {missing[0]}); "
                "rerun `kdcam distill label` with the same options to finish it"
            )

    def check_matches(self, config: DataConfig) -> None:
        """Raise if the trainer's data options (crop, degradation, seed, ...) differ from the cache's."""
        bad = [
            f"{flag(key)} {value} (labels: {self.manifest.get(key)})"
            for key, value in config.data_fields().items()
            if value != self.manifest.get(key)
        ]
        if bad:
            raise KdcamError(
                f"{self.root}: labels were made with other options: {', '.join(bad)}; use the same options or relabel"
            )

    def check_files(self, train_files: list[str]) -> None:
        if list(train_files) != list(self.manifest.get("train_files", [])):
            made = len(self.manifest.get("train_files", []))
            raise KdcamError(
                f"{self.root}: labels were made from other training photos ({made} files "
                f"vs {len(train_files)} now); use the same --data folder or relabel"
            )


def open_labels(root: str | Path) -> LabelCache:
    root = Path(root).expanduser()
    path = root / MANIFEST
    if not path.is_file():
        raise KdcamError(
            f"{root}: no label cache here ({MANIFEST} missing); run `kdcam distill label --out {root}` first"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise KdcamError(f"{path}: damaged manifest; delete the folder and relabel") from None
    if manifest.get("format") != LABELS_FORMAT:
        raise KdcamError(f"{path}: not a kdcam label manifest")
    return LabelCache(root, manifest)


# --------------------------------------------------------------------------- labelling


def _check(config: LabelConfig) -> None:
    if config.items < 1:
        raise KdcamError(f"--items must be at least 1, not {config.items}")
    if config.batch_size < 1:
        raise KdcamError(f"--batch-size must be at least 1, not {config.batch_size}")
    if config.crop % 8:
        raise KdcamError(f"--crop {config.crop} must be a multiple of 8 (the Restormer's grid)")


def _open_cache(config: LabelConfig, desc: dict, info, *, source: dict) -> LabelCache:
    """Write (or check) the manifest on rank 0; every rank gets the cache. ``source`` says
    where the crops come from (the training photos, or footage)."""
    out = Path(config.out).expanduser()
    manifest = {
        "format": LABELS_FORMAT,
        "version": LABELS_VERSION,
        "teacher": desc,
        **source,
        "items": int(config.items),
        **config.data_fields(),
        "tile": config.tile,
        "storage": "items/<index:07d>.png, 16-bit BGR, value/65535",
    }
    problem = None
    if info.is_main:
        path = out / MANIFEST
        if path.is_file():
            old = open_labels(out).manifest
            keys = [k for k in manifest if k not in ("items", "data") and old.get(k) != manifest.get(k)]
            if keys:  # more items than before is fine: the new ones are added
                problem = (f"{out} holds labels made with other settings ({', '.join(keys)}); use the same options, "
                           "or another --out folder")
        if problem is None:
            atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
            if (out / ITEMS_DIR).is_dir():
                remove_stale_partials(out / ITEMS_DIR)  # left by a killed run
    broadcast_error(info, problem)
    barrier(info)
    (out / ITEMS_DIR).mkdir(parents=True, exist_ok=True)
    return LabelCache(out, manifest)


def label(config: LabelConfig) -> dict[str, Any]:
    """Write teacher outputs for items ``0 .. items-1`` of the training PatchDataset into ``out``.

    ``teacher`` is our own teacher (.safetensors) or an official .pth. Existing labels are
    kept. Returns ``{"out", "items", "written", "skipped"}`` (counts for this rank).
    """
    from tqdm import tqdm

    _check(config)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    model, desc = load_any_teacher(config.teacher)
    with distributed(config.device) as info:
        if config.footage:  # real frames with no ground truth: the teacher's output is the only label
            frames = footage_frames(config.footage, every=config.footage_every)
            source = {
                "footage": [str(Path(p).expanduser().resolve()) for p in config.footage],
                "footage_every": config.footage_every,
                "footage_frames": len(frames),
            }
            cache = _open_cache(config, desc, info, source=source)
            dataset = footage_patches(
                frames, crop=config.crop, degradation=config.degradation, seed=config.seed, length=config.items
            )
        else:
            split = prepare_data(config, load_val=False)
            source = {"data": str(split.root.resolve()), "train_files": [p.name for p in split.train_paths]}
            cache = _open_cache(config, desc, info, source=source)
            dataset = make_patches(split, config, length=config.items)
        mine = [i for i in range(config.items) if i % info.world == info.rank]
        todo = [i for i in mine if not cache.path(i).is_file()]
        model = model.to(info.device)
        bar = tqdm(
            total=len(mine),
            initial=len(mine) - len(todo),
            desc="label",
            unit="item",
            disable=not (info.is_main and config.progress),
            dynamic_ncols=True,
        )
        written = 0
        try:
            for start in range(0, len(todo), config.batch_size):
                chunk = todo[start : start + config.batch_size]
                inputs = torch.stack([dataset[i]["input"] for i in chunk]).to(info.device)
                outputs = teacher_bgr(model, inputs, tile=config.tile).float().cpu().numpy()
                for i, result in zip(chunk, outputs):
                    _write_png16(cache.path(i), result)
                    written += 1
                bar.update(len(chunk))
        finally:
            bar.close()
        barrier(info)
    return {
        "out": str(cache.root),
        "items": config.items,
        "written": written,
        "skipped": len(mine) - len(todo),
        "teacher": desc,
    }
