"""``kdcam setup``: the exact steps to get a virtual camera named "KD Sharpen Cam".

Linux gets a v4l2loopback device with that label (and ``--apply`` runs the steps as
root); Windows gets Unity Capture registered under that name, or OBS Virtual Camera;
macOS gets OBS's camera extension. The steps are data (``linux_plan``), so the printed
text and what ``--apply`` runs cannot drift apart.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engines.errors import KdcamError
from vcam.media.camera_name import DEFAULT_CAMERA_NAME, parse_camera_name

OS_NAMES = ("linux", "windows", "macos")
#: a high number keeps the virtual camera clear of real cameras (video0, video1, ...)
DEFAULT_VIDEO_NR = 10
MODPROBE_CONF = Path("etc/modprobe.d/kdcam.conf")
MODULES_LOAD_CONF = Path("etc/modules-load.d/kdcam.conf")

# package manager -> the install command for v4l2loopback (module via DKMS, plus utils)
_INSTALL = {
    "apt-get": ["apt-get", "install", "-y", "v4l2loopback-dkms", "v4l2loopback-utils"],
    "dnf": ["dnf", "install", "-y", "akmod-v4l2loopback", "v4l2loopback"],
    "pacman": ["pacman", "-S", "--needed", "--noconfirm", "v4l2loopback-dkms", "v4l2loopback-utils"],
}


#: /dev/videoN: V4L2 device numbers are minor numbers below 256
MAX_VIDEO_NR = 255


def check_options(*, camera_name: str, video_nr: int) -> str:
    """The camera name, checked as v4l2loopback takes it; a bad name or number is a one-line error."""
    if isinstance(video_nr, bool) or not 0 <= int(video_nr) <= MAX_VIDEO_NR:
        raise KdcamError(
            f"bad --video-nr {video_nr}: give the N of /dev/videoN, 0 to {MAX_VIDEO_NR} (default {DEFAULT_VIDEO_NR})"
        )
    return parse_camera_name(camera_name)


def current_os() -> str:
    return {"Windows": "windows", "Darwin": "macos"}.get(platform.system(), "linux")


def module_options(*, camera_name: str, video_nr: int) -> str:
    """The module options, quoted for a shell and for modprobe.d alike."""
    return f'devices=1 video_nr={video_nr} card_label="{camera_name}" exclusive_caps=1'


@dataclass(frozen=True)
class LinuxPlan:
    install: list[str] | None  # None: no known package manager here
    files: dict[Path, str]  # path relative to / -> content
    unload: list[str]
    load: list[str]


def linux_plan(
    *,
    camera_name: str = DEFAULT_CAMERA_NAME,
    video_nr: int = DEFAULT_VIDEO_NR,
    which: Callable[[str], str | None] = shutil.which,
) -> LinuxPlan:
    options = module_options(camera_name=camera_name, video_nr=video_nr)
    manager = next((m for m in _INSTALL if which(m)), None)
    return LinuxPlan(
        install=_INSTALL[manager] if manager else None,
        files={
            MODPROBE_CONF: f"options v4l2loopback {options}\n",
            MODULES_LOAD_CONF: "v4l2loopback\n",
        },
        unload=["modprobe", "-r", "v4l2loopback"],
        load=["modprobe", "v4l2loopback", *shlex.split(options)],
    )


def _linux_text(*, camera_name: str, video_nr: int, which: Callable[[str], str | None]) -> str:
    plan = linux_plan(camera_name=camera_name, video_nr=video_nr, which=which)
    install = shlex.join(plan.install) if plan.install else None
    lines = [
        f'Linux: a v4l2loopback device labelled "{camera_name}" at /dev/video{video_nr}',
        "",
        "1. Install the kernel module (built by DKMS) and its tools:",
        f"     sudo {install}"
        if install
        else "     Debian/Ubuntu: sudo apt-get install v4l2loopback-dkms v4l2loopback-utils",
    ]
    if install is None or not install.startswith("apt-get"):
        lines += [
            "     Debian/Ubuntu: sudo apt-get install v4l2loopback-dkms v4l2loopback-utils",
            "     Fedora (RPM Fusion): sudo dnf install akmod-v4l2loopback v4l2loopback",
            "     Arch: sudo pacman -S v4l2loopback-dkms v4l2loopback-utils",
        ]
    lines += [
        "   Secure Boot: an unsigned module will not load (modprobe says 'Key was rejected by service').",
        "   Check with `mokutil --sb-state`. If it is enabled, let DKMS sign the module: on Ubuntu/Debian the",
        "   install asks for a one-time password and creates a Machine Owner Key (MOK); otherwise enroll it with",
        "     sudo mokutil --import /var/lib/dkms/mok.pub",
        "   then reboot and choose 'Enroll MOK' in the blue MOK manager screen, entering that password.",
        "",
        "2. Load it now (unload first if it is already loaded with other options; close apps using it):",
        "     sudo modprobe -r v4l2loopback",
        f"     sudo {shlex.join(plan.load)}",
        "",
        "3. Make it persistent across reboots:",
        f"     /{MODPROBE_CONF}:",
        f"       {plan.files[MODPROBE_CONF].strip()}",
        f"     /{MODULES_LOAD_CONF}:",
        f"       {plan.files[MODULES_LOAD_CONF].strip()}",
        "   e.g.",
        f"     echo {shlex.quote(plan.files[MODPROBE_CONF].strip())} | sudo tee /{MODPROBE_CONF}",
        f"     echo {shlex.quote(plan.files[MODULES_LOAD_CONF].strip())} | sudo tee /{MODULES_LOAD_CONF}",
        "",
        f"4. Check: `kdcam devices` lists /dev/video{video_nr}: {camera_name}. exclusive_caps=1 makes Chrome,",
        "   Zoom and Teams see it as a camera while `kdcam start` is sending.",
        "",
        "Or run all of this with: sudo kdcam setup --apply",
    ]
    return "\n".join(lines)


def _windows_text(*, camera_name: str) -> str:
    return "\n".join(
        [
            f'Windows: Unity Capture registered as "{camera_name}" (or OBS Virtual Camera)',
            "",
            "Option A - Unity Capture, with your own camera name:",
            "  1. Download https://github.com/schellingb/UnityCapture (Code > Download ZIP) and unpack it",
            "     where it can stay (the registration points at these files).",
            "  2. In an Administrator command prompt, inside its Install folder:",
            f'       regsvr32 "UnityCaptureFilter64.dll" "/i:UnityCaptureName={camera_name}"',
            f'       regsvr32 "UnityCaptureFilter32.dll" "/i:UnityCaptureName={camera_name}"',
            "     (the second is for 32-bit apps; to remove it later: regsvr32 /u on both files)",
            f'  3. kdcam start  (it opens Unity Capture device "{camera_name}")',
            "",
            'Option B - OBS Virtual Camera (its name is fixed: "OBS Virtual Camera"):',
            "  1. Install OBS Studio 26 or newer from https://obsproject.com",
            "  2. Leave OBS itself closed (only one program can feed its virtual camera).",
            "  3. kdcam start  (it falls back to OBS Virtual Camera when Unity Capture is missing)",
        ]
    )


def _macos_text(*, camera_name: str) -> str:
    return "\n".join(
        [
            'macOS: the OBS camera extension (its name is fixed: "OBS Virtual Camera")',
            "",
            f'  macOS has no way to add a camera named "{camera_name}" without a signed system extension;',
            "  OBS ships one.",
            "  1. Install OBS Studio 30 or newer from https://obsproject.com (macOS 13 or newer).",
            "  2. Start OBS, click 'Start Virtual Camera' once, and allow the system extension when asked",
            "     (System Settings > Privacy & Security, or General > Login Items & Extensions > Camera Extensions).",
            "  3. Click 'Stop Virtual Camera' and quit OBS.",
            '  4. kdcam start  (Zoom/Teams/Meet: choose "OBS Virtual Camera"; restart them if it is not listed)',
        ]
    )


def setup_text(
    *,
    os_name: str,
    camera_name: str = DEFAULT_CAMERA_NAME,
    video_nr: int = DEFAULT_VIDEO_NR,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    camera_name = check_options(camera_name=camera_name, video_nr=video_nr)
    if os_name == "linux":
        return _linux_text(camera_name=camera_name, video_nr=video_nr, which=which)
    if os_name == "windows":
        return _windows_text(camera_name=camera_name)
    if os_name == "macos":
        return _macos_text(camera_name=camera_name)
    raise KdcamError(f"unknown --os '{os_name}': use one of {', '.join(OS_NAMES)}")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apply_linux_setup(
    *,
    camera_name: str = DEFAULT_CAMERA_NAME,
    video_nr: int = DEFAULT_VIDEO_NR,
    root: Path = Path("/"),
    is_root: Callable[[], bool] = _is_root,
    run: Callable[[list[str]], None] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    sysfs_root: Path = Path("/sys"),
    log: Callable[[str], None] = print,
) -> None:
    """Run the Linux steps: install, write the two config files, (re)load the module."""
    camera_name = check_options(camera_name=camera_name, video_nr=video_nr)
    if not is_root():
        raise KdcamError(
            "kdcam setup --apply must run as root: sudo kdcam setup --apply (or run the printed steps yourself)"
        )
    run = run or _run_checked
    plan = linux_plan(camera_name=camera_name, video_nr=video_nr, which=which)
    if plan.install is None:
        raise KdcamError(
            "no apt-get, dnf or pacman here: install v4l2loopback with your package manager, then rerun kdcam "
            "setup --apply"
        )
    run(plan.install)
    for relative, content in plan.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        log(f"kdcam: wrote {path}")
    if (sysfs_root / "module" / "v4l2loopback").exists():
        run(plan.unload)  # options only apply on a fresh load
    run(plan.load)
    log(f"kdcam: /dev/video{video_nr} is now '{camera_name}'; check with `kdcam devices`")


def _run_checked(command: list[str]) -> None:
    print(f"kdcam: running: {shlex.join(command)}", flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        hint = " (Secure Boot? see `kdcam setup`)" if command[0] == "modprobe" else ""
        raise KdcamError(f"`{shlex.join(command)}` failed with exit code {result.returncode}{hint}; fix that and rerun")
