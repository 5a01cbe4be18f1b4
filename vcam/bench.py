"""``kdcam bench``: engine-only frames per second, every number measured in the same run.

Rows: every available engine on the given student, the seed-style SRCNN reference
(9-5-5, 64/32 channels, random weights: speed only; building it needs PyTorch and the ONNX
exporter, so without them that row is left out, and said so) on the same engines, and
OpenCV's unsharp mask as the classical baseline. Ratios are taken within the run.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engines import ENGINES, create_engine, engine_status
from engines.classical import unsharp_mask
from engines.errors import KdcamError, shown
from engines.foundation.timing import machine_name, time_fps
from engines.foundation.values import BENCH_SIZES, DEFAULT_FPS
from engines.model.needs_torch import EXPORT_MODULES, TORCH_EXTRA, missing, named
from engines.registry import engine_options


def _srcnn_checkpoint(folder: Path) -> Path:
    import torch

    from engines.model.checkpoint import save_student
    from engines.model.students import create_student

    torch.manual_seed(0)
    return save_student(create_student("srcnn-955"), folder / "srcnn-955.safetensors", card={"weights": "random"})


def run_bench(
    *,
    sizes: Sequence[tuple[int, int]] = BENCH_SIZES,
    engines: Sequence[str] | None = None,
    models: Sequence[str | Path] | None = None,
    precision: str | None = None,
    srcnn: bool = True,
    fps_target: float = DEFAULT_FPS,
    max_seconds: float = 8.0,
) -> dict:
    """Measure and return ``{"machine", "rows": [{design, engine, size, fps}], "ratios", "auto"}``.

    ``models``: the students to time (default: every installed model, by name). ``auto``
    says, per engine and size, which model ``--model auto`` would pick from these numbers.
    """
    from engines.model.zoo import installed

    status = engine_status()
    names = list(engines) if engines else [s.name for s in ENGINES if status[s.name] is None]
    for name in names:
        if status.get(name, "unknown engine") is not None:
            raise KdcamError(f"cannot bench engine {shown(name)}: {status.get(name, 'unknown engine')}")
    absent = missing(EXPORT_MODULES) if srcnn else []
    if absent:
        print(f"kdcam: bench: no SRCNN reference row: building it needs {named(absent)} ({TORCH_EXTRA})",
              file=sys.stderr)
        srcnn = False
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        designs = [(str(m), m) for m in (models or installed())]
        if srcnn:
            designs.append(("srcnn-955", _srcnn_checkpoint(Path(tmp))))
        for design, weights in designs:
            for name in names:
                with create_engine(
                    name, model=weights, quiet=True, **engine_options(name, precision=precision)
                ) as engine:
                    for w, h in sizes:
                        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                        out = np.empty_like(frame)
                        fps = time_fps(lambda: engine.sharpen(frame, out=out), max_seconds=max_seconds)
                        rows.append(
                            {
                                "design": design,
                                "engine": name,
                                "detail": engine.describe(),
                                "size": f"{w}x{h}",
                                "fps": fps,
                            }
                        )
    for w, h in sizes:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fps = time_fps(lambda: unsharp_mask(frame, sigma=1.0, amount=1.0), max_seconds=max_seconds)
        rows.append({"design": "unsharp-mask", "engine": "opencv", "detail": "OpenCV", "size": f"{w}x{h}", "fps": fps})
    students = [d for d, _ in designs if d != "srcnn-955"]
    return {
        "machine": machine_name(),
        "rows": rows,
        "ratios": _ratios(rows, students),
        "auto": _auto_choices(rows, students, fps_target),
        "fps_target": fps_target,
    }


def _auto_choices(rows: list[dict], students: list[str], fps_target: float) -> list[dict]:
    """What ``--model auto`` (``vcam.live.model_choice``) picks from the measured frame times."""
    from vcam.live.model_choice import HEADROOM

    fps = {(r["design"], r["engine"], r["size"]): r["fps"] for r in rows}
    out = []
    for engine, size in dict.fromkeys((e, z) for (_, e, z) in fps if e != "opencv"):
        measured = [(d, fps[(d, engine, size)]) for d in students if (d, engine, size) in fps]
        fits = [(d, f) for d, f in measured if 1.0 / f <= HEADROOM / fps_target]
        chosen = fits[0] if fits else max(measured, key=lambda df: df[1])
        out.append({"engine": engine, "size": size, "model": chosen[0], "fps": chosen[1], "fits": bool(fits)})
    return out


def _ratios(rows: list[dict], students: list[str]) -> list[dict]:
    fps = {(r["design"], r["engine"], r["size"]): r["fps"] for r in rows}
    ratios = []
    for (design, engine, size), value in fps.items():
        if design not in students:
            continue
        ref = fps.get(("srcnn-955", engine, size))
        sharp = fps.get(("unsharp-mask", "opencv", size))
        ratios.append(
            {
                "design": design,
                "engine": engine,
                "size": size,
                "vs_srcnn": value / ref if ref else None,
                "vs_unsharp": value / sharp if sharp else None,
            }
        )
    return ratios


def to_markdown(result: dict) -> str:
    sizes = sorted({r["size"] for r in result["rows"]}, key=lambda s: int(s.split("x")[0]))
    lines = [
        f"Machine: {result['machine']}. Engine-only fps (one BGR uint8 frame in, one out), median of >= 10 runs.",
        "",
    ]
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
    lines += ["", "| model | engine | size | model / SRCNN | model / unsharp mask |", "|---|---|---|---|---|"]
    for r in result["ratios"]:
        vs_s = f"{r['vs_srcnn']:.1f}x" if r["vs_srcnn"] else "-"
        vs_u = f"{r['vs_unsharp']:.2f}x" if r["vs_unsharp"] else "-"
        lines.append(f"| {r['design']} | {r['engine']} | {r['size']} | {vs_s} | {vs_u} |")
    if result.get("auto"):
        from vcam.live.model_choice import HEADROOM

        lines += [
            "",
            f"`--model auto` from these numbers (the best installed model within {HEADROOM:.0%} of a "
            f"{result.get('fps_target', DEFAULT_FPS):g} fps "
            "frame):",
            "",
        ]
        lines += [
            f"- {a['engine']} at {a['size']}: **{a['model']}** ({a['fps']:.1f} fps"
            f"{'' if a['fits'] else ', the fastest: none fits'})"
            for a in result["auto"]
        ]
    return "\n".join(lines) + "\n"
