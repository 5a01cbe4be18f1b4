"""Typer commands of the live camera: ``start``, ``setup``, ``devices``.

Thin wrappers: they collect only the flags the user gave, and hand them to the
keyword-only functions that do the work (``vcam.live.session.run_live``, ``vcam.setup_steps``,
``vcam.media.devices.devices_report``). ``start``'s flags are the fields of
``vcam.live.settings.LiveSettings``, declared there once.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from engines.errors import KdcamError
from engines.foundation.options import typer_overrides
from vcam.live.settings import LiveSettings, resolve_settings
from vcam.media.camera_name import DEFAULT_CAMERA_NAME


def _start(overrides: dict[str, Any], *, config: Path | None, frame_log: Path | None) -> None:
    """Sharpen a webcam (or video) live and publish it as a virtual camera."""
    from vcam.live.session import run_live

    settings = resolve_settings(overrides=overrides, config_path=config)
    summary = run_live(settings=settings, frame_log=frame_log)
    if summary.get("signal"):  # stopped cleanly by Ctrl-C, SIGTERM or SIGHUP: exit as shells expect
        from engines.foundation.signals import exit_code

        raise typer.Exit(code=exit_code(summary["signal"]))


def _extra(name: str, help: str, **kw: Any) -> inspect.Parameter:
    option = typer.Option(help=help, **kw)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[Path], option])


#: `kdcam start`: one flag per field of LiveSettings (only the given ones override the config file)
start = typer_overrides(LiveSettings, _start, extra=[
    _extra("config", "Config file of defaults.", show_default="~/.config/kdcam/config.toml"),
    _extra("frame_log", "CSV of the capture frame behind each sent frame.", hidden=True),
])
start.__name__ = "start"


def setup(
    os_name: Annotated[
        Optional[str], typer.Option("--os", help="Print the steps for linux, windows or macos.", show_default="this OS")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Linux, as root: run the steps (install, config files, load the module).")
    ] = False,
    camera_name: Annotated[str, typer.Option(help="Name of the virtual camera.")] = DEFAULT_CAMERA_NAME,
    video_nr: Annotated[int, typer.Option(help="Linux: N of /dev/videoN for the virtual camera.")] = 10,
) -> None:
    """Print (or, on Linux as root, run) the steps to get the "KD Sharpen Cam" virtual device."""
    from vcam.setup_steps import apply_linux_setup, current_os, setup_text

    target = (os_name or current_os()).lower()
    if apply:
        if target != "linux" or current_os() != "linux":
            raise KdcamError(
                "--apply runs the Linux steps on Linux only; on Windows and macOS follow the printed steps"
            )
        apply_linux_setup(camera_name=camera_name, video_nr=video_nr)
        return
    print(setup_text(os_name=target, camera_name=camera_name, video_nr=video_nr))


def panel(
    camera: Annotated[Optional[str], typer.Option("--camera", help="The instance, by its virtual camera's name.",
                                                  show_default=DEFAULT_CAMERA_NAME)] = None,
) -> None:
    """Open the running `kdcam start`'s control panel in the default browser."""
    from vcam.live.controls.sockets import socket_path
    from vcam.media.camera_name import parse_camera_name
    from vcam.panel import open_panel, panel_file_for

    name = DEFAULT_CAMERA_NAME if camera is None else parse_camera_name(camera, what="--camera")
    info = open_panel(panel_file_for(socket_path(name)))
    print(f"kdcam: opened the control panel of '{name}' ({info.url}) in the browser")


def devices(
    sysfs_root: Annotated[Path, typer.Option(hidden=True, help="Root of sysfs (tests).")] = Path("/sys"),
) -> None:
    """List capture devices and virtual (loopback) cameras."""
    from vcam.media.devices import devices_report

    print(devices_report(sysfs_root=sysfs_root))
