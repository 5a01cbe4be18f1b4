"""Typer wrapper for ``kdcam bench``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from engines.atomic import atomic_write_text, check_writable
from engines.foundation.options import shown_default
from engines.foundation.values import AUTO, BENCH_SIZES, DEFAULT_FPS, size_text
from engines.registry import ENGINE_NAMES
from vcam.pipeline_bench import PIPELINE_SECONDS


def bench(
    sizes: Annotated[str, typer.Option(help="Comma-separated frame sizes.")] = ",".join(map(size_text, BENCH_SIZES)),
    engine: Annotated[
        Optional[list[str]],
        typer.Option(
            help=f"Engine to measure (repeatable; default: every available one): {', '.join(ENGINE_NAMES[1:])}."
        ),
    ] = None,
    model: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Student to time: an installed model's name or a checkpoint (repeatable); default: every "
                 "installed model."
        ),
    ] = None,
    precision: Annotated[
        Optional[str],
        typer.Option(
            help="Precision for the engines that have a choice (openvino: fp32 or bf16; tensorrt: fp16 or fp32).",
            show_default="each engine's own",
        ),
    ] = None,
    srcnn: Annotated[bool, typer.Option(help="Also measure the seed-style SRCNN reference.")] = True,
    pipeline: Annotated[bool, typer.Option(help="Measure the whole live loop instead (file source, no vcam).")] = False,
    source: Annotated[Optional[Path], typer.Option(help="Video file for --pipeline.")] = None,
    seconds: Annotated[
        Optional[float],
        typer.Option(help="Duration of the --pipeline run.", show_default=shown_default(PIPELINE_SECONDS)),
    ] = None,
    fps: Annotated[
        float,
        typer.Option(help="Target fps: of the --pipeline run, and of the frame budget --model auto is judged by."),
    ] = DEFAULT_FPS,
    panel: Annotated[
        Optional[str],
        typer.Option(help="With --pipeline: off, idle (the control panel served, no page open, as `kdcam start` "
                          "runs) or page (one page open for the whole run, reading the live preview).",
                     show_default="off"),
    ] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON.")] = None,
    markdown_out: Annotated[
        Optional[Path], typer.Option("--markdown", help="Also write the table as Markdown.")
    ] = None,
) -> None:
    """Measure engine fps (default) or the whole live loop (--pipeline), with the machine named."""
    from engines.foundation.timing import machine_name
    from vcam.bench import run_bench, to_markdown
    from engines.foundation.values import parse_size
    from engines.errors import KdcamError, shown

    from vcam.live.settings import parse_duration
    from engines.foundation.values import parse_fps

    parsed = [parse_size(s) for s in sizes.split(",") if s.strip()]
    if not parsed:
        raise KdcamError(
            f"--sizes {shown(sizes)} names no frame size; give WIDTHxHEIGHT[,WIDTHxHEIGHT...], e.g. 1280x720"
        )
    fps = parse_fps(fps)
    if not pipeline:
        given = [flag for flag, value in (("--seconds", seconds), ("--source", source), ("--panel", panel))
                 if value is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise KdcamError(f"{' and '.join(given)} {verb} to the whole live loop only: add --pipeline, or drop them")
    seconds = parse_duration(PIPELINE_SECONDS if seconds is None else seconds, what="--seconds")
    for path in (json_out, markdown_out):
        if path is not None:
            check_writable(path)  # before the run, not after it
    if pipeline:
        from vcam.pipeline_bench import run_pipeline_bench

        if source is None:
            raise KdcamError("--pipeline needs --source VIDEO (e.g. ../shared/data/video/vtest.avi)")
        size = parsed[0]
        result = run_pipeline_bench(
            source=source,
            size=size,
            fps=fps,
            seconds=seconds,
            engine=engine[0] if engine else AUTO,
            model=model[0] if model else None,
            panel=panel or "off",
        )
        result["machine"] = machine_name()
        text = json.dumps(result, indent=2)
    else:
        result = run_bench(sizes=parsed, engines=engine, models=model, precision=precision, srcnn=srcnn, fps_target=fps)
        text = to_markdown(result)
    typer.echo(text)
    if json_out:
        atomic_write_text(json_out, json.dumps(result, indent=2) + "\n")
    if markdown_out and not pipeline:
        atomic_write_text(markdown_out, text)
