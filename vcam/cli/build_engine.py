"""``kdcam build-engine``: build the TensorRT engine of a student for this GPU.

A thin typer wrapper over ``engines.tensorrt_build.build_engine``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from engines.engine_cache import DEFAULT_PRECISION
from engines.foundation.values import DEFAULT_SIZE, size_text
from engines.tensorrt_common import DEFAULT_WORKSPACE_MB


def build_engine(
    model: Annotated[
        Optional[Path], typer.Option("--model", help="student checkpoint (.safetensors); default: the shipped model")
    ] = None,
    size: Annotated[str, typer.Option("--size", help="frame size to optimize for, WIDTHxHEIGHT")] = size_text(
        DEFAULT_SIZE
    ),
    min_size: Annotated[
        Optional[str], typer.Option("--min-size", help="smallest frame the engine accepts (default: any)")
    ] = None,
    max_size: Annotated[
        Optional[str],
        typer.Option("--max-size", help="largest frame the engine accepts (default 1920x1080, or --size if larger)"),
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp16 or fp32")] = DEFAULT_PRECISION,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            help="engine file to write; default: the per-user cache, keyed by GPU, TensorRT version, model, "
                 "sizes and precision",
        ),
    ] = None,
    workspace_mb: Annotated[
        int, typer.Option("--workspace-mb", help="TensorRT builder workspace limit in MiB")
    ] = DEFAULT_WORKSPACE_MB,
    force: Annotated[bool, typer.Option("--force", help="rebuild even if an up-to-date engine exists")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="show TensorRT's info messages")] = False,
) -> None:
    """Build a TensorRT engine (with a metadata .json beside it) and print its path."""
    from engines import tensorrt_build

    path = tensorrt_build.build_engine(
        model=model,
        size=size,
        min_size=min_size,
        max_size=max_size,
        precision=precision,
        output=output,
        workspace_mb=workspace_mb,
        force=force,
        verbose=verbose,
    )
    typer.echo(str(path))
