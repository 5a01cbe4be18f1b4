"""The token file: where `kdcam panel` finds the running camera's panel (its address and token).

It lives beside the control socket (``panel_file_for(socket)``: ``<camera slug>.panel.json``
in the same private runtime folder), holds ``{"url": "http://127.0.0.1:PORT/", "token":
..., "pid": ...}``, and is written atomically with mode 0600 from its first byte: a
temporary name created with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600, then renamed into
place. The camera removes it when its panel stops; one left by a crashed camera (its pid
gone) is reported as "no panel running" and replaced by the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from vcam.panel.bounds import MAX_TOKEN_FILE
from vcam.panel.errors import PanelError, one_line

URL = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}/")
TOKEN = re.compile(r"[A-Za-z0-9_-]{22,200}")
NOT_RUNNING = "no kdcam panel is running for this camera (start one with `kdcam start`; `--no-panel` turns it off)"


@dataclass(frozen=True)
class PanelInfo:
    url: str  # http://127.0.0.1:PORT/
    token: str
    pid: int

    @property
    def login_url(self) -> str:
        """The address that signs a browser in (the token is exchanged for a cookie and leaves the address bar)."""
        return f"{self.url}?token={self.token}"


def panel_file_for(socket_path: os.PathLike | str) -> Path:
    """The token file beside the control socket ``socket_path`` (``x.sock`` -> ``x.panel.json``)."""
    path = Path(socket_path)
    return path.with_name(f"{path.stem}.panel.json")


def open_file_for(panel_file: os.PathLike | str) -> Path:
    """The 0600 page `open_panel` hands the browser (``x.panel.json`` -> ``x.panel-open.html``)."""
    path = Path(panel_file)
    return path.with_name(path.name.removesuffix(".json") + "-open.html")


def _write_private(path: Path, data: bytes) -> None:
    """``data`` to ``path`` atomically, mode 0600 from the start (never readable by others, never half-written)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temp, flags, 0o600)
    except OSError as err:
        raise PanelError(one_line(f"cannot write the panel's token file in {path.parent}: {err.strerror}")) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise PanelError(one_line(f"cannot write the panel's token file {path}: {err.strerror}")) from None


def write_token_file(path: os.PathLike | str, *, url: str, token: str, pid: int | None = None) -> Path:
    """Write the token file ``path`` ({"url", "token", "pid"}), atomically and with mode 0600."""
    path = Path(path)
    record = {"url": url, "token": token, "pid": os.getpid() if pid is None else pid}
    _write_private(path, (json.dumps(record) + "\n").encode())
    return path


def remove_token_file(path: os.PathLike | str, token: str) -> None:
    """Remove the token file ``path`` (and the page `open_panel` wrote) if it is still this session's."""
    path = Path(path)
    with contextlib.suppress(OSError, ValueError, PanelError):
        if _load(path).get("token") == token:
            path.unlink()
    with contextlib.suppress(OSError):
        open_file_for(path).unlink()


def _load(path: Path) -> dict:
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO put there never hangs `kdcam panel`
    except FileNotFoundError:
        raise PanelError(NOT_RUNNING) from None
    except OSError as err:
        raise PanelError(one_line(f"cannot read the panel's token file {path}: {err.strerror}")) from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        private = os.name != "posix" or (info.st_uid == os.getuid() and not info.st_mode & 0o077)
        if not stat.S_ISREG(info.st_mode) or not private:
            raise PanelError(f"{path} is not a private file of yours (owner, mode or kind); remove it")
        data = file.read(MAX_TOKEN_FILE + 1)
    if len(data) > MAX_TOKEN_FILE:
        raise PanelError(f"{path} is over {MAX_TOKEN_FILE} bytes: not a panel token file; remove it")
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PanelError(f"{path} is not a panel token file (not JSON); remove it") from None
    return record if isinstance(record, dict) else {}


def _alive(pid: int) -> bool:
    # psutil, not os.kill(pid, 0): on Windows that call ends the process
    return pid > 0 and psutil.pid_exists(pid)


def find_panel(path: os.PathLike | str) -> PanelInfo:
    """The running camera's panel, from its token file ``path``; PanelError (one line) when none runs."""
    path = Path(path)
    record = _load(path)
    url, token, pid = record.get("url"), record.get("token"), record.get("pid")
    if not (isinstance(url, str) and URL.fullmatch(url) and isinstance(token, str) and TOKEN.fullmatch(token)
            and isinstance(pid, int) and not isinstance(pid, bool)):
        raise PanelError(f"{path} is not a panel token file (fields url, token, pid); remove it")
    if not _alive(pid):
        raise PanelError(NOT_RUNNING)
    return PanelInfo(url=url, token=token, pid=pid)


def open_panel(path: os.PathLike | str, *, browser: Callable[[str], bool] | None = None) -> PanelInfo:
    """Open the running camera's panel in the default browser (for `kdcam panel`).

    The browser is handed a 0600 page beside the token file that forwards to the sign-in
    address, never the address itself: a command line (the browser's) is readable by every
    user of the machine, the page is not.
    """
    browser = browser or webbrowser.open  # looked up now: the default browser of this moment
    info = find_panel(path)
    page = open_file_for(path)
    html = (f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={info.login_url}">'
            f'<title>kdcam panel</title><p><a href="{info.login_url}">Open the kdcam panel</a></p>\n')
    _write_private(page, html.encode())
    if not browser(page.resolve().as_uri()):
        raise PanelError(f"no browser could be started; open the address `kdcam start` printed ({info.url})")
    return info
