"""``kdcam bench``: engine-only frames per second, every number measured in the same run.

Rows: every available engine on the given student, the seed-style SRCNN reference
(9-5-5, 64/32 channels, random weights: speed only) on the same engines, and OpenCV's
unsharp mask as the classical baseline. Ratios are taken within the run.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from engines.model.checkpoint import save_student
from engines.classical import unsharp_mask
from engines.errors import KdcamError
from engines.model.students import create_student
from engines import ENGINES, create_engine, engine_status
from engines.timing import time_fps


def machine_name() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, {platform.system()}"


def _srcnn_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)
    return save_student(create_student("srcnn-955"), folder / "srcnn-955.safetensors", card={"weights": "random"})


def run_bench(
    *,
    sizes: Sequence[tuple[int, int]] = ((1280, 720), (1920, 1080)),
    engines: Sequence[str] | None = None,
    model: Path | None = None,
    srcnn: bool = True,
    max_seconds: float = 8.0,
) -> dict:
    """Measure and return ``{"machine", "rows": [{design, engine, size, fps}], "ratios": [...]}``."""
    status = engine_status()
    names = list(engines) if engines else [s.name for s in ENGINES if status[s.name] is None]
    for name in names:
        if status.get(name, "unknown engine") is not None:
            raise KdcamError(f"cannot bench engine '{name}': {status.get(name, 'unknown engine')}")
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        designs = [("student", model)]
        if srcnn:
            designs.append(("srcnn-955", _srcnn_checkpoint(Path(tmp))))
        for design, weights in designs:
            for name in names:
                with create_engine(name, model=weights, quiet=True) as engine:
                    for w, h in sizes:
                        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                        out = np.empty_like(frame)
                        fps = time_fps(lambda: engine.sharpen(frame, out=out), max_seconds=max_seconds)
                        rows.append({"design": design, "engine": name, "detail": engine.describe(), "size": f"{w}x{h}", "fps": fps})
    for w, h in sizes:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fps = time_fps(lambda: unsharp_mask(frame, sigma=1.0, amount=1.0), max_seconds=max_seconds)
        rows.append({"design": "unsharp-mask", "engine": "opencv", "detail": "OpenCV", "size": f"{w}x{h}", "fps": fps})
    return {"machine": machine_name(), "rows": rows, "ratios": _ratios(rows)}


def _ratios(rows: list[dict]) -> list[dict]:
    fps = {(r["design"], r["engine"], r["size"]): r["fps"] for r in rows}
    ratios = []
    for (design, engine, size), value in fps.items():
        if design != "student":
            continue
        ref = fps.get(("srcnn-955", engine, size))
        sharp = fps.get(("unsharp-mask", "opencv", size))
        ratios.append({
            "engine": engine,
            "size": size,
            "vs_srcnn": value / ref if ref else None,
            "vs_unsharp": value / sharp if sharp else None,
        })
    return ratios


def to_markdown(result: dict) -> str:
    sizes = sorted({r["size"] for r in result["rows"]}, key=lambda s: int(s.split("x")[0]))
    lines = [f"Machine: {result['machine']}. Engine-only fps (one BGR uint8 frame in, one out), median of >= 10 runs.", ""]
    lines.append("| design | engine | " + " | ".join(f"fps {s}" for s in sizes) + " |")
    lines.append("|---|---|" + "---|" * len(sizes))
    keyed: dict[tuple[str, str], dict[str, float]] = {}
    detail: dict[tuple[str, str], str] = {}
    for r in result["rows"]:
        keyed.setdefault((r["design"], r["engine"]), {})[r["size"]] = r["fps"]
        detail[(r["design"], r["engine"])] = r["detail"]
    for (design, engine), by_size in keyed.items():
        cells = " | ".join(f"{by_size[s]:.1f}" if s in by_size else "-" for s in sizes)
        lines.append(f"| {design} | {detail[(design, engine)]} | {cells} |")
    lines += ["", "| engine | size | student / SRCNN | student / unsharp mask |", "|---|---|---|---|"]
    for r in result["ratios"]:
        vs_s = f"{r['vs_srcnn']:.1f}x" if r["vs_srcnn"] else "-"
        vs_u = f"{r['vs_unsharp']:.2f}x" if r["vs_unsharp"] else "-"
        lines.append(f"| {r['engine']} | {r['size']} | {vs_s} | {vs_u} |")
    return "\n".join(lines) + "\n"
