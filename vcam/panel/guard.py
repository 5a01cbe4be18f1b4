"""The panel's door, as ASGI middleware in front of every route (pages, API, preview, WebSocket).

A request passes only when all of these hold (and its headers are at most ``MAX_HEADERS``
bytes: h11 bounds only headers that arrive in pieces), else it gets one line of text (or, for a
WebSocket, a refused handshake) and never reaches a route:

- its Host header is exactly the panel's loopback address and port (``127.0.0.1:PORT``,
  ``localhost:PORT`` or ``[::1]:PORT``), so a DNS-rebinding page cannot reach it;
- an Origin header, if present, is the panel's own origin; a state-changing request (any
  method but GET and HEAD) and a WebSocket handshake must carry one;
- it carries the session token: in the address once (``/?token=...``, answered by a redirect
  to the same path without the query and an HttpOnly, SameSite=Strict cookie), then in the
  cookie. Tokens are compared in constant time.

Every answer gets headers that keep the page to itself (a strict Content-Security-Policy,
no framing, no referrer, no caching); no CORS header is ever sent.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from vcam.panel.bounds import MAX_BODY, MAX_HEADERS

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
SAFE_METHODS = frozenset({"GET", "HEAD"})
HOW_TO_OPEN = "open the address `kdcam start` printed, or run `kdcam panel`"


def cookie_name(port: int) -> str:
    """The session cookie's name: one per port, since cookies are not kept apart by port."""
    return f"kdcam_panel_{port}"


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


class Guard:
    """ASGI middleware: Host, Origin and token checks before ``app``; security headers after it."""

    def __init__(self, app, *, token: str, port: int) -> None:
        self.app = app
        self._token = token.encode()
        self._hosts = allowed_hosts(port)
        self._cookie = cookie_name(port)

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and secrets.compare_digest(candidate.encode(), self._token)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _refuse(scope, send, *refusal)
            return
        if scope["type"] == "http" and _query_tokens(scope):
            await self._exchange(scope, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope) -> tuple[int, str] | None:
        """Why ``scope`` is refused, as (HTTP status, one line), or None when it may pass."""
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
        if size + sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > MAX_HEADERS:
            return 431, f"refused: a request's headers are at most {MAX_HEADERS} bytes"
        headers = Headers(scope=scope)
        hosts = headers.getlist("host")
        if len(hosts) != 1 or hosts[0].lower() not in self._hosts:
            return 421, "refused: the Host header is not the panel's loopback address"
        origins = headers.getlist("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if len(origins) > 1 or (origins and origins[0].lower() != f"http://{hosts[0].lower()}"):
            return 403, "refused: a request from another origin"
        if changes and not origins:
            return 403, "refused: a request that changes something must carry the panel's Origin"
        tokens = _query_tokens(scope)
        if tokens:
            if scope["type"] != "http" or scope.get("method") != "GET" or len(tokens) != 1:
                return 403, f"refused: the token goes in one GET of the page; {HOW_TO_OPEN}"
            if not self._valid(tokens[0]):
                return 403, f"refused: a wrong token (a new one is made at each start); {HOW_TO_OPEN}"
            return None
        if not self._valid(cookie_parser(headers.get("cookie", "")).get(self._cookie)):
            return 401, f"refused: no valid session; {HOW_TO_OPEN}"
        return None

    async def _exchange(self, scope, send) -> None:
        """The token in the address, for a cookie and a redirect to the same path without the query."""
        path = "/" + scope.get("path", "/").lstrip("/")  # never "//host": no redirect leaves the panel
        cookie = f"{self._cookie}={self._token.decode()}; HttpOnly; SameSite=Strict; Path=/"
        headers = [(b"location", path.encode("utf-8", "replace")), (b"set-cookie", cookie.encode()),
                   (b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b"signed in\n"})


def _big_body(headers: Headers) -> bool:
    length = headers.get("content-length", "0")
    return "chunked" in headers.get("transfer-encoding", "").lower() or not length.isdigit() or int(length) > MAX_BODY


def _query_tokens(scope) -> list[str]:
    query = scope.get("query_string", b"")
    return parse_qs(query.decode("latin-1"), keep_blank_values=True).get("token", []) if query else []


async def _refuse(scope, send, status: int, line: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # uvicorn answers the handshake 403
        return
    body = (line + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS]
    if _big_body(Headers(scope=scope)):  # never read it: close (a small body is read past and the connection kept)
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
