"""``kdcam sharpen``: sharpen image and video files with an engine."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engines.atomic import atomic_path
from engines.errors import KdcamError
from engines.pixels import to_float, to_uint
from engines import Engine, create_engine
from vcam.media import fourcc_for, is_video, video_output_path


def _bgr8(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split a decoded image into a uint8 BGR frame and its alpha plane (if any)."""
    if image.dtype == np.uint16:
        image = to_uint(to_float(image))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), None
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3]), image[..., 3]
    return image, None


def sharpen_image(engine: Engine, src: Path, dst: Path, *, strength: float) -> None:
    image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise KdcamError(f"{src}: cannot read this image (missing, corrupt or unsupported format)")
    grey_in = image.ndim == 2
    frame, alpha = _bgr8(image)
    result = engine.sharpen(frame, strength=strength)
    if grey_in:
        result = cv2.cvtColor(result, cv2.COLOR_BGR2GRAY)
    elif alpha is not None:
        result = np.dstack([result, alpha])
    with atomic_path(dst) as tmp:
        if not cv2.imwrite(str(tmp), result):
            raise KdcamError(f"{dst}: OpenCV cannot write this image format; use .png")


def sharpen_video(engine: Engine, src: Path, dst: Path, *, strength: float, progress: bool = True) -> int:
    cap = cv2.VideoCapture(str(src))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise KdcamError(f"{src}: cannot read this video (missing, corrupt or unsupported codec)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        h, w = frame.shape[:2]
        count = 0
        with atomic_path(dst) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc_for(dst)), fps, (w, h))
            if not writer.isOpened():
                raise KdcamError(f"{dst}: OpenCV cannot write this video container; use .mp4 or .avi")
            try:
                with tqdm(total=total, unit="frame", desc=src.name, disable=not progress, file=sys.stderr) as bar:
                    while ok:
                        writer.write(engine.sharpen(frame, strength=strength))
                        count += 1
                        bar.update()
                        ok, frame = cap.read()
            finally:
                writer.release()
        return count
    finally:
        cap.release()


def sharpen_files(
    *,
    inputs: Sequence[Path],
    output_dir: Path,
    strength: float = 1.0,
    engine: str = "auto",
    model: Path | None = None,
    progress: bool = True,
) -> int:
    """Sharpen every input into ``output_dir`` (same file names). Returns the number of
    inputs that failed; each failure is reported on stderr as one line and the rest go on."""
    if not inputs:
        raise KdcamError("no input files given; pass one or more images or videos")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise KdcamError(f"{output_dir}: --output must be a folder")
    runner = create_engine(engine, model=model)
    failures = 0
    try:
        for src in map(Path, inputs):
            dst = output_dir / src.name
            try:
                if is_video(src):
                    dst = video_output_path(dst)
                if src.exists() and dst.exists() and dst.resolve() == src.resolve():
                    raise KdcamError(f"{src}: output would overwrite the input; choose another --output folder")
                if is_video(src):
                    n = sharpen_video(runner, src, dst, strength=strength, progress=progress)
                    print(f"{src} -> {dst} ({n} frames)", file=sys.stderr)
                else:
                    sharpen_image(runner, src, dst, strength=strength)
                    print(f"{src} -> {dst}", file=sys.stderr)
            except KdcamError as err:
                failures += 1
                print(f"kdcam: error: {err}", file=sys.stderr)
    finally:
        runner.close()
    return failures
