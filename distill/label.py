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

from distill.atomic import atomic_path, atomic_write_text
from distill.errors import KdcamError

MANIFEST = "manifest.json"
ITEMS_DIR = "items"
LABELS_FORMAT = "kdcam-labels"
LABELS_VERSION = 1
#: manifest fields that must equal the trainer's own options
MATCHED = ("crop", "degradation", "seed", "val_fraction", "max_side")


# --------------------------------------------------------------------------- teachers


def load_any_teacher(path: str | Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A teacher from our own ``.safetensors`` (save_teacher) or a released Restormer ``.pth``.

    Returns ``(model in eval mode on the CPU, description for model cards)``.
    """
    from distill.atomic import file_sha256
    from distill.teacher import load_official_checkpoint, load_teacher, read_teacher_metadata

    if path is None:
        raise KdcamError("no teacher given; pass --teacher FILE (.safetensors from fit-teacher, or an official .pth)")
    path = Path(path).expanduser()
    if not path.is_file():
        raise KdcamError(f"{path}: teacher file not found; pass a teacher .safetensors or an official Restormer .pth")
    if path.suffix == ".safetensors":
        model = load_teacher(path)
        card = read_teacher_metadata(path).get("card", {})
        kind = "kdcam-teacher"
    else:
        model = load_official_checkpoint(path)
        card = {}
        kind = "official-restormer"
    desc = {"file": path.name, "kind": kind, "sha256": file_sha256(path)[:16], "config": model.config}
    if card.get("size"):
        desc["size"] = card["size"]
    return model.eval(), desc


def teacher_bgr(model: torch.nn.Module, bgr: torch.Tensor, *, tile: int | None = None) -> torch.Tensor:
    """Run a Restormer (which works in RGB) on BGR ``[N,3,H,W]`` in [0, 1]; BGR out, clamped."""
    from distill.teacher import restore

    return restore(model, bgr.flip(1), tile=tile).flip(1)


# --------------------------------------------------------------------------- the cache


def _write_png16(path: Path, chw: np.ndarray) -> None:
    image = np.clip(np.rint(chw.transpose(1, 2, 0) * 65535.0), 0, 65535).astype(np.uint16)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise KdcamError(f"could not write {path}; check that the label folder is writable")


def _read_png16(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3:
        raise KdcamError(f"{path}: damaged label file; delete it and rerun `kdcam distill label` to redo it")
    return (image.astype(np.float32) / 65535.0).transpose(2, 0, 1)


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
            raise KdcamError(f"{path}: label missing; rerun `kdcam distill label` with the same options to finish the cache")
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

    def check_matches(self, **options: Any) -> None:
        """Raise if the trainer's crop/degradation/seed/... differ from the cache's."""
        bad = []
        for key in MATCHED:
            if key in options and options[key] != self.manifest.get(key):
                bad.append(f"--{key.replace('_', '-')} {options[key]} (labels: {self.manifest.get(key)})")
        if bad:
            raise KdcamError(f"{self.root}: labels were made with other options: {', '.join(bad)}; use the same options or relabel")

    def check_files(self, train_files: list[str]) -> None:
        if list(train_files) != list(self.manifest.get("train_files", [])):
            raise KdcamError(
                f"{self.root}: labels were made from other training photos ({len(self.manifest.get('train_files', []))} files "
                f"vs {len(train_files)} now); use the same --data folder or relabel"
            )


def open_labels(root: str | Path) -> LabelCache:
    root = Path(root).expanduser()
    path = root / MANIFEST
    if not path.is_file():
        raise KdcamError(f"{root}: no label cache here ({MANIFEST} missing); run `kdcam distill label --out {root}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise KdcamError(f"{path}: damaged manifest; delete the folder and relabel") from None
    if manifest.get("format") != LABELS_FORMAT:
        raise KdcamError(f"{path}: not a kdcam label manifest")
    return LabelCache(root, manifest)


# --------------------------------------------------------------------------- labelling


def label(
    *,
    data: str | Path,
    out: str | Path,
    teacher: str | Path | None = None,
    teacher_weights: str | Path | None = None,
    items: int = 1000,
    crop: int = 128,
    degradation: str = "webcam",
    seed: int = 0,
    val_fraction: float = 0.1,
    max_side: int | None = None,
    batch_size: int = 8,
    tile: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write teacher outputs for items ``0 .. items-1`` of the training PatchDataset into ``out``.

    ``teacher`` is our own teacher (.safetensors) or an official .pth; ``teacher_weights``
    is the same for an official .pth (give one of them). Existing labels are kept.
    Returns ``{"out", "items", "written", "skipped"}`` (counts for this rank).
    """
    from tqdm import tqdm

    from distill.train import distributed, make_patches, prepare_data, remove_stale_partials

    if (teacher is None) == (teacher_weights is None):
        raise KdcamError("pass exactly one of --teacher FILE (our teacher or an official .pth) and --teacher-weights FILE.pth")
    if items < 1:
        raise KdcamError(f"--items must be at least 1, not {items}")
    if batch_size < 1:
        raise KdcamError(f"--batch-size must be at least 1, not {batch_size}")
    if crop % 8:
        raise KdcamError(f"--crop {crop} must be a multiple of 8 (the Restormer's grid)")
    if threads:
        torch.set_num_threads(int(threads))
    out = Path(out).expanduser()
    model, desc = load_any_teacher(teacher if teacher is not None else teacher_weights)

    with distributed(device) as info:
        split = prepare_data(data, val_fraction=val_fraction, seed=seed, max_side=max_side, load_val=False)
        manifest = {
            "format": LABELS_FORMAT,
            "version": LABELS_VERSION,
            "teacher": desc,
            "data": str(split.root.resolve()),
            "train_files": [p.name for p in split.train_paths],
            "items": int(items),
            "crop": int(crop),
            "degradation": degradation,
            "seed": int(seed),
            "val_fraction": float(val_fraction),
            "max_side": max_side,
            "tile": tile,
            "storage": "items/<index:07d>.png, 16-bit BGR, value/65535",
        }
        problem = None
        if info.is_main:
            path = out / MANIFEST
            if path.is_file():
                old = open_labels(out).manifest
                keys = [k for k in manifest if k not in ("items", "data") and old.get(k) != manifest.get(k)]
                if keys:
                    problem = (f"{out} holds labels made with other settings ({', '.join(keys)}); "
                               "use the same options, or another --out folder")
                # more items than before is fine: the new ones are added
            if problem is None:
                atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
                if (out / ITEMS_DIR).is_dir():
                    remove_stale_partials(out / ITEMS_DIR)  # left by a killed run
        from distill.train import _barrier, _broadcast_error

        _broadcast_error(info, problem)
        _barrier(info)
        cache = LabelCache(out, manifest)
        (out / ITEMS_DIR).mkdir(parents=True, exist_ok=True)
        dataset = make_patches(split, crop=crop, degradation=degradation, seed=seed, length=items)
        mine = [i for i in range(items) if i % info.world == info.rank]
        todo = [i for i in mine if not cache.path(i).is_file()]
        model = model.to(info.device)
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="label", unit="item",
                   disable=not (info.is_main and progress), dynamic_ncols=True)
        written = 0
        try:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                inputs = torch.stack([dataset[i]["input"] for i in chunk]).to(info.device)
                outputs = teacher_bgr(model, inputs, tile=tile).float().cpu().numpy()
                for i, result in zip(chunk, outputs):
                    _write_png16(cache.path(i), result)
                    written += 1
                bar.update(len(chunk))
        finally:
            bar.close()
        _barrier(info)
    return {"out": str(out), "items": items, "written": written, "skipped": len(mine) - len(todo), "teacher": desc}
