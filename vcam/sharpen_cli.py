"""Typer wrapper for ``kdcam sharpen``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vcam.cli_options import Engine, Model, Strength


def sharpen(
    inputs: Annotated[list[Path], typer.Argument(help="Images and/or videos to sharpen.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results (same file names).")],
    strength: Strength = None,
    engine: Engine = None,
    model: Model = None,
) -> None:
    """Sharpen image files (PNG in, PNG out) and video files (same frames, size and fps)."""
    from vcam.config import parse_strength
    from vcam.sharpen import sharpen_files

    failures = sharpen_files(inputs=inputs, output_dir=output, strength=parse_strength(1.0 if strength is None else strength),
                             engine=engine or "auto", model=model)
    if failures:
        raise typer.Exit(code=1)
