"""How evaluation results look: the results.md tables, the console tables and the crop grids."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from engines.pixels import to_uint


def detail_crop(image: np.ndarray, size: int) -> tuple[int, int]:
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


def make_grid(rows: list[list[np.ndarray]], labels: Sequence[str], *, zoom: int) -> np.ndarray:
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
            grid[y : y + big.shape[0], x : x + big.shape[1]] = to_uint(big)
    return grid


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return format(value, spec)


def format_fps(value: float | None) -> str:
    """A frame rate for a table (console and results.md alike): one decimal, or two significant
    digits below 10 fps (a teacher's 0.055)."""
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
        lines += [f"| method | PSNR | SSIM | fps@720p | fps@1080p | total time for {n} images (s) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in block["methods"].items():
            lines.append(
                f"| {name} | {_fmt(row['psnr'], '.2f')} | {_fmt(row['ssim'], '.4f')} | "
                f"{format_fps(row.get('fps_720p'))} | {format_fps(row.get('fps_1080p'))} | "
                f"{_fmt(row['total_s'], '.3f')} |"
            )
        lines.append("")
    return "\n".join(lines)


def print_tables(results: dict) -> None:
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
        for col in ("PSNR", "SSIM", "fps@720p", "fps@1080p", f"total s ({n} img)"):
            table.add_column(col, justify="right")
        for name, row in block["methods"].items():
            table.add_row(
                name,
                _fmt(row["psnr"], ".2f"),
                _fmt(row["ssim"], ".4f"),
                format_fps(row.get("fps_720p")),
                format_fps(row.get("fps_1080p")),
                _fmt(row["total_s"], ".3f"),
            )
        console.print(table)
