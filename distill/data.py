"""Training data: find and load photos, split them, and cut degraded/clean patch pairs.

Images are float32 HxWx3 BGR in [0, 1] (OpenCV order). ``load_images`` can also keep them
as uint8 to save memory on large sets; ``PatchDataset`` accepts either and always returns
float32 tensors.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from distill.degrade import resolve
from distill.degrade_ops import Degradation, as_float_bgr
from engines.errors import KdcamError
from engines.pixels import to_float, to_uint

#: file suffixes that count as images (compared in lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

#: lower-case name fragments of photos with people in them, oversampled by ``PEOPLE_WEIGHT``
PEOPLE_HINTS = ("people", "person", "portrait")
PEOPLE_PREFIXES = ("facerec_",)
PEOPLE_WEIGHT = 3.0


def list_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive; jpg/jpeg/png/webp/bmp), sorted by path.

    ``root`` may also be a single image file. Hidden files and folders are left out.
    Raises KdcamError if ``root`` does not exist.
    """
    root = Path(root).expanduser()
    if root.is_file():
        return [root] if root.suffix.lower() in IMAGE_SUFFIXES else []
    if not root.is_dir():
        raise KdcamError(f"{root}: no such folder; pass a folder of images (jpg, png, webp, bmp)")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _read_bgr(path: Path) -> np.ndarray | None:
    """uint8 HxWx3 BGR, or None if the file cannot be read or decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    # IMREAD_COLOR turns greyscale into 3 channels, drops alpha and brings 16-bit to 8-bit.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        return None
    return image


def _limit_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None:
        return image
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_images(
    paths: Sequence[str | Path],
    *,
    max_side: int | None = None,
    dtype: Literal["float32", "uint8"] = "float32",
) -> tuple[list[np.ndarray], list[Path]]:
    """Load ``paths`` as BGR images; returns ``(images, skipped)``.

    Images are float32 in [0, 1] (or uint8 with ``dtype="uint8"``: a quarter of the
    memory); greyscale files become 3-channel. ``max_side`` shrinks larger images (area
    interpolation) so that their longest side is at most that. Files that cannot be read or
    decoded are left out of ``images`` and listed in ``skipped``, with a single warning
    naming them all; the images keep the order of the readable paths.
    """
    if dtype not in ("float32", "uint8"):
        raise KdcamError(f"dtype must be 'float32' or 'uint8', not {dtype!r}")
    if max_side is not None and max_side < 1:
        raise KdcamError(f"max_side must be a positive number of pixels, not {max_side}")
    images: list[np.ndarray] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        image = _read_bgr(path)
        if image is None:
            skipped.append(path)
            continue
        image = _limit_side(image, max_side)
        images.append(as_float_bgr(image) if dtype == "float32" else image)
    if skipped:
        names = ", ".join(str(p) for p in skipped)
        warnings.warn(f"skipped {len(skipped)} unreadable image file(s): {names}", stacklevel=2)
    return images, skipped


def _unit_hash(text: str) -> float:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_train_val(
    paths: Sequence[str | Path], *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into ``(train, val)`` by a hash of each file name and ``seed``.

    A file's side depends only on its name and the seed, so adding or removing other files
    never moves it. Both lists keep the input order. With at least two files and
    ``0 < val_fraction < 1``, neither side is left empty: if the hash puts every file on one
    side, the file nearest the cut moves over.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise KdcamError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    paths = [Path(p) for p in paths]
    keys = [_unit_hash(f"{seed}:{p.name}") for p in paths]
    is_val = [k < val_fraction for k in keys]
    if len(paths) >= 2 and 0.0 < val_fraction < 1.0:
        if not any(is_val):
            is_val[int(np.argmin(keys))] = True
        elif all(is_val):
            is_val[int(np.argmax(keys))] = False
    train = [p for p, v in zip(paths, is_val) if not v]
    val = [p for p, v in zip(paths, is_val) if v]
    return train, val


def file_weight(path: str | Path) -> float:
    """Sampling weight of one file: ``PEOPLE_WEIGHT`` for photos of people (by name), else 1.

    People photos are names that start with ``facerec_`` or contain ``people``, ``person``
    or ``portrait`` (case-insensitive); the shared photo set has few of them and a webcam
    mostly sees faces.
    """
    name = Path(path).name.lower()
    if name.startswith(PEOPLE_PREFIXES) or any(hint in name for hint in PEOPLE_HINTS):
        return PEOPLE_WEIGHT
    return 1.0


def file_weights(paths: Sequence[str | Path]) -> list[float]:
    """``file_weight`` of each path, in order."""
    return [file_weight(p) for p in paths]


#: the largest training crop: bigger ones are whole frames, and allocate gigabytes when a photo is padded to them
MAX_CROP = 2048


class PatchDataset(Dataset):
    """Random degraded/clean patch pairs cut from in-memory images.

    Item ``i`` is ``{"input": degraded, "target": clean, "index": i}``, both float32 CHW BGR
    tensors in [0, 1] of size ``crop`` x ``crop``. It depends only on ``(seed, i)`` (not on
    the worker or the order of access), so a run can be repeated and labels cached per index
    line up.

    Each item picks an image (round robin over a list where image ``j`` appears
    ``round(weights[j] * repeats)`` times), a random crop ``crop + 2 * margin`` wide, a
    random flip/rot90 when ``augment``, degrades that larger crop and center-crops both to
    ``crop`` so blur never sees the crop's border. Images smaller than the crop are
    mirror-padded. ``length`` defaults to one pass over that list.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        *,
        crop: int = 128,
        degradation: str | Degradation = "webcam",
        soft_reference: float = 0.0,
        seed: int = 0,
        length: int | None = None,
        augment: bool = True,
        weights: Sequence[float] | None = None,
        repeats: int = 8,
        margin: int = 16,
    ) -> None:
        if not images:
            raise KdcamError("no training images; point the data folder at a folder of photos")
        if not 8 <= crop <= MAX_CROP:
            raise KdcamError(f"crop must be 8 to {MAX_CROP} pixels (a patch of a photo, e.g. 128-512), not {crop}")
        if weights is not None and len(weights) != len(images):
            raise KdcamError(f"got {len(weights)} weights for {len(images)} images; pass one weight per image")
        if repeats < 1:
            raise KdcamError(f"repeats must be at least 1, not {repeats}")
        self.images = list(images)
        self.crop = int(crop)
        self.margin = max(0, int(margin))
        self.degradation = resolve(degradation)
        if not 0.0 <= soft_reference < 1.0:
            raise KdcamError(f"soft_reference must be in [0, 1), not {soft_reference}")
        self.soft_reference = float(soft_reference)
        self.soften = resolve("soft-reference") if soft_reference else None
        if seed < 0:
            raise KdcamError(f"seed must be a non-negative integer, not {seed}")
        self.seed = int(seed)
        self.augment = augment
        w = [1.0] * len(self.images) if weights is None else [float(x) for x in weights]
        order: list[int] = []
        for j, weight in enumerate(w):
            order.extend([j] * max(1 if weight > 0 else 0, int(round(weight * repeats))))
        if not order:
            raise KdcamError("all image weights are zero; give at least one image a positive weight")
        # interleave so that consecutive indices walk through different images
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0]))
        self._order = np.asarray(order)[rng.permutation(len(order))]
        self.length = len(self._order) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def image_index(self, index: int) -> int:
        """Which of ``images`` item ``index`` is cut from."""
        return int(self._order[index % len(self._order)])

    def _cut(self, image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        if h < size or w < size:
            pad_h, pad_w = max(0, size - h), max(0, size - w)
            pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
            image = np.pad(image, pads, mode="symmetric")
            h, w = image.shape[:2]
        y = int(rng.integers(0, h - size + 1))
        x = int(rng.integers(0, w - size + 1))
        return image[y : y + size, x : x + size]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1, int(index)]))
        image = self.images[self.image_index(index)]
        big = self._cut(image, self.crop + 2 * self.margin, rng)
        big = as_float_bgr(np.ascontiguousarray(big))
        if self.augment:
            if rng.random() < 0.5:
                big = big[:, ::-1]
            big = np.rot90(big, int(rng.integers(4)))
        big = np.ascontiguousarray(big, dtype=np.float32)
        if self.soften is not None and rng.random() < self.soft_reference:
            big = to_float(to_uint(self.soften(big, rng)))  # a soft photo, as a camera would store it
        degraded = self.degradation(big, rng)
        m, c = self.margin, self.crop
        target = big[m : m + c, m : m + c]
        source = degraded[m : m + c, m : m + c]
        return {
            "input": torch.from_numpy(np.ascontiguousarray(source.transpose(2, 0, 1))),
            "target": torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1))),
            "index": int(index),
        }
