"""The ``kdcam`` command line: thin typer wrappers over keyword-only functions, one module
per command group (``camera``: start, panel, setup, devices; ``ctl``; ``sharpen``; ``bench``;
``build_engine``; shared flags in ``options``).

This is the one place that composes the two sides of kdcam: the live commands of
``vcam`` and, mounted lazily as ``kdcam distill``, the training commands of ``distill``
(imported only when that subcommand runs). ``KdcamError`` becomes its one-line message
on stderr and exit code 1 (``engines.foundation.cli.run_cli``); anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import typer

from engines.foundation.cli import run_cli, typer_app
from vcam.cli import bench, build_engine, camera, ctl, sharpen

app = typer_app("kdcam", "KD Sharpen Cam: a virtual webcam that sharpens every frame with a distilled CNN.")
app.command("start")(camera.start)
app.command("setup")(camera.setup)
app.command("devices")(camera.devices)
app.command("panel")(camera.panel)
app.command("sharpen")(sharpen.sharpen)
app.command("bench")(bench.bench)
app.command("build-engine")(build_engine.build_engine)
app.add_typer(ctl.app, name="ctl")


@app.command(
    "distill",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def distill(ctx: typer.Context) -> None:
    """Train and ship the student: fit-teacher, label, train, evaluate, export (kdcam distill --help)."""
    from distill.cli import app as distill_app

    code = distill_app(args=list(ctx.args), prog_name="kdcam distill", standalone_mode=False)  # errors reach run_cli
    if isinstance(code, int) and code:
        raise typer.Exit(code)


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
