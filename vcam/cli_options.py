"""Options that several ``kdcam`` commands share, declared once (type, help, validation)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from engines.registry import engine_help

#: sharpening strength; validated by ``vcam.config.parse_strength`` wherever it is used
Strength = Annotated[
    Optional[float],
    typer.Option(help="Sharpening strength, 0 (off) to 2; 1 is the trained model.", show_default="1"),
]
Engine = Annotated[Optional[str], typer.Option(help=engine_help(), show_default="auto")]
Model = Annotated[
    Optional[str],
    typer.Option(help="auto (the best installed model that keeps up here), an installed model's name, or a student "
                      "checkpoint (.safetensors).", show_default="auto"),
]
