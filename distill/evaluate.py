"""Evaluation: degrade a folder of clean images, restore them with each method, score.

For each degradation preset every image is degraded with a fixed seed (``seed`` and the
image's index), every method restores it, and PSNR and SSIM against the clean image come
from scikit-image. Each method is also timed, over the set and (optionally) on a 1280x720
and a 1920x1080 frame. Results go to ``results.json`` and ``results.md`` in the output folder, with a crop
comparison grid ``grid_<preset>.png`` per preset (``distill.report``).

``evaluate_models`` is ``kdcam distill evaluate``: the rows are the builtin ones (input,
unsharp mask, Laplacian), a teacher (in PyTorch) and students (on the engine they ship
on, uint8 frames in and out, or the float PyTorch model with ``engine="reference"``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from distill.config import EvaluateConfig
from distill.data import list_images, load_images
from distill.degrade import degrade, get_preset
from distill.report import detail_crop, make_grid, print_tables, results_markdown
from engines.atomic import atomic_path, atomic_write_text, check_writable
from engines.classical import laplacian_sharpen, unsharp_mask
from engines.errors import KdcamError
from engines.pixels import to_float, to_uint
from engines.foundation.timing import time_fps

Method = Callable[[np.ndarray], np.ndarray]

#: the rows every evaluation has, before the caller's methods
BUILTIN_METHODS: dict[str, Method] = {
    "input": lambda bgr: bgr,
    "unsharp": lambda bgr: unsharp_mask(bgr, sigma=1.0, amount=1.0),
    "laplacian": lambda bgr: laplacian_sharpen(bgr, strength=0.08),
}

#: the timing frames, (width, height) by the key their fps is reported under
TIMING_FRAMES = {"fps_720p": (1280, 720), "fps_1080p": (1920, 1080)}


def image_seed(seed: int, index: int) -> int:
    """The degradation seed of image ``index`` in an evaluation run with ``seed``."""
    return int(seed) * 1_000_003 + int(index)


def _run(name: str, method: Method, image: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = np.asarray(method(image))
    elapsed = time.perf_counter() - start
    if out.shape != image.shape:
        raise KdcamError(
            f"method {name!r} returned shape {out.shape} for an input of shape {image.shape}; it must keep the size"
        )
    return np.clip(to_float(out), 0.0, 1.0), elapsed


def _timing_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled and center-cropped to fill ``size`` (width, height)."""
    w, h = size
    scale = max(w / image.shape[1], h / image.shape[0])
    size = (max(w, int(math.ceil(image.shape[1] * scale))), max(h, int(math.ceil(image.shape[0] * scale))))
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(np.clip(big[y : y + h, x : x + w], 0.0, 1.0), dtype=np.float32)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _load(
    images_dir: str | Path, max_images: int | None, max_side: int | None
) -> tuple[list[np.ndarray], list[Path], list[Path]]:
    if max_images is not None and max_images < 1:
        raise KdcamError(f"max_images must be at least 1, not {max_images}")
    paths = list_images(images_dir)
    if max_images is not None:
        paths = paths[:max_images]
    images, skipped = load_images(paths, max_side=max_side)
    paths = [p for p in paths if p not in set(skipped)]
    if not images:
        raise KdcamError(f"{images_dir}: no readable images to evaluate on; point --data at a folder of PNG/JPEG files")
    return images, paths, skipped


def _score_preset(
    preset: str,
    images: list[np.ndarray],
    names: list[str],
    table: dict[str, Method],
    *,
    seed: int,
    speed: dict,
    warmed: set[str],
    grid: dict | None,
) -> dict:
    """One preset's block of results.json; with ``grid`` (labels, rows, crop size) fills its tiles."""
    degradation = get_preset(preset)
    rows = {
        name: {"psnr": 0.0, "ssim": 0.0, "total_s": 0.0, "fps": None, **speed[name], "per_image": []} for name in table
    }
    for i, clean in enumerate(images):
        degraded = degrade(clean, degradation, seed=image_seed(seed, i))
        outputs: dict[str, np.ndarray] = {}
        for name, method in table.items():
            if name not in warmed:
                method(degraded)
                warmed.add(name)
            out, elapsed = _run(name, method, degraded)
            with np.errstate(divide="ignore"):  # an unchanged image (the clean preset) scores inf
                psnr = float(peak_signal_noise_ratio(clean, out, data_range=1.0))
            ssim = float(structural_similarity(clean, out, data_range=1.0, channel_axis=-1))
            rows[name]["total_s"] += elapsed
            rows[name]["per_image"].append({"image": names[i], "psnr": psnr, "ssim": ssim, "seconds": elapsed})
            outputs[name] = out
        if grid is not None and i < grid["rows"]:
            size = min(grid["crop"], clean.shape[0], clean.shape[1])
            y, x = detail_crop(clean, size)
            grid["tiles"].append(
                [im[y : y + size, x : x + size] for im in [*(outputs[n] for n in grid["labels"]), clean]]
            )
    for row in rows.values():
        scores = row["per_image"]
        row["psnr"] = float(np.mean([s["psnr"] for s in scores]))
        row["ssim"] = float(np.mean([s["ssim"] for s in scores]))
        row["fps"] = len(scores) / row["total_s"] if row["total_s"] > 0 else float("inf")
    return {"description": degradation.describe(), "methods": rows}


def _write_grid(out_dir: Path, preset: str, grid: dict) -> str:
    image = make_grid(grid["tiles"], grid["labels"] + ["ground truth"], zoom=2)
    path = out_dir / f"grid_{preset}.png"
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise KdcamError(f"could not write {path}; check that the output folder is writable")
    return path.name


def evaluate(
    *,
    images_dir: str | Path,
    presets: Sequence[str],
    methods: Mapping[str, Method] | None = None,
    max_images: int | None = None,
    out_dir: str | Path,
    seed: int = 0,
    crop_grid: bool = True,
    timing: bool = True,
    runs: int = 5,
    max_side: int | None = None,
    include_builtins: bool = True,
    grid_rows: int = 3,
    grid_crop: int = 128,
    quiet: bool = False,
) -> dict:
    """Score restoration methods on degraded copies of the images in ``images_dir``.

    ``methods`` maps a row name to a callable taking and returning a BGR float32 HxWx3
    image in [0, 1] (same size; uint8 results are scaled by 1/255); it runs after the
    builtin rows "input" (the degraded image itself), "unsharp" and "laplacian" (left out
    with ``include_builtins=False``; a caller's method with a builtin's name replaces it).
    Image ``i`` is degraded with ``degrade(..., seed=image_seed(seed, i))``.

    Per preset and method: mean PSNR and SSIM (scikit-image, data_range=1,
    channel_axis=-1), per-image scores, total seconds over the set and images per second.
    With ``timing`` each method is also timed on a 1280x720 and a 1920x1080 frame (median of
    ``runs`` runs after one warm-up; 3 for a method slower than 10 s a frame) as ``fps_720p``
    and ``fps_1080p``. Writes ``results.json``,
    ``results.md`` and, with ``crop_grid``, ``grid_<preset>.png`` (rows: the first
    ``grid_rows`` images; columns: input | unsharp | the caller's methods | ground truth)
    atomically into ``out_dir``; prints one table per preset unless ``quiet``.
    """
    presets = list(presets)
    if not presets:
        raise KdcamError("no degradation presets given; pass at least one, e.g. gaussian-1.4")
    for name in presets:
        get_preset(name)  # unknown names fail here, before any work
    table: dict[str, Method] = dict(BUILTIN_METHODS) if include_builtins else {}
    table.update(methods or {})
    if not table:
        raise KdcamError("no methods to evaluate; pass methods or keep the builtin rows")
    out_dir = Path(out_dir)
    check_writable(out_dir / "results.json", what="results")  # before the work, not after it
    images, paths, skipped = _load(images_dir, max_images, max_side)
    names = [p.name for p in paths]

    speed: dict[str, dict[str, float | None]] = {name: dict.fromkeys(TIMING_FRAMES) for name in table}
    if timing:
        for key, size in TIMING_FRAMES.items():
            frame = _timing_frame(images[0], size)
            for name, method in table.items():
                if method is not BUILTIN_METHODS["input"]:  # the identity row has no speed to report
                    speed[name][key] = time_fps(
                        lambda: method(frame),
                        warmup=1,
                        min_runs=min(3, runs),
                        min_seconds=0.0,
                        max_seconds=10.0 * runs,
                        max_runs=runs,
                    )
    warmed: set[str] = set(table) if timing else set()  # the timing warmed them up
    labels = list(
        dict.fromkeys(
            [n for n in ("input", "unsharp") if n in table]
            + [n for n in table if n not in BUILTIN_METHODS or n in (methods or {})]
        )
    )
    results: dict = {
        "images_dir": str(images_dir),
        "images": names,
        "num_images": len(images),
        "skipped": [str(p) for p in skipped],
        "seed": int(seed),
        "max_side": max_side,
        "methods": list(table),
        "speed": speed,
        "presets": {},
    }
    for preset in presets:
        grid = {"labels": labels, "rows": grid_rows, "crop": grid_crop, "tiles": []} if crop_grid else None
        block = _score_preset(preset, images, names, table, seed=seed, speed=speed, warmed=warmed, grid=grid)
        if grid is not None:
            block["grid"] = _write_grid(out_dir, preset, grid)
        results["presets"][preset] = block

    results = _json_safe(results)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    if not quiet:
        print_tables(results)
    return results


# --------------------------------------------------------------------------- kdcam distill evaluate


def student_method(path: str | Path, engine: str, precision: str = "fp32") -> tuple[str, Method]:
    """A student as an evaluation row: run by an inference engine, as it ships (uint8 frames
    in and out; ``precision`` where the engine has a choice), or with ``engine="reference"``
    as the float PyTorch model."""
    import torch

    from engines.model.checkpoint import open_model

    model = open_model(path)
    if engine != "reference":
        from engines import create_engine
        from engines.registry import engine_options

        runtime = create_engine(
            engine, model=model, **engine_options(engine, precision=None if precision == "auto" else precision)
        )
        return model.name, lambda bgr: runtime.sharpen(to_uint(bgr))
    student = model.student.collapse().eval()

    def method(bgr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]
            y = student.restore_bgr(x).clamp_(0.0, 1.0)
        return y[0].numpy().transpose(1, 2, 0)

    return model.name, method


def teacher_method(path: str | Path, tile: int | None) -> tuple[str, Method]:
    import torch

    from distill.teacher import load_any_teacher, teacher_bgr

    model, desc = load_any_teacher(path)

    def method(bgr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]
        return teacher_bgr(model, x, tile=tile)[0].numpy().transpose(1, 2, 0)

    return f"teacher:{Path(desc['file']).stem}", method


def labelled(entry: str | Path) -> tuple[str | None, Path]:
    """``"NAME=PATH"`` -> (NAME, PATH); a plain path -> (None, path), named by its model card."""
    text = str(entry)
    if "=" in text and not Path(text).exists():
        label, _, path = text.partition("=")
        if label.strip() and path:
            return label.strip(), Path(path)
    return None, Path(text)


def evaluate_models(config: EvaluateConfig) -> dict[str, Any]:
    """``kdcam distill evaluate``: the teacher and students of ``config`` plus the builtin rows.

    Students run on ``config.engine`` (an engine name, ``auto``, or ``reference`` for the
    float PyTorch model); the teacher always runs in PyTorch."""
    import torch

    if config.data is None:
        raise KdcamError("pass --data DIR, the folder of evaluation photos (e.g. ../shared/data/eval)")
    if config.threads:
        torch.set_num_threads(int(config.threads))
    methods: dict[str, Method] = {}
    if config.teacher is not None:
        label, path = labelled(config.teacher)
        name, fn = teacher_method(path, config.tile)
        methods[label or name] = fn
    for entry in config.student:
        label, path = labelled(entry)
        name, fn = student_method(path, config.engine, config.precision)
        name = base = label or name
        k = 2
        while name in methods:
            name, k = f"{base}-{k}", k + 1
        methods[name] = fn
    return evaluate(
        images_dir=config.data,
        presets=config.preset_list(),
        methods=methods,
        max_images=config.max_images,
        out_dir=config.out,
        seed=config.seed,
        crop_grid=config.crop_grid,
        timing=config.timing,
        max_side=config.max_side,
    )
