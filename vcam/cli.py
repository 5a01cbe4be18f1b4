"""The ``kdcam`` command line: thin typer wrappers over keyword-only functions.

Each command module defines its typer-annotated functions; they are registered here.
``KdcamError`` becomes its one-line message on stderr and exit code 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from distill.errors import KdcamError

app = typer.Typer(
    name="kdcam",
    help="KD Sharpen Cam: a virtual webcam that sharpens every frame with a distilled CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- command registration (one line per command module) ---
# (commands are added below as their modules land)
from distill.cli import app as distill_app  # noqa: E402

app.add_typer(distill_app, name="distill")
from vcam import sharpen_cli  # noqa: E402

app.command("sharpen")(sharpen_cli.sharpen)
from vcam import bench_cli  # noqa: E402

app.command("bench")(bench_cli.bench)
from vcam import live_cli  # noqa: E402

app.command("start")(live_cli.start)
app.command("setup")(live_cli.setup)
app.command("devices")(live_cli.devices)
from vcam import build_engine_cli  # noqa: E402

app.command("build-engine")(build_engine_cli.build_engine)


def run_app(typer_app: typer.Typer) -> None:
    """The CLI boundary: a ``KdcamError`` becomes its one line on stderr and exit code 1."""
    import cv2

    # OpenCV's own warnings duplicate our one-line errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        typer_app()
    except KdcamError as err:
        print(f"kdcam: error: {err}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
