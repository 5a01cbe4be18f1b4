"""The ``kdcam ctl`` protocol: its bounds, the checks of a request, and what a request does.

The server is ``socket_server``, the client ``client``, the socket's place ``sockets``.

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

import json
import socket
from collections.abc import Callable

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



def read_line(conn: socket.socket, limit: int) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise OSError(f"over {limit} bytes without a newline")
    return data.split(b"\n", 1)[0]


def error_text(text: str) -> str:
    text = " ".join(str(text).split()) or "unknown error"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def error_answer(text: str) -> dict:
    return {"ok": False, "error": error_text(text)}


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



def handle_request(request: dict, *, controls, save: Callable[[], str]) -> dict:
    """Apply one request to ``controls``; a bad one changes nothing and says why in one line."""
    try:
        check_request(request)
    except BadRequest as err:
        return error_answer(f"bad request ({err}); see `kdcam ctl --help`")
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
        return error_answer(str(err))
    answer = {"ok": True, "status": controls.status()}
    if isinstance(message, str):
        answer["message"] = message
    return answer
