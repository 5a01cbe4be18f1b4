"""What the open pages see and do: one reader of status, stats and preview, shared by all pages.

While no page is open nothing runs here: no status read, no stats read, no frame looked
at. The first page starts three small loops on the server's event loop (status every
``STATUS_POLL_S``, stats every ``STATS_POLL_S``, the preview at ``PREVIEW_FPS`` while a
page shows it) and the last one to leave stops them; every page gets the same encoded
frames, so two pages cost what one does. The camera's callables run on the hub's own
threads, never on the event loop, so a slow one delays only its own loop.

Every action a page takes is one ``handle(request)`` call, the one ``kdcam ctl`` and the
keys go through: the request is passed on as the page sent it, and the answer comes back
as the handler gave it (a refused value is the handler's own one-line error).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from vcam.panel.bounds import ACTION_TIMEOUT_S, MAX_ACTIONS, PREVIEW_FPS, SEND_TIMEOUT_S, STATS_POLL_S, STATUS_POLL_S
from vcam.panel.errors import one_line
from vcam.panel.preview import PreviewEncoder

Handle = Callable[[dict], dict]
#: what a page shows of ``stats()``: numbers for the chart, text for the lines under it
STAT_NUMBERS = ("sent_fps", "latency_p95_ms", "cpu_cores")
STAT_TEXTS = ("engine_line", "machine_line")
BEFORE, AFTER = b"B", b"A"  # the first byte of a preview message


def clean(value: object, depth: int = 0) -> object:
    """``value`` as plain JSON: a non-finite number becomes null, anything else unknown its text."""
    if depth > 16:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(key): clean(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item, depth + 1) for item in value]
    return str(value)


def to_json(value: object) -> str:
    return json.dumps(clean(value), allow_nan=False, separators=(",", ":"))


class Hub:
    def __init__(self, *, handle: Handle, encoder: PreviewEncoder, stats: Callable[[], dict] | None = None,
                 engines: Sequence[str] | Callable[[], Sequence[str]] = ()) -> None:
        self._handle = handle
        self._stats = stats
        self._engines = engines
        self.encoder = encoder
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="kdcam-panel-read")
        self._painter = ThreadPoolExecutor(1, thread_name_prefix="kdcam-panel-encode")
        self._actor = ThreadPoolExecutor(MAX_ACTIONS, thread_name_prefix="kdcam-panel-action")
        self._actions = 0
        self.pages = 0
        self.previewing = 0
        self.status_reads = 0  # status reads for pages (not counting the pages' own actions)
        self._loops: list[asyncio.Task] = []
        self._changed: asyncio.Condition | None = None
        self._want_preview: asyncio.Event | None = None
        self._version = 0
        self._status: tuple[int, str] = (0, "")
        self._stats_msg: tuple[int, str] = (0, "")
        self._frames: tuple[int, bytes | None, bytes | None] = (0, None, None)

    # -- the camera's callables, on the hub's threads ------------------------------------

    def _engine_names(self) -> list[str]:
        engines = self._engines() if callable(self._engines) else self._engines
        return [str(name) for name in engines]

    def _status_message(self, answer: dict) -> str | None:
        status = answer.get("status") if isinstance(answer, dict) and answer.get("ok") else None
        if not isinstance(status, dict):
            return None
        status = dict(status)
        status.setdefault("engines", self._engine_names())
        return to_json({"type": "status", "status": status})

    def _read_status(self) -> str | None:
        self.status_reads += 1
        return self._status_message(self._call({"cmd": "status"}))

    def _read_stats(self) -> str:
        try:
            raw = self._stats() if self._stats is not None else {}
        except Exception as err:  # noqa: BLE001 - a failing stats source costs the chart a point, never the page
            raw = {"error": one_line(err)}
        raw = raw if isinstance(raw, dict) else {}
        stats = {key: raw.get(key) for key in (*STAT_NUMBERS, *STAT_TEXTS) if key in raw}
        return to_json({"type": "stats", "t": time.time(), "stats": stats})

    def _call(self, request: object) -> dict:
        try:
            answer = self._handle(request)  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - the handler's bug is one line for this page, never the server's
            return {"ok": False, "error": one_line(f"the request failed ({type(err).__name__}: {err})")}
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            return {"ok": False, "error": "the camera gave no answer"}
        return answer

    # -- actions ---------------------------------------------------------------------------

    async def request(self, request: object) -> dict:
        """``handle(request)`` on an action thread; its answer as given (cleaned to plain JSON)."""
        if self._actions >= MAX_ACTIONS:
            return {"ok": False, "error": f"busy: {MAX_ACTIONS} requests are in progress; try again when one ends"}
        self._actions += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(self._actor, self._call, request)
            answer = await asyncio.wait_for(future, ACTION_TIMEOUT_S)
        except asyncio.TimeoutError:
            return {"ok": False, "error": f"no answer within {ACTION_TIMEOUT_S:.0f} s; check `kdcam ctl status`"}
        finally:
            self._actions -= 1
        message = self._status_message(answer)
        if message is not None and self._changed is not None:
            await self._publish_status(message)
        return clean(answer)  # type: ignore[return-value]

    # -- pages -----------------------------------------------------------------------------

    async def join(self, *, preview: bool) -> None:
        if self._changed is None:
            self._changed, self._want_preview = asyncio.Condition(), asyncio.Event()
        self.pages += 1
        self.set_preview(False, preview)
        if not self._loops:
            self._loops = [asyncio.create_task(loop()) for loop in (self._status_loop, self._stats_loop,
                                                                     self._preview_loop)]

    def leave(self, *, preview: bool) -> None:
        self.set_preview(preview, False)
        self.pages -= 1
        if self.pages == 0:
            for task in self._loops:
                task.cancel()
            self._loops = []
            self._status = (self._status[0], "")  # the next page gets the status afresh

    def set_preview(self, was: bool, now: bool) -> None:
        self.previewing += int(now) - int(was)
        if self._want_preview is not None:
            (self._want_preview.set if self.previewing > 0 else self._want_preview.clear)()

    async def _publish(self, kind: str, *value) -> None:
        """Set ``self.<kind>`` to (a new version, *value) and wake every page's feed."""
        async with self._changed:
            self._version += 1
            setattr(self, kind, (self._version, *value))
            self._changed.notify_all()

    async def _publish_status(self, message: str) -> None:
        if message != self._status[1]:
            await self._publish("_status", message)

    async def _run(self, pool: ThreadPoolExecutor, work: Callable):
        return await asyncio.get_running_loop().run_in_executor(pool, work)

    async def _status_loop(self) -> None:
        while True:
            message = await self._run(self._reader, self._read_status)
            if message is not None:
                await self._publish_status(message)
            await asyncio.sleep(STATUS_POLL_S)

    async def _stats_loop(self) -> None:
        while True:
            message = await self._run(self._reader, self._read_stats)
            await self._publish("_stats_msg", message)
            await asyncio.sleep(STATS_POLL_S)

    async def _preview_loop(self) -> None:
        while True:
            await self._want_preview.wait()
            started = time.monotonic()
            before, after = await self._run(self._painter, self.encoder.encode)
            await self._publish("_frames", before, after)
            await asyncio.sleep(max(0.0, 1.0 / PREVIEW_FPS - (time.monotonic() - started)))

    async def feed(self, send_text, send_bytes, wants_preview: Callable[[], bool]) -> None:
        """Send one page every new status, stats and (while it wants them) preview frames, newest only."""
        seen = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._version > seen)
                version = self._version
            status_at, status = self._status
            stats_at, stats = self._stats_msg
            frames_at, before, after = self._frames
            if status and status_at > seen:
                await asyncio.wait_for(send_text(status), SEND_TIMEOUT_S)
            if stats and stats_at > seen:
                await asyncio.wait_for(send_text(stats), SEND_TIMEOUT_S)
            if frames_at > seen and wants_preview():
                for tag, data in ((BEFORE, before), (AFTER, after)):
                    if data is not None:
                        await asyncio.wait_for(send_bytes(tag + data), SEND_TIMEOUT_S)
            seen = version

    def close(self) -> None:
        for pool in (self._reader, self._painter, self._actor):
            pool.shutdown(wait=False, cancel_futures=True)
