"""The ``kdcam ctl`` socket server of a running ``kdcam start`` (``protocol`` has the rules).

Connections are served concurrently by one thread (non-blocking sockets); a model or
engine switch, or a save, runs on one worker thread, so ``status`` answers while a new
engine builds. The server is also the instance lock: entering it fails when another
instance already serves the same camera.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable

from engines.errors import KdcamError
from vcam.live.controls.protocol import (
    LISTEN_BACKLOG,
    MAX_CONNECTIONS,
    MAX_REQUEST,
    QUICK_COMMANDS,
    REQUEST_TIMEOUT_S,
    BadRequest,
    error_answer,
    error_text,
    parse_request,
)
from vcam.live.controls.sockets import answers, owned_socket, socket_path


class _Conn:
    """One client connection: what it sent so far, what is left to send back, and its deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()
        self.out = b""
        self.events = 0  # what the selector watches for it: 0, EVENT_READ or EVENT_WRITE
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S


class ControlServer(threading.Thread):
    """Answers ``kdcam ctl`` requests for one running camera until ``stop`` is set.

    This thread owns every socket: it accepts, reads, parses and writes without blocking,
    and answers quick commands itself; the slow ones (``QUICK_COMMANDS`` aside) go to one
    worker thread, whose answers come back through a wake-up socket pair."""

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
        self._selector: selectors.BaseSelector | None = None  # the sockets below are made in __enter__
        self._wake_recv: socket.socket | None = None
        self._wake_send: socket.socket | None = None
        self._reading: dict[_Conn, None] = {}  # in the order they connected: the first is the oldest
        self._answering: set[_Conn] = set()  # handled on the worker, or writing their answer
        self._jobs: queue.Queue = queue.Queue()  # (conn, request) for the worker; None ends it
        self._done: queue.Queue = queue.Queue()  # (conn, answer) back from the worker
        self._worker = threading.Thread(target=self._work, name="kdcam-control-worker", daemon=True)

    def __enter__(self) -> ControlServer:
        path = self.path
        if path.exists() or path.is_symlink():
            if not owned_socket(path):
                raise KdcamError(f"{path} belongs to another user; it is not used "
                                 "(remove it, or pass another --camera-name)")
            if answers(path):
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
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        self._sock, self._inode = sock, os.lstat(path).st_ino
        self._wake_recv, self._wake_send = socket.socketpair()
        for end in (self._wake_recv, self._wake_send):
            end.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_recv, selectors.EVENT_READ, self._finish)
        self._worker.start()
        self.start()
        return self

    # --- the server thread ----------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                for key, _ in self._selector.select(timeout=self._timeout()):
                    self._guarded(key.data)
                self._guarded(self._expire)
        finally:
            self._jobs.put(None)
            for conn in [*self._reading, *self._answering]:
                self._close(conn)
            self._selector.close()

    def _guarded(self, step) -> None:
        """Run one step (a callback or a connection's turn); nothing it raises stops the server."""
        conn = step if isinstance(step, _Conn) else None
        try:
            if conn is None:
                step()
            elif conn.events == selectors.EVENT_READ:
                self._read(conn)
            elif conn.events == selectors.EVENT_WRITE:
                self._write(conn)  # (events 0: closed earlier in this round, or with the worker)
        except Exception as err:  # a bug, not a bad request: this connection (if any) only
            message = self._note(err)
            if conn is not None:
                with contextlib.suppress(OSError):  # a last word, if it fits at once
                    conn.sock.send(json.dumps(error_answer(f"the request failed ({message})")).encode() + b"\n")
                self._close(conn)

    def _note(self, err: Exception) -> str:
        """``err`` in one line, also on the camera's log (never a traceback; a failing log is ignored)."""
        message = error_text(f"{type(err).__name__}: {err}")
        with contextlib.suppress(Exception):
            self._log(f"kdcam: a control request failed ({message})")
        return message

    def _timeout(self) -> float:
        """Until the oldest reader's deadline, and at most 0.2 s (the stop event is polled)."""
        if not self._reading:
            return 0.2
        return min(0.2, max(0.0, next(iter(self._reading)).deadline - time.monotonic()))

    def _watch(self, conn: _Conn, events: int) -> None:
        if conn.events and events:
            self._selector.modify(conn.sock, events, conn)
        elif events:
            self._selector.register(conn.sock, events, conn)
        elif conn.events:
            self._selector.unregister(conn.sock)
        conn.events = events

    def _close(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._watch(conn, 0)
        self._reading.pop(conn, None)
        self._answering.discard(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):  # then the others get their turn: a flood never starves them
            try:
                sock, _ = self._sock.accept()
            except OSError:  # none left to accept (or none can be: out of file descriptors)
                return
            sock.setblocking(False)
            conn = _Conn(sock)
            if len(self._reading) + len(self._answering) >= MAX_CONNECTIONS:
                if not self._reading:  # every slot is being answered: the new one waits for none
                    self._answer(conn, error_answer(f"too many connections (over {MAX_CONNECTIONS}); retry"))
                    continue
                self._answer(next(iter(self._reading)), error_answer(f"too many connections (over {MAX_CONNECTIONS}); "
                                                               "the oldest waiting one is closed; retry"))
            self._reading[conn] = None
            self._watch(conn, selectors.EVENT_READ)
            self._read(conn)  # a client that sent its request along with connecting is answered now

    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.data += chunk
        end = conn.data.find(b"\n")
        line = conn.data[:end] if end >= 0 else conn.data
        if len(line) + 1 > MAX_REQUEST:  # its newline (still to come, perhaps) counts
            self._answer(conn, error_answer(f"bad request (over {MAX_REQUEST} bytes); see `kdcam ctl --help`"))
        elif end >= 0 or not chunk:  # a whole line, or the client closed its side: that is the request
            self._serve(conn, bytes(line))

    def _serve(self, conn: _Conn, line: bytes) -> None:
        try:
            request = parse_request(line)
        except BadRequest as err:
            self._answer(conn, error_answer(f"bad request ({err}); see `kdcam ctl --help`"))
            return
        if request["cmd"] in QUICK_COMMANDS:
            self._answer(conn, self._call(request))
        else:
            self._reading.pop(conn, None)
            self._answering.add(conn)
            self._watch(conn, 0)
            self._jobs.put((conn, request))

    def _answer(self, conn: _Conn, answer: dict) -> None:
        """Send ``answer`` (one line) and close; what does not fit now is sent when the client reads."""
        try:
            data = json.dumps(answer).encode()
        except (TypeError, ValueError):
            data = json.dumps(error_answer("the answer could not be written as JSON")).encode()
        self._reading.pop(conn, None)
        self._answering.add(conn)
        conn.out, conn.deadline = data + b"\n", time.monotonic() + REQUEST_TIMEOUT_S
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        try:
            conn.out = conn.out[conn.sock.send(conn.out):]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # the client left
            conn.out = b""
        if conn.out:
            self._watch(conn, selectors.EVENT_WRITE)
        else:
            self._close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._reading and (oldest := next(iter(self._reading))).deadline <= now:
            self._answer(oldest, error_answer(f"bad request (not received whole within {REQUEST_TIMEOUT_S:g} s); "
                                        "see `kdcam ctl --help`"))
        for conn in [c for c in self._answering if c.out and c.deadline <= now]:
            self._close(conn)  # it never read its answer

    def _finish(self) -> None:
        """Send the answers the worker has made."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_recv.recv(4096):
                pass
        while True:
            try:
                conn, answer = self._done.get_nowait()
            except queue.Empty:
                return
            if conn in self._answering:
                self._answer(conn, answer)

    # --- both threads -----------------------------------------------------------------------

    def _call(self, request: dict) -> dict:
        try:
            answer = self._handle(request)
            return answer if isinstance(answer, dict) else error_answer("the request got no answer")
        except Exception as err:  # a bug in a handler: one line for the client and the log, no traceback
            return error_answer(f"the request failed ({self._note(err)})")

    def _work(self) -> None:
        """The worker thread: slow requests (a model or engine switch, a save), one at a time."""
        while (job := self._jobs.get()) is not None:
            conn, request = job
            self._done.put((conn, self._call(request)))
            with contextlib.suppress(OSError):
                self._wake_send.send(b"\0")

    def __exit__(self, *exc_info) -> None:
        self._stop_event.set()
        with contextlib.suppress(OSError):
            self._wake_send.send(b"\0")
        if self.is_alive():
            self.join(timeout=2.0)
        for sock in (self._sock, self._wake_recv, self._wake_send):
            if sock is not None:
                sock.close()
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self._inode:  # still ours: a newer instance may have replaced it
                self.path.unlink()
