"""uvicorn's h11 protocol with two more bounds, so a slow or idle client closes its own connection.

uvicorn bounds the size of the headers (``h11_max_incomplete_event_size``) and the time an
idle keep-alive connection stays open, but not the time a client takes to send them: a
client that sends one byte a second would hold its connection for ever. Here:

- the request line and headers must arrive within ``HEADER_TIMEOUT_S`` of the connection
  (or of the previous answer, on a kept-alive connection), one deadline for all of them; a
  body that a route did not read must be in by then too (a route that reads one has its own
  deadline, ``BODY_TIMEOUT_S``);
- past ``MAX_HTTP_CONNECTIONS`` connections, a new connection closes the oldest one still
  sending its headers, so a flood of slow clients never locks out a good one.
"""

from __future__ import annotations

import time

from uvicorn.protocols.http.h11_impl import H11Protocol

from vcam.panel.bounds import HEADER_TIMEOUT_S, MAX_HTTP_CONNECTIONS


class GuardedH11Protocol(H11Protocol):
    _waiting_since: float | None = None  # when this connection began waiting for a request's headers
    _deadline = None
    _armed_cycle = None  # the request cycle in place when the deadline was set: a new one disarms it

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        http = [c for c in self.connections if isinstance(c, GuardedH11Protocol)]
        if len(http) > MAX_HTTP_CONNECTIONS:
            waiting = [c for c in http if c is not self and c._waiting_since is not None]
            if waiting:
                min(waiting, key=lambda c: c._waiting_since)._expire()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._armed_cycle:  # a new request's headers are in
            self._disarm()

    def handle_websocket_upgrade(self, event) -> None:
        self._disarm()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is not None and self.cycle.response_complete:
            self._arm()  # the next request's headers (or the rest of an unread body) within the deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_since = time.monotonic()
        self._armed_cycle = self.cycle
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_since = None

    def _expire(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()
