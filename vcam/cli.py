"""The ``kdcam`` command line: thin typer wrappers over keyword-only functions.

This is the one place that composes the two sides of kdcam: the live commands of
``vcam`` and, mounted lazily as ``kdcam distill``, the training commands of ``distill``
(imported only when that subcommand runs). ``KdcamError`` becomes its one-line message
on stderr and exit code 1 (``engines.errors.run_cli``); anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import typer

from engines.errors import run_cli
from engines.options import typer_app
from vcam import bench_cli, build_engine_cli, ctl_cli, live_cli, sharpen_cli

app = typer_app("kdcam", "KD Sharpen Cam: a virtual webcam that sharpens every frame with a distilled CNN.")
app.command("start")(live_cli.start)
app.command("setup")(live_cli.setup)
app.command("devices")(live_cli.devices)
app.command("sharpen")(sharpen_cli.sharpen)
app.command("bench")(bench_cli.bench)
app.command("build-engine")(build_engine_cli.build_engine)
app.add_typer(ctl_cli.app, name="ctl")


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
