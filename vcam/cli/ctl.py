"""``kdcam ctl``: change a running ``kdcam start`` without restarting it (``vcam.live.controls``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from engines.foundation.cli import typer_app
from vcam.media.camera_name import DEFAULT_CAMERA_NAME

app = typer_app("ctl", "Control a running `kdcam start`: status, strength, toggle, split, model, engine, save.")

@app.callback()
def choose(
    ctx: typer.Context,
    camera: Annotated[
        Optional[str],
        typer.Option(
            "--camera", help="The instance to control, by its virtual camera's name.", show_default=DEFAULT_CAMERA_NAME
        ),
    ] = None,
) -> None:
    """Control a running `kdcam start` (one per virtual camera) without restarting it."""
    from vcam.media.camera_name import parse_camera_name

    ctx.obj = DEFAULT_CAMERA_NAME if camera is None else parse_camera_name(camera, what="--camera")


def _send(camera: str, cmd: str, value: object = None) -> None:
    from engines.errors import KdcamError
    from vcam.live.controls.client import send_request

    request = {"cmd": cmd} if value is None else {"cmd": cmd, "value": value}
    answer = send_request(camera, request)
    if not answer.get("ok"):
        raise KdcamError(str(answer.get("error", "the running instance refused the request")))
    status = answer.get("status", {})
    if answer.get("message"):
        typer.echo(answer["message"])
    typer.echo(
        " | ".join(f"{key} {', '.join(value) if isinstance(value, list) else value}" for key, value in status.items())
    )


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the running instance's effect, strength, split view, model and engine."""
    _send(ctx.obj, "status")


@app.command()
def strength(
    ctx: typer.Context, value: Annotated[str, typer.Argument(help="0 (off) to 2; 1 is the trained model.")]
) -> None:
    """Set the sharpening strength."""
    from engines.foundation.values import parse_strength

    _send(ctx.obj, "strength", parse_strength(value, what="strength"))  # sent as a number: the protocol is typed


@app.command()
def toggle(ctx: typer.Context) -> None:
    """Turn the effect off, or back on."""
    _send(ctx.obj, "toggle")


@app.command()
def split(
    ctx: typer.Context, mode: Annotated[str, typer.Argument(help="on (input left, sharpened right), off, or labels.")]
) -> None:
    """Publish the split before/after view to the call, or stop."""
    _send(ctx.obj, "split", mode)


@app.command()
def model(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="An installed model (see `kdcam ctl status`).")]
) -> None:
    """Switch to another installed model (the camera keeps running)."""
    _send(ctx.obj, "model", name)


@app.command()
def engine(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="An engine name (see `kdcam start --help`).")]
) -> None:
    """Switch to another inference engine (the camera keeps running)."""
    _send(ctx.obj, "engine", name)


@app.command()
def save(ctx: typer.Context) -> None:
    """Write the settings changed live (strength, model, engine) to the config file, atomically."""
    _send(ctx.obj, "save")
