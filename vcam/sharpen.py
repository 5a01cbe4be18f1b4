"""``kdcam sharpen``: sharpen image and video files with an engine.

Everything that needs no engine is checked first, for every input, before the engine
loads: each input is read and named by what it is (``vcam.media.probe``), the output
folder is created, and no two inputs may be written to the same output file. Then each
input is sharpened on its own: one that fails is reported in one line and the others go
on; the command exits non-zero with a count at the end.

* Images are written as lossless PNG under the input's stem, with the input's bit depth
  (a 16-bit photo stays 16-bit: the network's correction, computed on 8 bits, is applied to
  the 16-bit values), channels (grey, colour, alpha untouched) and size.
* Videos keep their frames, size and fps. A video that decodes fewer frames than its
  container announces is a failure; what decoded is kept only with ``partial=True``.
* Every file is written under a temporary name and renamed into place, so an error or a
  stop signal leaves nothing half-written.
* An image or video frame over ``max_pixels`` (``vcam.media.MAX_PIXELS`` by default) is
  refused from its header, before it is decoded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from engines.atomic import atomic_path, disk_full, recover_partials, why
from engines.errors import KdcamError
from engines.foundation.values import AUTO, DEFAULT_FPS
from engines.pixels import to_float, to_uint
from vcam.media.probe import MAX_PIXELS, Job, probe, read_image
from vcam.media.video_writer import VideoWriter


def _as_bgr8(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The 8-bit BGR frame the engine sees, and the alpha plane to put back (if any)."""
    colour = image if image.ndim == 2 or image.shape[2] == 3 else image[..., :3]
    alpha = None if colour is image else image[..., 3]
    frame8 = colour if colour.dtype == np.uint8 else to_uint(to_float(colour))
    if frame8.ndim == 2:
        frame8 = cv2.cvtColor(frame8, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(frame8), alpha


def sharpen_image(engine, src: Path, dst: Path, *, strength: float, max_pixels: int = MAX_PIXELS) -> None:
    image = read_image(src, max_pixels=max_pixels)
    frame8, alpha = _as_bgr8(image)
    result8 = engine.sharpen(frame8, strength=strength)
    # The correction the network made, applied to the original values at their own precision.
    delta = result8.astype(np.int32) - frame8.astype(np.int32)
    if image.ndim == 2:
        delta = delta[..., 0]  # a luma correction is the same on every channel
    colour = image if alpha is None else image[..., :3]
    scale = 257 if image.dtype == np.uint16 else 1
    top = np.iinfo(image.dtype).max
    result = np.clip(colour.astype(np.int32) + delta * scale, 0, top).astype(image.dtype)
    if alpha is not None:
        result = np.dstack([result, alpha])
    with atomic_path(dst) as tmp:
        if not cv2.imwrite(str(tmp), result):
            cause = "the disk is full" if disk_full(dst.parent) else "check the folder is writable"
            raise KdcamError(f"{dst}: OpenCV could not write the PNG ({cause})")


def _progress_bar(*, disable: bool):
    """A frame counter on stderr (rich, which the CLI already has; no training package)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               TimeElapsedColumn())
    return Progress(*columns, console=Console(file=sys.stderr), disable=disable)


def sharpen_video(engine, job: Job, *, strength: float, partial: bool = False, progress: bool = True) -> int:
    """Sharpen every frame of ``job.src`` into ``job.dst``; returns the number of frames written."""
    cap = cv2.VideoCapture(str(job.src), cv2.CAP_FFMPEG)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise KdcamError(f"{job.src}: the video cannot be decoded any more (was it changed or removed?)")
        fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        h, w = frame.shape[:2]
        count = 0
        with atomic_path(job.dst) as tmp, VideoWriter(tmp, width=w, height=h, fps=fps, name=job.dst) as writer:
            with _progress_bar(disable=not progress) as bar:
                task = bar.add_task(job.src.name, total=job.frames or None)
                while ok:
                    writer.write(engine.sharpen(frame, strength=strength))
                    count += 1
                    bar.advance(task)
                    ok, frame = cap.read()
            if job.frames and count < job.frames and not partial:
                raise KdcamError(
                    f"{job.src}: decoded only {count} of the {job.frames} frames its container announces "
                    "(damaged or cut short?); nothing written (--partial keeps the frames that decode)"
                )
        if job.frames and count < job.frames:
            raise KdcamError(
                f"{job.src}: decoded only {count} of the {job.frames} frames its container announces "
                f"(damaged or cut short?); kept those {count} frames in {job.dst} (--partial)"
            )
        return count
    finally:
        cap.release()


def _one_line(src: Path, err: Exception) -> str:
    """The one-line message of a failure of input ``src``."""
    message = str(err) if isinstance(err, KdcamError) else f"{src}: {type(err).__name__}: {err}"
    return " ".join(message.split())


def plan_jobs(inputs: Sequence[Path], output_dir: Path, *, max_pixels: int = MAX_PIXELS) -> tuple[list[Job], int]:
    """Every input that can be sharpened, with its output; reports the others and counts them.

    Refuses the whole run when two inputs would be written to one file, or one would
    overwrite an input."""
    blocker = next((p for p in (output_dir, *output_dir.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise KdcamError(
            f"cannot use --output {output_dir}: {blocker} is a file, not a folder; choose another --output"
        )
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KdcamError(
            f"cannot create the output folder {output_dir} ({why(err)}); choose another --output"
        ) from None
    jobs, failures = [], 0
    for src in map(Path, inputs):
        try:
            job = probe(src, output_dir, max_pixels=max_pixels)
            if job.dst.is_dir():
                raise KdcamError(f"{src}: cannot write {job.dst}: a folder of that name is in the way")
            jobs.append(job)
        except (KdcamError, cv2.error, OSError) as err:
            failures += 1
            print(f"kdcam: error: {_one_line(src, err)}", file=sys.stderr)
    by_output: dict[Path, Job] = {}
    inputs_resolved = {job.src.resolve(): job for job in jobs}
    for job in jobs:
        key = job.dst.resolve()
        if key in by_output:
            raise KdcamError(
                f"{by_output[key].src} and {job.src} would both be written to {job.dst}; "
                "sharpen them into different --output folders"
            )
        if key in inputs_resolved:
            raise KdcamError(
                f"{inputs_resolved[key].src} would be overwritten by the result of {job.src}; "
                "choose another --output folder"
            )
        by_output[key] = job
    return jobs, failures


def sharpen_files(
    *,
    inputs: Sequence[Path],
    output_dir: Path,
    strength: float = 1.0,
    engine: str = AUTO,
    model: Path | None = None,
    partial: bool = False,
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
) -> int:
    """Sharpen every input into ``output_dir``. Returns the number of inputs that failed;
    each failure is reported on stderr as one line and the rest go on."""
    from engines import create_engine

    if not inputs:
        raise KdcamError("no input files given; pass one or more images or videos")
    if max_pixels < 1:
        raise KdcamError(f"--max-pixels must be at least 1, not {max_pixels}")
    jobs, failures = plan_jobs(inputs, Path(output_dir), max_pixels=max_pixels)
    if model is not None and str(model) == AUTO:
        model = None  # files have no frame budget: the best installed model
    if jobs:
        with create_engine(engine, model=model) as runner:
            for job in jobs:
                try:
                    for stale in recover_partials(job.dst, keep=False):  # the result is made again now
                        print(
                            f"kdcam: removed {stale.name}, half of {job.dst.name} left by a killed run", file=sys.stderr
                        )
                    if job.kind == "video":
                        n = sharpen_video(runner, job, strength=strength, partial=partial, progress=progress)
                        print(f"{job.src} -> {job.dst} ({job.detail}, {n} frames)", file=sys.stderr)
                    else:
                        sharpen_image(runner, job.src, job.dst, strength=strength, max_pixels=max_pixels)
                        print(f"{job.src} -> {job.dst} ({job.detail})", file=sys.stderr)
                except (KdcamError, cv2.error, OSError) as err:
                    failures += 1
                    print(f"kdcam: error: {_one_line(job.src, err)}", file=sys.stderr)
    if failures:
        print(f"kdcam: {failures} of {len(inputs)} inputs failed", file=sys.stderr)
    return failures
