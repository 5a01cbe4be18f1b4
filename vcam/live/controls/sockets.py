"""Where the ``kdcam ctl`` socket lives: a private runtime folder, one socket per camera."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import tempfile
from pathlib import Path

from engines.errors import KdcamError


def runtime_dir() -> Path:
    """The user's private folder for sockets (created, and checked to be the user's own)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    private = Path(tempfile.gettempdir()) / f"kdcam-{os.getuid()}"
    folder = Path(base) / "kdcam" if base and Path(base).is_dir() else private
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=False)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise KdcamError(f"{folder} is not a private folder of yours (owner, mode or a link); remove it and retry")
    return folder


def socket_path(camera_name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", camera_name.lower()).strip("-") or "camera"
    return runtime_dir() / f"{slug}.sock"


def owned_socket(path: Path) -> bool:
    """Whether ``path`` is a socket of this user's (a socket of another user's is never touched)."""
    info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        raise KdcamError(f"{path} is in the way and is not a socket; remove it")
    return info.st_uid == os.getuid()


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
