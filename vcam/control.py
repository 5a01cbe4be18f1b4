"""``kdcam ctl``: control a running ``kdcam start`` over a local Unix socket.

Where: ``$XDG_RUNTIME_DIR/kdcam/<camera>.sock`` (else a private ``kdcam-<uid>`` folder in
the temp dir), one socket per virtual camera, so two instances never share one. The
folder is the user's own (mode 0700) and the socket is created with mode 0600; a socket
another user owns is never used, and one left by a crashed instance (nobody answers) is
replaced.

Protocol: the client sends one JSON object on one line, the server answers with one JSON
object on one line and closes the connection.

    {"cmd": "status"}                          -> {"ok": true, "status": {...}}
    {"cmd": "strength", "value": 0.6}          (a JSON number from 0 to 2; not text, not true/false)
    {"cmd": "toggle"}                          (the effect on <-> off)
    {"cmd": "split", "value": "on"}            (off, on, labels)
    {"cmd": "model", "value": "NAME"}          (an installed model's name; never a path)
    {"cmd": "engine", "value": "NAME"}         (an engine name)
    {"cmd": "save"}                            (write the live settings to the config file)
    anything wrong                             -> {"ok": false, "error": "one line"}

Types are strict and a request holds only ``cmd`` and ``value`` (an unknown key is refused,
so a typo never passes silently); ``value`` is absent (or null) for status, toggle and save,
and text is at most ``MAX_TEXT`` characters.

Bounds: a request is at most ``MAX_REQUEST`` bytes (its newline included), nested at most
``MAX_DEPTH`` brackets deep (checked before it is parsed), and must arrive whole within
``REQUEST_TIMEOUT_S`` of the connection (one deadline for the whole request, not per read);
its answer must be taken within the same time. At most ``MAX_CONNECTIONS`` connections are
served at once: past that, the oldest one still sending its request is answered
``too many connections`` and closed (a new one is, when all are already being answered),
so a flood of idle clients never locks out a fresh ``status``. Connections are served
concurrently by one thread (non-blocking sockets); a model or engine switch, or a save,
runs on one worker thread, so ``status`` answers while a new engine builds. Whatever is
wrong with a request (or the server) becomes a one-line error (at most ``MAX_ERROR``
characters) for that connection only, never a traceback; the server and the camera go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import selectors
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engines.errors import KdcamError

#: a request's bytes, its newline included
MAX_REQUEST = 4096
#: brackets a request may nest ({"cmd": ...} is 1); checked before json.loads can recurse
MAX_DEPTH = 16
#: characters in a text value (a split mode, a model or engine name)
MAX_TEXT = 200
#: the whole request must arrive within this many seconds of the connection (and the answer be taken as fast)
REQUEST_TIMEOUT_S = 2.0
#: connections served at once; past that the oldest still sending is answered "too many connections"
MAX_CONNECTIONS = 32
#: connections the kernel queues before the server accepts them
LISTEN_BACKLOG = 256
#: an error line is cut to this many characters
MAX_ERROR = 300
#: a switch of model or engine builds a new engine: the client waits that long
RESPONSE_TIMEOUT_S = 60.0

#: each command and what its "value" is: None (no value), "number" or "text"
COMMANDS: dict[str, str | None] = {"status": None, "strength": "number", "toggle": None, "split": "text",
                                   "model": "text", "engine": "text", "save": None}
#: commands that only touch the live settings (microseconds): answered on the server thread
QUICK_COMMANDS = frozenset({"status", "strength", "toggle", "split"})
REQUEST_KEYS = frozenset({"cmd", "value"})


class BadRequest(ValueError):
    """A request refused before it reaches the camera's settings (its message is one line)."""


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
            raise OSError(f"over {limit} bytes without a newline")
    return data.split(b"\n", 1)[0]


def _one_line(text: str) -> str:
    text = " ".join(str(text).split()) or "unknown error"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _error(text: str) -> dict:
    return {"ok": False, "error": _one_line(text)}


def _too_deep(text: str) -> bool:
    """Whether ``text`` nests brackets (outside JSON strings) deeper than ``MAX_DEPTH``."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _kind(value: object) -> str:
    """What a JSON value is, in words, for an error line: nothing, true, text '0.7', a list, ..."""
    if value is None or isinstance(value, bool):
        return {None: "nothing", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    names = {dict: "an object", list: "a list", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def check_request(request: object) -> dict:
    """``request`` itself when its shape and types are right, else ``BadRequest`` (one line)."""
    if not isinstance(request, dict):
        raise BadRequest(f"a request is a JSON object, not {_kind(request)}")
    for key in request:
        if key not in REQUEST_KEYS:
            raise BadRequest(f"unknown key {str(key)[:40]!r}; a request has only 'cmd' and 'value'")
    cmd, value = request.get("cmd"), request.get("value")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise BadRequest(f"unknown command {_kind(cmd)}; commands: {', '.join(COMMANDS)}")
    wanted = COMMANDS[cmd]
    if wanted is None and value is not None:
        raise BadRequest(f"{cmd} takes no value")
    if wanted == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BadRequest(f"{cmd} takes a JSON number, not {_kind(value)}")
    if wanted == "text" and not isinstance(value, str):
        raise BadRequest(f"{cmd} takes text, not {_kind(value)}")
    if wanted == "text" and len(value) > MAX_TEXT:
        raise BadRequest(f"{cmd} takes at most {MAX_TEXT} characters")
    return request


def parse_request(line: bytes) -> dict:
    """One request line's bytes as a checked request, else ``BadRequest`` (one line)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("not UTF-8 text") from None
    if not text.strip():
        raise BadRequest("an empty request")
    if _too_deep(text):
        raise BadRequest(f"nested deeper than {MAX_DEPTH} levels")
    try:
        request = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise BadRequest(f"not JSON: {err}") from None
    return check_request(request)


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
            if not _owned_socket(path):
                raise KdcamError(f"{path} belongs to another user; it is not used "
                                 "(remove it, or pass another --camera-name)")
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
                    conn.sock.send(json.dumps(_error(f"the request failed ({message})")).encode() + b"\n")
                self._close(conn)

    def _note(self, err: Exception) -> str:
        """``err`` in one line, also on the camera's log (never a traceback; a failing log is ignored)."""
        message = _one_line(f"{type(err).__name__}: {err}")
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
                    self._answer(conn, _error(f"too many connections (over {MAX_CONNECTIONS}); retry"))
                    continue
                self._answer(next(iter(self._reading)), _error(f"too many connections (over {MAX_CONNECTIONS}); "
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
            self._answer(conn, _error(f"bad request (over {MAX_REQUEST} bytes); see `kdcam ctl --help`"))
        elif end >= 0 or not chunk:  # a whole line, or the client closed its side: that is the request
            self._serve(conn, bytes(line))

    def _serve(self, conn: _Conn, line: bytes) -> None:
        try:
            request = parse_request(line)
        except BadRequest as err:
            self._answer(conn, _error(f"bad request ({err}); see `kdcam ctl --help`"))
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
            data = json.dumps(_error("the answer could not be written as JSON")).encode()
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
            self._answer(oldest, _error(f"bad request (not received whole within {REQUEST_TIMEOUT_S:g} s); "
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
            return answer if isinstance(answer, dict) else _error("the request got no answer")
        except Exception as err:  # a bug in a handler: one line for the client and the log, no traceback
            return _error(f"the request failed ({self._note(err)})")

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


def handle_request(request: dict, *, controls, save: Callable[[], str]) -> dict:
    """Apply one request to ``controls``; a bad one changes nothing and says why in one line."""
    try:
        check_request(request)
    except BadRequest as err:
        return _error(f"bad request ({err}); see `kdcam ctl --help`")
    value = request.get("value")
    actions: dict[str, Callable[[], str | None]] = {
        "status": lambda: None,
        "strength": lambda: controls.set_strength(value),
        "toggle": controls.toggle,
        "split": lambda: controls.set_split(value),
        "model": lambda: controls.set_model(value),
        "engine": lambda: controls.set_engine(value),
        "save": save,
    }
    try:
        message = actions[request["cmd"]]()
    except KdcamError as err:
        return _error(str(err))
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
        answer = json.loads(reply.decode("utf-8"))
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise KdcamError(f"kdcam start as '{camera_name}' sent a reply that is not a JSON object")
    return answer
