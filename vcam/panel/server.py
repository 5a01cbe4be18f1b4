"""The panel's ASGI app: the page, the control API and the live WebSocket, behind ``Guard``.

Routes (every one needs the session, see ``guard``):

    GET  /              the page (index.html); /panel.css, /panel.js and /icon.svg beside it
    GET  /api/status    {"ok": true, "status": {...}}, as `kdcam ctl status` answers
    POST /api/request   one control request, exactly as `kdcam ctl` sends it
                        ({"cmd": ..., "value": ...}, application/json, at most MAX_BODY bytes
                        within BODY_TIMEOUT_S), answered by the camera's handler as it answers
    WS   /ws            the live feed: text messages {"type": "status"|"stats", ...} and binary
                        preview frames (b"B" + JPEG: the input, b"A" + JPEG: what the call gets);
                        a page sends {"preview": true|false} to start or stop its frames
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vcam.panel.bounds import BODY_TIMEOUT_S, MAX_BODY, MAX_WEBSOCKETS
from vcam.panel.guard import Guard
from vcam.panel.hub import Hub

STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/panel.css": ("panel.css", "text/css; charset=utf-8"),
          "/panel.js": ("panel.js", "text/javascript; charset=utf-8"),
          "/icon.svg": ("icon.svg", "image/svg+xml")}


class _Refused(Exception):
    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("vcam.panel") / "static"
    return {path: (folder.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}


def _refusal(status: int, line: str) -> Response:
    return PlainTextResponse(line + "\n", status_code=status, headers={"connection": "close"})


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise _Refused(413, f"refused: a request body is at most {MAX_BODY} bytes")
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY:
                raise _Refused(413, f"refused: a request body is at most {MAX_BODY} bytes")

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise _Refused(408, f"refused: the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None
    return bytes(body)


def create_app(*, hub: Hub, token: str, port: int) -> Guard:
    """The panel's app for a server on ``port`` whose session token is ``token``."""
    files = _static_files()
    sockets = {"open": 0}

    async def static(request: Request) -> Response:
        body, kind = files[request.url.path]
        return Response(body, media_type=kind)

    async def status(request: Request) -> Response:
        return JSONResponse(await hub.request({"cmd": "status"}))

    async def control(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _refusal(415, "refused: a control request is application/json")
        try:
            body = await _read_body(request)
        except _Refused as refused:
            return _refusal(refused.status, str(refused))
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            return JSONResponse({"ok": False, "error": f"bad request (not JSON: {str(err)[:100]})"})
        return JSONResponse(await hub.request(parsed))

    async def live(websocket: WebSocket) -> None:
        if sockets["open"] >= MAX_WEBSOCKETS:
            await websocket.close(code=1013)  # before accept: the handshake is refused (403)
            return
        sockets["open"] += 1
        try:
            await websocket.accept()
            await _serve_page(websocket, hub)
        finally:
            sockets["open"] -= 1

    routes = [Route(path, static, methods=["GET", "HEAD"]) for path in STATIC]
    routes += [Route("/api/status", status, methods=["GET"]), Route("/api/request", control, methods=["POST"]),
               WebSocketRoute("/ws", live)]
    return Guard(Starlette(routes=routes), token=token, port=port)


async def _serve_page(websocket: WebSocket, hub: Hub) -> None:
    wants = {"preview": True}
    await hub.join(preview=True)
    feed = asyncio.create_task(hub.feed(websocket.send_text, websocket.send_bytes, lambda: wants["preview"]))
    feed.add_done_callback(lambda task: task.cancelled() or task.exception())  # a closed page's error is seen
    try:
        while not feed.done():
            receive = asyncio.ensure_future(websocket.receive())
            await asyncio.wait({receive, feed}, return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                break
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                break
            preview = _preview_wish(message.get("text"))
            if preview is not None and preview != wants["preview"]:
                hub.set_preview(wants["preview"], preview)
                wants["preview"] = preview
    except WebSocketDisconnect:
        pass
    finally:
        feed.cancel()
        hub.leave(preview=wants["preview"])
        if not feed.cancelled() and feed.done() and feed.exception() is not None:
            await _close_quietly(websocket)  # a page that does not read its messages is closed


def _preview_wish(text: str | None) -> bool | None:
    try:
        message = json.loads(text) if text else None
    except ValueError:
        return None
    value = message.get("preview") if isinstance(message, dict) else None
    return value if isinstance(value, bool) else None


async def _close_quietly(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):  # the connection is going away either way
        await asyncio.wait_for(websocket.close(code=1008), 1.0)

