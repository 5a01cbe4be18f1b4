"""The panel's server in the camera's process: loopback sockets, uvicorn on its own thread, the token file.

``serve_panel(...)`` is the one entry point: a context manager that binds 127.0.0.1 (and
::1 on the same port where the machine has it; never any other address, and no option
changes that), starts uvicorn with its own event loop on a daemon thread, writes the token
file, and on the way out stops the server (connections closed, the thread joined, the
port released) and removes the token file. Nothing it does runs on the camera's threads.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import uvicorn

from vcam.panel.bounds import (
    DEFAULT_PORT,
    KEEP_ALIVE_S,
    LISTEN_BACKLOG,
    LOOPBACK_V4,
    LOOPBACK_V6,
    MAX_HEADERS,
    MAX_HTTP_CONNECTIONS,
    MAX_WEBSOCKETS,
    MAX_WS_MESSAGE,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
)
from vcam.panel.errors import PanelError, one_line
from vcam.panel.http_protocol import GuardedH11Protocol
from vcam.panel.hub import Hub
from vcam.panel.preview import FrameSource, PreviewEncoder
from vcam.panel.server import create_app
from vcam.panel.token_file import remove_token_file, write_token_file

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _listener(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":  # Windows: SO_REUSEADDR would let another program take the port over
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:  # a port in TIME_WAIT from the previous run is free again at once (never two listeners)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_loopback(port: int = DEFAULT_PORT) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1:``port`` and, where it exists, [::1] on the same port (0: a free one)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise PanelError(f"bad panel port {str(port)[:80]!r}: use a number from 1 to 65535, or 0 for a free one")
    for _ in range(8 if port == 0 else 1):
        try:
            v4 = _listener(socket.AF_INET, LOOPBACK_V4, port)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise PanelError(f"the panel port {port} on {LOOPBACK_V4} is in use: choose another --panel-port "
                                 "(0 picks a free one) or --no-panel") from None
            raise PanelError(one_line(f"cannot listen on {LOOPBACK_V4}:{port} for the panel: {err.strerror}")) from None
        try:
            return [v4, _listener(socket.AF_INET6, LOOPBACK_V6, v4.getsockname()[1])]
        except OSError as err:
            if err.errno == errno.EADDRINUSE and port == 0:
                v4.close()  # the free IPv4 port is taken on ::1: try another one
                continue
            return [v4]  # no IPv6 loopback here (or its port is another program's): IPv4 only
    raise PanelError("no free port is free on both 127.0.0.1 and ::1 for the panel; set --panel-port")


class _Collect(logging.Handler):
    """uvicorn's errors (a failure of the server, never a client's mistake), kept as one line each.

    Nothing is printed over the camera's status line; a bad client request (a warning) is its own business.
    """

    def __init__(self, lines: collections.deque) -> None:
        super().__init__(logging.ERROR)
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self._lines.append(one_line(text))


class Panel:
    """A running panel: ``url`` (no token), ``login_url`` (print it once), ``port``, ``addresses``."""

    def __init__(self, *, handle: Callable[[dict], dict], latest_frames: FrameSource,
                 stats: Callable[[], dict] | None = None, engines: Sequence[str] | Callable[[], Sequence[str]] = (),
                 port: int = DEFAULT_PORT, token_file: os.PathLike | str | None = None) -> None:
        self.token = secrets.token_urlsafe(32)  # 256 bits, new at each start
        self.encoder = PreviewEncoder(latest_frames)
        self.hub = Hub(handle=handle, encoder=self.encoder, stats=stats, engines=engines)
        self.errors: collections.deque[str] = collections.deque(maxlen=50)
        self.token_file = Path(token_file) if token_file is not None else None
        self._port_wanted = port
        self._sockets: list[socket.socket] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._handler = _Collect(self.errors)
        self._saved_loggers: list[tuple[logging.Logger, bool]] = []
        self.port = 0
        self.addresses: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK_V4}:{self.port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}?token={self.token}"

    def start(self) -> Panel:
        self._sockets = bind_loopback(self._port_wanted)
        try:
            self.addresses = [sock.getsockname()[:2] for sock in self._sockets]
            self.port = self.addresses[0][1]
            self._quiet_loggers()
            config = uvicorn.Config(
                create_app(hub=self.hub, token=self.token, port=self.port), http=GuardedH11Protocol,
                ws="websockets-sansio", loop="asyncio", lifespan="off", log_config=None, access_log=False,
                server_header=False, date_header=False, proxy_headers=False,
                limit_concurrency=MAX_HTTP_CONNECTIONS + MAX_WEBSOCKETS, backlog=LISTEN_BACKLOG,
                timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=1, h11_max_incomplete_event_size=MAX_HEADERS,
                ws_max_size=MAX_WS_MESSAGE, ws_max_queue=4, ws_ping_interval=20.0, ws_ping_timeout=20.0,
                ws_per_message_deflate=False)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._run, name="kdcam-panel", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not self._server.started:
                raise PanelError(f"the panel did not start ({self._failure or self._last_error()})")
            if self.token_file is not None:
                write_token_file(self.token_file, url=self.url, token=self.token)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=self._sockets)
        except BaseException as err:  # noqa: BLE001 - the camera goes on without its panel; the reason is kept
            self._failure = one_line(f"{type(err).__name__}: {err}")
            self.errors.append(self._failure)

    def _last_error(self) -> str:
        return self.errors[-1] if self.errors else f"no answer within {START_TIMEOUT_S:g} s"

    def _quiet_loggers(self) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._saved_loggers.append((logger, logger.propagate))
            logger.propagate = False
            logger.addHandler(self._handler)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the server (quickly: its connections are closed), release the port, remove the token file."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT_S)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.hub.close()
        if self.token_file is not None:
            remove_token_file(self.token_file, self.token)
        for logger, propagate in self._saved_loggers:
            logger.removeHandler(self._handler)
            logger.propagate = propagate
        self._saved_loggers = []


@contextlib.contextmanager
def serve_panel(*, handle: Callable[[dict], dict], latest_frames: FrameSource,
                stats: Callable[[], dict] | None = None, engines: Sequence[str] | Callable[[], Sequence[str]] = (),
                port: int = DEFAULT_PORT, token_file: os.PathLike | str | None = None) -> Iterator[Panel]:
    """Serve the control panel while the block runs; yields the running ``Panel`` (print ``login_url`` once)."""
    panel = Panel(handle=handle, latest_frames=latest_frames, stats=stats, engines=engines, port=port,
                  token_file=token_file).start()
    try:
        yield panel
    finally:
        panel.stop()
