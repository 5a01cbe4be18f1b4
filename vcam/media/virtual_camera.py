"""The virtual camera output: pick the device, open it through pyvirtualcam in BGR.

Frames are published as ``PixelFormat.BGR``, OpenCV's own layout, so no colour
conversion happens on our side. pyvirtualcam's failures are turned into one-line
``KdcamError`` messages that point to ``kdcam setup``.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyvirtualcam
from pyvirtualcam import PixelFormat

from engines.errors import KdcamError
from vcam.media.camera_name import DEFAULT_CAMERA_NAME
from vcam.media.devices import list_loopback_devices

OBS_CAMERA_NAME = "OBS Virtual Camera"


@dataclass(frozen=True)
class _Attempt:
    backend: str | None
    device: str | None
    note: str  # said when this attempt is the one that opens ("" for nothing)


def _registered_backends() -> list[str]:
    return sorted(getattr(pyvirtualcam.camera, "BACKENDS", {}))


def _linux_attempt(camera_name: str, sysfs_root: Path) -> _Attempt:
    loopbacks = list_loopback_devices(sysfs_root=sysfs_root)
    if not loopbacks:
        raise KdcamError(f"no v4l2loopback virtual camera found: run `kdcam setup` to create '{camera_name}'")
    named = next((d for d in loopbacks if d.name == camera_name), None)
    if named is not None:
        return _Attempt("v4l2loopback", named.path, "")
    first = loopbacks[0]
    return _Attempt(
        "v4l2loopback",
        first.path,
        f"kdcam: no virtual camera labelled '{camera_name}'; using the first loopback device {first.path} "
        f"('{first.name}')",
    )


def _plan(*, camera_name: str, backend: str | None, system: str, sysfs_root: Path) -> list[_Attempt]:
    if backend is not None and backend != "v4l2loopback":
        registered = _registered_backends()
        if backend not in registered:
            raise KdcamError(
                f"unknown virtual camera backend '{backend}': this system has "
                f"{', '.join(registered) or 'none'}; see `kdcam setup`"
            )
        if backend == "unitycapture":
            return [_Attempt(backend, camera_name, "")]
        return [_Attempt(backend, None, "")]
    if system == "Linux":
        return [_linux_attempt(camera_name, sysfs_root)]
    if backend is not None:  # v4l2loopback asked for off Linux
        raise KdcamError(f"the v4l2loopback backend exists on Linux only; this is {system}: see `kdcam setup`")
    if system == "Windows":
        return [
            _Attempt("unitycapture", camera_name, ""),
            _Attempt(
                "obs",
                None,
                f"kdcam: no Unity Capture device named '{camera_name}'; using {OBS_CAMERA_NAME} (its name is fixed)",
            ),
        ]
    if system == "Darwin":
        note = (
            ""
            if camera_name in (DEFAULT_CAMERA_NAME, OBS_CAMERA_NAME)
            else f"kdcam: on macOS the virtual camera is {OBS_CAMERA_NAME} (its name is fixed)"
        )
        return [_Attempt("obs", None, note)]
    return [_Attempt(None, None, "")]


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines)


def open_virtual_camera(
    *,
    width: int,
    height: int,
    fps: float,
    camera_name: str = DEFAULT_CAMERA_NAME,
    backend: str | None = None,
    system: str | None = None,
    sysfs_root: Path = Path("/sys"),
    log: Callable[[str], None] = print,
) -> pyvirtualcam.Camera:
    """Open the virtual camera for BGR frames of ``width`` x ``height`` (both even)."""
    if width % 2 or height % 2:
        raise ValueError(f"virtual camera frames must have even sides, got {width}x{height}")
    attempts = _plan(
        camera_name=camera_name, backend=backend, system=system or platform.system(), sysfs_root=sysfs_root
    )
    failures = []
    for attempt in attempts:
        try:
            cam = pyvirtualcam.Camera(
                width, height, fps, fmt=PixelFormat.BGR, device=attempt.device, backend=attempt.backend
            )
        except KeyError as err:
            # pyvirtualcam raises a bare KeyError for a backend name it does not know.
            raise KdcamError(
                f"unknown virtual camera backend {err}: this system has "
                f"{', '.join(_registered_backends()) or 'none'}; see `kdcam setup`"
            ) from None
        except RuntimeError as err:
            # An empty RuntimeError means no backend exists for this OS at all.
            failures.append(
                _one_line(err) or f"pyvirtualcam has no virtual camera backend for {system or platform.system()}"
            )
            continue
        if attempt.note:
            log(attempt.note)
        return cam
    raise KdcamError(
        f"cannot open a virtual camera ({' | '.join(failures)}): run `kdcam setup` for the steps on this OS"
    )
