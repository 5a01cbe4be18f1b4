"""Footage without ground truth: real camera frames whose only target is the teacher.

Distillation can learn from frames nobody has a clean copy of: the teacher's output on
them is the label. ``footage_frames`` takes every ``every``-th frame of the given videos
(and any still images) as they are; ``kdcam distill label --footage`` cuts crops of them
and stores the teacher's outputs, and ``kdcam distill train --footage-labels`` mixes those
crops into training (``FootageMix``), where the label is both the target and the teacher.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from distill.data import PatchDataset
from engines.errors import KdcamError


def footage_frames(paths: Sequence[str | Path], *, every: int = 10) -> list[np.ndarray]:
    """Every ``every``-th frame (uint8 BGR) of each video, and each image file as it is."""
    if every < 1:
        raise KdcamError(f"--footage-every must be at least 1, not {every}")
    frames: list[np.ndarray] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise KdcamError(f"{path}: footage not found; pass video files (or images) that exist")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if cv2.haveImageReader(str(path)) else None
        if image is not None:
            frames.append(image)
            continue
        cap = cv2.VideoCapture(str(path))
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % every == 0:
                frames.append(frame)
            index += 1
        cap.release()
        if index == 0:
            raise KdcamError(f"{path}: not a video or image OpenCV can read")
    return frames


def footage_patches(frames: list[np.ndarray], *, crop: int, degradation: str, seed: int, length: int) -> PatchDataset:
    """The crops of the footage that the labels belong to (item ``i`` is always the same crop)."""
    return PatchDataset(frames, crop=crop, degradation=degradation, seed=seed, length=length, augment=True)


class FootageMix(Dataset):
    """Training items where a fixed share are footage crops labelled by the teacher.

    Item ``i`` is footage when a hash of ``i`` falls under ``share`` (the same on every run
    and rank); then it is footage item ``i mod n`` with the label as its target (and as its
    teacher output, when the loss wants one).
    """

    def __init__(self, base: Dataset, footage: Dataset, labels: Any, *, share: float, with_teacher: bool) -> None:
        if not 0.0 < share < 1.0:
            raise KdcamError(f"--footage-share must be between 0 and 1, not {share}")
        self.base, self.footage, self.labels = base, footage, labels
        self.share, self.with_teacher = share, with_teacher

    def __len__(self) -> int:
        return len(self.base)

    def is_footage(self, index: int) -> bool:
        digest = hashlib.blake2b(str(index).encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") / 2**32 < self.share

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not self.is_footage(index):
            return self.base[index]
        j = index % len(self.footage)
        item = self.footage[j]
        label = self.labels.read(j)
        item["target"] = label
        if self.with_teacher:
            item["teacher"] = label
        return item
