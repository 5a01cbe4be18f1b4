"""``kdcam ctl``: control a running ``kdcam start`` over a local Unix socket.

Where: ``$XDG_RUNTIME_DIR/kdcam/<camera>.sock`` (else a private ``kdcam-<uid>`` folder in
the temp dir), one socket per virtual camera, so two instances never share one. The
folder is the user's own (mode 0700) and the socket is created with mode 0600; a socket
another user owns is never used, and one left by a crashed instance (nobody answers) is
replaced.

Protocol: the client sends one JSON object on one line, the server answers with one JSON
object on one line and closes the connection.

    {"cmd": "status"}                          -> {"ok": true, "status": {...}}
    {"cmd": "strength", "value": 0.6}          -> {"ok": true, "status": {...}}
    {"cmd": "toggle"}                          (the effect on <-> off)
    {"cmd": "split", "value": "on"}            (off, on, labels)
    {"cmd": "model", "value": "NAME"}          (an installed model's name; never a path)
    {"cmd": "engine", "value": "NAME"}         (an engine name)
    {"cmd": "save"}                            (write the live settings to the config file)
    anything wrong                             -> {"ok": false, "error": "one line"}

A request is at most ``MAX_REQUEST`` bytes and must arrive within ``REQUEST_TIMEOUT_S``;
a malformed, oversized or slow request gets an error and its connection is closed; the
camera goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from engines.errors import KdcamError

MAX_REQUEST = 4096
REQUEST_TIMEOUT_S = 2.0
#: a switch of model or engine builds a new engine: the client waits that long
RESPONSE_TIMEOUT_S = 60.0


def runtime_dir() -> Path:
    """The user's private folder for sockets (created, and checked to be the user's own)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "kdcam" if base and Path(base).is_dir() else Path(tempfile.gettempdir()) / f"kdcam-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=False)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise KdcamError(f"{folder} is not a private folder of yours (owner, mode or a link); remove it and retry")
    return folder


def socket_path(camera_name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", camera_name.lower()).strip("-") or "camera"
    return runtime_dir() / f"{slug}.sock"


def _owned_socket(path: Path) -> bool:
    """Whether ``path`` is a socket of this user's (a socket of another user's is never touched)."""
    info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        raise KdcamError(f"{path} is in the way and is not a socket; remove it")
    return info.st_uid == os.getuid()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _read_line(conn: socket.socket, limit: int) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError(f"request over {limit} bytes")
    return data.split(b"\n", 1)[0]


class ControlServer(threading.Thread):
    """Answers ``kdcam ctl`` requests for one running camera until ``stop`` is set."""

    def __init__(self, *, camera_name: str, handle: Callable[[dict], dict], stop: threading.Event,
                 log: Callable[[str], None]) -> None:
        super().__init__(name="kdcam-control", daemon=True)
        self.path = socket_path(camera_name)
        self._camera = camera_name
        self._handle = handle
        self._stop_event = stop
        self._log = log
        self._sock: socket.socket | None = None
        self._inode = None

    def __enter__(self) -> ControlServer:
        path = self.path
        if path.exists() or path.is_symlink():
            if not _owned_socket(path):
                raise KdcamError(f"{path} belongs to another user; it is not used (remove it, or pass another --camera-name)")
            if _answers(path):
                raise KdcamError(f"a kdcam start is already running as '{self._camera}' ({path}); "
                                 "stop it, or start this one with another --camera-name")
            path.unlink()  # left by an instance that crashed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # the socket is born 0600: no moment where others could connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(umask)
        os.chmod(path, 0o600)
        sock.listen(4)
        sock.settimeout(0.2)
        self._sock, self._inode = sock, os.lstat(path).st_ino
        self.start()
        return self

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(REQUEST_TIMEOUT_S)
            request = json.loads(_read_line(conn, MAX_REQUEST).decode("utf-8"))
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            answer = self._handle(request)
        except (ValueError, UnicodeDecodeError, OSError) as err:  # malformed, oversized or too slow: this connection only
            answer = {"ok": False, "error": f"bad request ({err}); see `kdcam ctl --help`"}
        with contextlib.suppress(OSError):
            conn.settimeout(REQUEST_TIMEOUT_S)
            conn.sendall(json.dumps(answer).encode() + b"\n")

    def __exit__(self, *exc_info) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self._inode:  # still ours: a newer instance may have replaced it
                self.path.unlink()


def handle_request(request: dict, *, controls, save: Callable[[], str]) -> dict:
    """Apply one request to ``controls``; a bad one changes nothing and says why in one line."""
    cmd, value = request.get("cmd"), request.get("value")
    actions: dict[str, Callable[[], str | None]] = {
        "status": lambda: None,
        "strength": lambda: controls.set_strength(value),
        "toggle": controls.toggle,
        "split": lambda: controls.set_split(value),
        "model": lambda: controls.set_model(value),
        "engine": lambda: controls.set_engine(value),
        "save": save,
    }
    if cmd not in actions:
        return {"ok": False, "error": f"unknown command {cmd!r}; commands: {', '.join(actions)}"}
    try:
        message = actions[cmd]()
    except KdcamError as err:
        return {"ok": False, "error": str(err)}
    answer = {"ok": True, "status": controls.status()}
    if isinstance(message, str):
        answer["message"] = message
    return answer


def send_request(camera_name: str, request: dict) -> dict:
    """The running instance's answer to ``request``; a one-line KdcamError when none runs."""
    path = socket_path(camera_name)
    if not path.exists() or not _owned_socket(path):
        raise KdcamError(f"no kdcam start is running as '{camera_name}' (no control socket at {path}); "
                         "start one, or pass --camera NAME")
    data = json.dumps(request).encode() + b"\n"
    if len(data) > MAX_REQUEST:
        raise KdcamError(f"the request is over {MAX_REQUEST} bytes")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(RESPONSE_TIMEOUT_S)
        try:
            sock.connect(str(path))
            sock.sendall(data)
            reply = _read_line(sock, 1 << 20)
        except ConnectionRefusedError:
            raise KdcamError(f"no kdcam start is running as '{camera_name}' (its socket {path} is left from one that "
                             "ended); start one") from None
        except OSError as err:
            raise KdcamError(f"kdcam start as '{camera_name}' did not answer ({err})") from None
    try:
        return json.loads(reply.decode("utf-8"))
    except ValueError:
        raise KdcamError(f"kdcam start as '{camera_name}' sent a reply that is not JSON") from None
