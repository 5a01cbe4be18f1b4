"""Typer wrapper for ``kdcam sharpen``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engines.foundation.values import AUTO, DEFAULT_STRENGTH
from vcam.cli.options import Engine, Model, Strength
from vcam.media.probe import MAX_PIXELS


def sharpen(
    inputs: Annotated[list[Path], typer.Argument(help="Images and/or videos to sharpen.", show_default=False)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the results (the inputs' names; images as .png).")
    ],
    strength: Strength = None,
    engine: Engine = None,
    model: Model = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Keep the frames of a damaged video that do decode (still an error).")
    ] = False,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels",
            help="Refuse an image or video frame larger than this many pixels (from its header, before "
            "decoding it): raise it for larger files if the machine has the memory.",
        ),
    ] = MAX_PIXELS,
) -> None:
    """Sharpen images and videos into a folder.

    Images are written as lossless PNG under the input's name with .png, at the input's bit
    depth (16-bit stays 16-bit), channels and size. Videos keep their frames, size and fps,
    and their container where OpenCV can write it: .avi (Motion JPEG, lossy), .mp4/.mov/.m4v
    (MPEG-4 Part 2, lossy), .mkv (HuffYUV, lossless); others become .mp4. Exits 1 if any
    input failed (each failure is one line; the others are still sharpened), among them an
    image or video frame over --max-pixels.
    """
    from engines.foundation.values import parse_strength
    from vcam.sharpen import sharpen_files

    failures = sharpen_files(
        inputs=inputs,
        output_dir=output,
        strength=parse_strength(DEFAULT_STRENGTH if strength is None else strength),
        engine=engine or AUTO,
        model=model,
        partial=partial,
        max_pixels=max_pixels,
    )
    if failures:
        raise typer.Exit(code=1)
