"""Typer commands of the live camera: ``start``, ``setup``, ``devices``.

Thin wrappers: they collect only the flags the user gave, and hand them to the
keyword-only functions that do the work (``pipeline.run_live``, ``setup_steps``,
``devices.devices_report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from engines.errors import KdcamError
from vcam.cli_options import Engine, Model, Strength
from vcam.config import DEFAULT_CAMERA_NAME, resolve_settings


def start(
    device: Annotated[Optional[str], typer.Option(help="Camera index (0, 1, ...), video file or URL.", show_default="0")] = None,
    size: Annotated[Optional[str], typer.Option(help="Frame size WIDTHxHEIGHT, asked of the camera and published.", show_default="the camera's 1280x720 / the file's own")] = None,
    fps: Annotated[Optional[str], typer.Option(help="Target (published) frames per second.", show_default="30")] = None,
    engine: Engine = None,
    strength: Strength = None,
    model: Model = None,
    camera_name: Annotated[Optional[str], typer.Option(help="Virtual camera to publish to.", show_default=DEFAULT_CAMERA_NAME)] = None,
    vcam_backend: Annotated[Optional[str], typer.Option(help="pyvirtualcam backend (v4l2loopback, obs, unitycapture).", show_default="this OS's")] = None,
    loop: Annotated[Optional[bool], typer.Option("--loop/--no-loop", help="Replay a video file when it ends.")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Also record the sharpened stream: .mp4 (small), .avi (MJPEG), .mkv (lossless).")] = None,
    vcam: Annotated[Optional[bool], typer.Option("--vcam/--no-vcam", help="Publish to the virtual camera (--no-vcam: record or check only).")] = None,
    preview: Annotated[Optional[bool], typer.Option("--preview/--no-preview", help="Open a before/after window (space, +/-, m, s, q).")] = None,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after sending this many frames.")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file of defaults.", show_default="~/.config/kdcam/config.toml")] = None,
    frame_log: Annotated[Optional[Path], typer.Option(hidden=True, help="CSV of the capture frame behind each sent frame.")] = None,
) -> None:
    """Sharpen a webcam (or video) live and publish it as a virtual camera."""
    from vcam.live import run_live

    given = {
        "device": device,
        "size": size,
        "fps": fps,
        "engine": engine,
        "strength": strength,
        "model": model,
        "camera_name": camera_name,
        "vcam_backend": vcam_backend,
        "loop": loop,
        "output": output,
        "vcam": vcam,
        "preview": preview,
        "max_frames": max_frames,
        "duration": duration,
    }
    settings = resolve_settings(overrides={k: v for k, v in given.items() if v is not None}, config_path=config)
    if not settings.vcam and settings.output is None and not settings.preview and settings.max_frames is None and settings.duration is None:
        raise KdcamError("--no-vcam without --output, --preview, --max-frames or --duration would run unseen forever: add one of them")
    summary = run_live(settings=settings, frame_log=frame_log)
    if summary.get("signal"):  # stopped cleanly by Ctrl-C, SIGTERM or SIGHUP: exit as shells expect
        from engines.signals import exit_code

        raise typer.Exit(code=exit_code(summary["signal"]))


def setup(
    os_name: Annotated[Optional[str], typer.Option("--os", help="Print the steps for linux, windows or macos.", show_default="this OS")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Linux, as root: run the steps (install, config files, load the module).")] = False,
    camera_name: Annotated[str, typer.Option(help="Name of the virtual camera.")] = DEFAULT_CAMERA_NAME,
    video_nr: Annotated[int, typer.Option(help="Linux: N of /dev/videoN for the virtual camera.")] = 10,
) -> None:
    """Print (or, on Linux as root, run) the steps to get the "KD Sharpen Cam" virtual device."""
    from vcam.setup_steps import apply_linux_setup, current_os, setup_text

    target = (os_name or current_os()).lower()
    if apply:
        if target != "linux" or current_os() != "linux":
            raise KdcamError("--apply runs the Linux steps on Linux only; on Windows and macOS follow the printed steps")
        apply_linux_setup(camera_name=camera_name, video_nr=video_nr)
        return
    print(setup_text(os_name=target, camera_name=camera_name, video_nr=video_nr))


def devices(
    sysfs_root: Annotated[Path, typer.Option(hidden=True, help="Root of sysfs (tests).")] = Path("/sys"),
) -> None:
    """List capture devices and virtual (loopback) cameras."""
    from vcam.devices import devices_report

    print(devices_report(sysfs_root=sysfs_root))
