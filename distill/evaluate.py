"""Evaluation: degrade a folder of clean images, restore them with each method, score.

For each degradation preset every image is degraded with a fixed seed (``seed`` and the
image's index), every method restores it, and PSNR and SSIM against the clean image come
from scikit-image. Each method is also timed, over the set and (optionally) on a 1280x720
frame. Results go to ``results.json`` and ``results.md`` in the output folder, with a crop
comparison grid ``grid_<preset>.png`` per preset.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from distill.atomic import atomic_path, atomic_write_text
from distill.classical import laplacian_sharpen, unsharp_mask
from distill.data import list_images, load_images
from distill.degrade import degrade, get_preset
from distill.errors import KdcamError

Method = Callable[[np.ndarray], np.ndarray]

#: the rows every evaluation has, before the caller's methods
BUILTIN_METHODS: dict[str, Method] = {
    "input": lambda bgr: bgr,
    "unsharp": lambda bgr: unsharp_mask(bgr, sigma=1.0, amount=1.0),
    "laplacian": lambda bgr: laplacian_sharpen(bgr, strength=0.08),
}

#: size of the extra timing frame (width, height)
FRAME_720P = (1280, 720)


def image_seed(seed: int, index: int) -> int:
    """The degradation seed of image ``index`` in an evaluation run with ``seed``."""
    return int(seed) * 1_000_003 + int(index)


def _run(name: str, method: Method, image: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = method(image)
    elapsed = time.perf_counter() - start
    out = np.asarray(out)
    if out.dtype == np.uint8:
        out = out.astype(np.float32) * np.float32(1.0 / 255.0)
    if out.shape != image.shape:
        raise KdcamError(f"method {name!r} returned shape {out.shape} for an input of shape {image.shape}; it must keep the size")
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False), elapsed


def _frame_720p(image: np.ndarray) -> np.ndarray:
    """``image`` scaled and center-cropped to fill 1280x720."""
    w, h = FRAME_720P
    scale = max(w / image.shape[1], h / image.shape[0])
    size = (max(w, int(math.ceil(image.shape[1] * scale))), max(h, int(math.ceil(image.shape[0] * scale))))
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(np.clip(big[y : y + h, x : x + w], 0.0, 1.0), dtype=np.float32)


def time_method(method: Method, frame: np.ndarray, *, runs: int = 5, warmup: int = 1) -> float:
    """Frames per second of ``method`` on ``frame``: the median of ``runs`` timed calls."""
    for _ in range(warmup):
        method(frame)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        method(frame)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return float("inf") if median <= 0 else 1.0 / median


def _detail_crop(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` crop with the most detail among a 3x3 set of spots."""
    h, w = image.shape[:2]
    if h <= size and w <= size:
        return 0, 0
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    detail = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    best, best_yx = -1.0, (0, 0)
    for fy in (0.25, 0.5, 0.75):
        for fx in (0.25, 0.5, 0.75):
            y = int(round((h - size) * fy)) if h > size else 0
            x = int(round((w - size) * fx)) if w > size else 0
            score = float(detail[y : y + size, x : x + size].mean())
            if score > best:
                best, best_yx = score, (y, x)
    return best_yx


def _make_grid(rows: list[list[np.ndarray]], labels: Sequence[str], *, zoom: int) -> np.ndarray:
    """A uint8 BGR grid: one row per image, one column per label, a header with the labels."""
    tile_h = max(r[0].shape[0] for r in rows) * zoom
    tile_w = max(r[0].shape[1] for r in rows) * zoom
    gap, header = 4, 28
    cols = len(labels)
    grid = np.full((header + len(rows) * (tile_h + gap), cols * (tile_w + gap) - gap, 3), 255, np.uint8)
    for c, label in enumerate(labels):
        x = c * (tile_w + gap)
        font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1
        text = label
        while len(text) > 3 and cv2.getTextSize(text, font, scale, thick)[0][0] > tile_w - 8:
            text = text[:-2] + "~"
        cv2.putText(grid, text, (x + 6, header - 9), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    for r, tiles in enumerate(rows):
        y = header + r * (tile_h + gap)
        for c, tile in enumerate(tiles):
            big = cv2.resize(tile, (tile.shape[1] * zoom, tile.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)
            x = c * (tile_w + gap)
            grid[y : y + big.shape[0], x : x + big.shape[1]] = np.clip(big * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return grid


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return format(value, spec)


def format_fps(value: float | None) -> str:
    """A frame rate for a table: one decimal, or two significant digits below 10 fps (a teacher's 0.055)."""
    return _fmt(value, ".1f" if value is None or value >= 10 else ".2g")


def results_markdown(results: dict) -> str:
    """``results.md``: one table per preset."""
    lines = [
        "# kdcam evaluation",
        "",
        f"Images: {results['num_images']} from `{results['images_dir']}`; seed {results['seed']}. "
        "PSNR (dB) and SSIM are means over the images (scikit-image, data range 1, all three channels).",
        "",
    ]
    n = results["num_images"]
    for preset, block in results["presets"].items():
        lines += [f"## {preset}", "", f"Degradation: {block['description']}", ""]
        lines += [f"| method | PSNR | SSIM | fps@720p | total time for {n} images (s) |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, row in block["methods"].items():
            lines.append(
                f"| {name} | {_fmt(row['psnr'], '.2f')} | {_fmt(row['ssim'], '.4f')} | "
                f"{format_fps(row['fps_720p'])} | {_fmt(row['total_s'], '.3f')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _print_tables(results: dict) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency, but keep plain output working without it
        print(results_markdown(results))
        return
    console = Console()
    n = results["num_images"]
    for preset, block in results["presets"].items():
        table = Table(title=f"{preset}: {block['description']}", title_justify="left")
        table.add_column("method")
        for col in ("PSNR", "SSIM", "fps@720p", f"total s ({n} img)"):
            table.add_column(col, justify="right")
        for name, row in block["methods"].items():
            table.add_row(
                name,
                _fmt(row["psnr"], ".2f"),
                _fmt(row["ssim"], ".4f"),
                _fmt(row["fps_720p"], ".1f"),
                _fmt(row["total_s"], ".3f"),
            )
        console.print(table)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def evaluate(
    *,
    images_dir: str | Path,
    presets: Sequence[str],
    methods: Mapping[str, Method] | None = None,
    max_images: int | None = None,
    out_dir: str | Path,
    seed: int = 0,
    crop_grid: bool = True,
    time_720p: bool = True,
    runs_720p: int = 5,
    max_side: int | None = None,
    include_builtins: bool = True,
    grid_rows: int = 3,
    grid_crop: int = 128,
    quiet: bool = False,
) -> dict:
    """Score restoration methods on degraded copies of the images in ``images_dir``.

    ``methods`` maps a row name to a callable taking and returning a BGR float32 HxWx3
    image in [0, 1] (same size); it runs after the builtin rows "input" (the degraded
    image itself), "unsharp" and "laplacian" (left out with ``include_builtins=False``; a
    caller's method with a builtin's name replaces it). For each preset, image ``i`` is
    degraded with ``degrade(..., seed=image_seed(seed, i))``.

    Per preset and method: mean PSNR and SSIM (scikit-image, data_range=1,
    channel_axis=-1), per-image scores, total seconds over the set and images per second.
    Each method is called once before it is timed (on the first degraded image, or on the
    720p frame when that timing runs). A method returning uint8 is scaled by 1/255. With
    ``time_720p`` each method is also timed on a 1280x720 frame (median of ``runs_720p``
    runs after one warm-up) and reported as ``fps_720p`` (None when off).

    Writes ``results.json``, ``results.md`` and, with ``crop_grid``, ``grid_<preset>.png``
    (rows: the first ``grid_rows`` images; columns: input | unsharp | the caller's
    methods | ground truth) atomically into ``out_dir``, prints one table per preset
    unless ``quiet``, and returns the dict that is in ``results.json``.
    """
    presets = list(presets)
    if not presets:
        raise KdcamError("no degradation presets given; pass at least one, e.g. gaussian-1.4")
    degradations = {name: get_preset(name) for name in presets}  # unknown names fail here, before any work
    table: dict[str, Method] = dict(BUILTIN_METHODS) if include_builtins else {}
    table.update(methods or {})
    if not table:
        raise KdcamError("no methods to evaluate; pass methods or keep the builtin rows")
    if max_images is not None and max_images < 1:
        raise KdcamError(f"max_images must be at least 1, not {max_images}")

    paths = list_images(images_dir)
    if max_images is not None:
        paths = paths[:max_images]
    images, skipped = load_images(paths, max_side=max_side)
    skipped_set = set(skipped)
    paths = [p for p in paths if p not in skipped_set]
    if not images:
        raise KdcamError(f"{images_dir}: no readable images to evaluate on; point --images at a folder of PNG/JPEG files")
    names = [p.name for p in paths]
    out_dir = Path(out_dir)

    fps_720p: dict[str, float | None] = {name: None for name in table}
    if time_720p:
        frame = _frame_720p(images[0])
        for name, method in table.items():
            if method is not BUILTIN_METHODS["input"]:  # the identity row has no speed to report
                fps_720p[name] = time_method(method, frame, runs=runs_720p)

    warmed: set[str] = set(table) if time_720p else set()  # the 720p timing warmed them up
    results: dict = {
        "images_dir": str(images_dir),
        "images": names,
        "num_images": len(images),
        "skipped": [str(p) for p in skipped],
        "seed": int(seed),
        "max_side": max_side,
        "methods": list(table),
        "fps_720p": fps_720p,
        "presets": {},
    }
    grid_labels = [n for n in ("input", "unsharp") if n in table]
    grid_labels += [n for n in table if n not in BUILTIN_METHODS or n in (methods or {})]
    grid_labels = list(dict.fromkeys(grid_labels))

    for preset in presets:
        rows: dict[str, dict] = {
            name: {"psnr": 0.0, "ssim": 0.0, "total_s": 0.0, "fps": None, "fps_720p": fps_720p[name], "per_image": []}
            for name in table
        }
        grid_rows_tiles: list[list[np.ndarray]] = []
        for i, clean in enumerate(images):
            degraded = degrade(clean, degradations[preset], seed=image_seed(seed, i))
            outputs: dict[str, np.ndarray] = {}
            for name, method in table.items():
                if name not in warmed:
                    method(degraded)
                    warmed.add(name)
                out, elapsed = _run(name, method, degraded)
                psnr = float(peak_signal_noise_ratio(clean, out, data_range=1.0))
                ssim = float(structural_similarity(clean, out, data_range=1.0, channel_axis=-1))
                row = rows[name]
                row["total_s"] += elapsed
                row["per_image"].append({"image": names[i], "psnr": psnr, "ssim": ssim, "seconds": elapsed})
                if crop_grid and i < grid_rows and name in grid_labels:
                    outputs[name] = out
            if crop_grid and i < grid_rows:
                size = min(grid_crop, clean.shape[0], clean.shape[1])
                y, x = _detail_crop(clean, size)
                cut = lambda im: im[y : y + size, x : x + size]  # noqa: E731
                grid_rows_tiles.append([cut(outputs[n]) for n in grid_labels] + [cut(clean)])
        for row in rows.values():
            scores = row["per_image"]
            row["psnr"] = float(np.mean([s["psnr"] for s in scores]))
            row["ssim"] = float(np.mean([s["ssim"] for s in scores]))
            row["fps"] = len(scores) / row["total_s"] if row["total_s"] > 0 else float("inf")
        block = {"description": degradations[preset].describe(), "methods": rows}
        if crop_grid:
            grid = _make_grid(grid_rows_tiles, grid_labels + ["ground truth"], zoom=2)
            grid_path = out_dir / f"grid_{preset}.png"
            with atomic_path(grid_path) as tmp:
                if not cv2.imwrite(str(tmp), grid):
                    raise KdcamError(f"could not write {grid_path}; check that the output folder is writable")
            block["grid"] = grid_path.name
        results["presets"][preset] = block

    results = _json_safe(results)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    if not quiet:
        _print_tables(results)
    return results
