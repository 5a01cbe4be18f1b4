"""Typer wrapper for ``kdcam sharpen``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer



def sharpen(
    inputs: Annotated[list[Path], typer.Argument(help="Images and/or videos to sharpen.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results (same file names).")],
    strength: Annotated[float, typer.Option(help="0 = input, 1 = full model (up to 2).")] = 1.0,
    engine: Annotated[str, typer.Option(help="auto, openvino, onnxruntime, torch, ...")] = "auto",
    model: Annotated[Optional[Path], typer.Option(help="Student checkpoint (.safetensors); default: the shipped one.")] = None,
) -> None:
    """Sharpen image files (PNG in, PNG out) and video files (same frames, size and fps)."""
    from vcam.sharpen import sharpen_files

    failures = sharpen_files(inputs=inputs, output_dir=output, strength=strength, engine=engine, model=model)
    if failures:
        raise typer.Exit(code=1)
