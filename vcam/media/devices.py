"""Find capture devices and virtual (loopback) devices.

On Linux everything comes from sysfs: ``/sys/class/video4linux/videoN/name`` for every
video node, and ``/sys/devices/virtual/video4linux/*/name`` for the v4l2loopback ones.
``sysfs_root`` is a parameter so tests can hand in a fake tree. Elsewhere the OS does not
tell names without platform APIs, so camera indices 0-9 are probed with OpenCV.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

_VIDEO_NODE = re.compile(r"^video(\d+)$")


@dataclass(frozen=True)
class VideoDevice:
    index: int  # N of /dev/videoN (or the OpenCV index where there is no node)
    path: str  # /dev/videoN, or "" where there is none
    name: str  # the label the driver gives, "" if unknown
    virtual: bool  # a loopback device (a virtual camera), not a real capture device


def _read_name(node: Path) -> str:
    try:
        return (node / "name").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _nodes(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _VIDEO_NODE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def list_loopback_devices(*, sysfs_root: Path = Path("/sys")) -> list[VideoDevice]:
    """v4l2loopback devices with their labels, lowest number first."""
    return [
        VideoDevice(index, f"/dev/video{index}", _read_name(node), True)
        for index, node in _nodes(sysfs_root / "devices" / "virtual" / "video4linux")
    ]


def list_linux_video_devices(*, sysfs_root: Path = Path("/sys")) -> list[VideoDevice]:
    """Every video node; ``virtual`` marks the loopback ones."""
    virtual_dir = (sysfs_root / "devices" / "virtual" / "video4linux").resolve()
    devices = []
    for index, node in _nodes(sysfs_root / "class" / "video4linux"):
        # class/video4linux/videoN links into the device tree; virtual devices live under devices/virtual.
        virtual = node.resolve().parent == virtual_dir
        devices.append(VideoDevice(index, f"/dev/video{index}", _read_name(node), virtual))
    return devices


def probe_capture_indices(
    *, count: int = 10, opener: Callable[[int], cv2.VideoCapture] = cv2.VideoCapture
) -> list[VideoDevice]:
    """Camera indices 0..count-1 that OpenCV can open (names unknown)."""
    found = []
    for index in range(count):
        cap = opener(index)
        try:
            if cap.isOpened():
                found.append(VideoDevice(index, "", "", False))
        finally:
            cap.release()
    return found


def devices_report(
    *,
    system: str | None = None,
    sysfs_root: Path = Path("/sys"),
    probe: Callable[[], list[VideoDevice]] = probe_capture_indices,
) -> str:
    """The text of ``kdcam devices``."""
    system = system or platform.system()
    lines = []
    if system == "Linux":
        every = list_linux_video_devices(sysfs_root=sysfs_root)
        cameras = [d for d in every if not d.virtual]
        loopbacks = list_loopback_devices(sysfs_root=sysfs_root)
    else:
        cameras = probe()
        loopbacks = []
    lines.append("Capture devices (use the index with `kdcam start --device N`):")
    if cameras:
        lines += [
            f"  {d.index}: {d.name or '(name not reported)'}" + (f"  [{d.path}]" if d.path else "") for d in cameras
        ]
    else:
        lines.append("  none found")
    lines.append("Virtual cameras (v4l2loopback):" if system == "Linux" else "Virtual cameras:")
    if system != "Linux":
        lines.append(
            "  not listed on this OS: OBS Virtual Camera / Unity Capture appear in apps once installed (see "
            "`kdcam setup`)"
        )
    elif loopbacks:
        lines += [f"  {d.path}: {d.name or '(no label)'}" for d in loopbacks]
    else:
        lines.append("  none: run `kdcam setup` to create 'KD Sharpen Cam'")
    return "\n".join(lines)
