"""A page that only watches: what `kdcam bench --pipeline --panel page` keeps open to measure
what an open panel costs the camera. It signs in as a browser does (the token for the
cookie), opens the live WebSocket with the panel's own Origin, asks for the preview and
reads every message until it is closed."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

from vcam.panel.errors import PanelError
from vcam.panel.guard import cookie_name


class WatchingPage(threading.Thread):
    """Reads the panel's live updates and preview frames on its own thread until ``close``."""

    def __init__(self, login_url: str) -> None:
        super().__init__(name="kdcam-bench-page", daemon=True)
        parts = urlsplit(login_url)
        self._host, self._port, self._query = parts.hostname, parts.port, parts.query
        self._done = threading.Event()
        self.frames = 0  # preview frames received
        self.messages = 0  # status and stats updates received
        self.error: str | None = None

    def _cookie(self) -> str:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=5)
        try:
            conn.request("GET", f"/?{self._query}")
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        name = cookie_name(self._port)
        for header in response.headers.get_all("set-cookie") or []:
            if header.startswith(f"{name}="):
                return header.split(";", 1)[0]
        raise PanelError(f"the panel at port {self._port} gave no session cookie (HTTP {response.status})")

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            origin = f"http://{self._host}:{self._port}"
            with connect(f"ws://{self._host}:{self._port}/ws", origin=origin,
                         additional_headers={"Cookie": self._cookie()}, open_timeout=5) as socket:
                socket.send('{"preview": true}')
                while not self._done.is_set():
                    try:
                        message = socket.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    if isinstance(message, bytes):
                        self.frames += 1
                    else:
                        self.messages += 1
        except Exception as err:  # noqa: BLE001 - reported with the bench result, in one line
            self.error = " ".join(f"{type(err).__name__}: {err}".split())

    def close(self) -> None:
        self._done.set()
        self.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    """``python -m vcam.panel.page_client LOGIN_URL``: watch until standard input closes, then
    print the frames and messages received (one JSON line). A process of its own, so that its
    CPU is not counted as the camera's."""
    import json
    import sys

    page = WatchingPage((argv or sys.argv[1:])[0])
    page.start()
    sys.stdin.read()
    page.close()
    print(json.dumps({"frames": page.frames, "messages": page.messages, "error": page.error}), flush=True)


if __name__ == "__main__":
    main()
