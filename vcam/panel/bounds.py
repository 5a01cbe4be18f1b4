"""Every bound of the control panel, in one place (each is checked before the input is read in full)."""

from __future__ import annotations

#: the only addresses the panel listens on (no option changes this)
LOOPBACK_V4 = "127.0.0.1"
LOOPBACK_V6 = "::1"
#: --panel-port's default: any free port (the address is printed, and written to the token file)
DEFAULT_PORT = 0

#: bytes of a request body (a control request is a few dozen)
MAX_BODY = 8 * 1024
#: bytes of a request line plus headers (h11's max incomplete event size)
MAX_HEADERS = 8 * 1024
#: bytes of a message a page sends over the WebSocket
MAX_WS_MESSAGE = 8 * 1024
#: HTTP connections at once (uvicorn's limit_concurrency); past that the oldest one still sending its headers is closed
MAX_HTTP_CONNECTIONS = 32
#: live-update WebSockets at once (past that the handshake is refused with 403)
MAX_WEBSOCKETS = 8
#: connections the kernel queues before the server accepts them
LISTEN_BACKLOG = 64
#: seconds a client has to send its request line and headers (from the connection, or the previous answer)
HEADER_TIMEOUT_S = 5.0
#: seconds a client has to send its request body
BODY_TIMEOUT_S = 5.0
#: seconds an idle keep-alive connection stays open (uvicorn's timeout_keep_alive)
KEEP_ALIVE_S = 5
#: seconds one message to a page may take to be written (a page that does not read is closed)
SEND_TIMEOUT_S = 5.0
#: control requests from pages in progress at once (a model switch takes seconds); past that: "busy"
MAX_ACTIONS = 4
#: seconds a control request may take (a model or engine build), as `kdcam ctl` waits
ACTION_TIMEOUT_S = 60.0
#: seconds the server has to stop (connections are closed, then the thread is joined)
STOP_TIMEOUT_S = 3.0
#: seconds the server has to start
START_TIMEOUT_S = 5.0
#: bytes of the token file `kdcam panel` reads
MAX_TOKEN_FILE = 4 * 1024

#: the preview: frames a second, widest width in pixels, JPEG quality
PREVIEW_FPS = 5.0
PREVIEW_MAX_WIDTH = 640
PREVIEW_JPEG_QUALITY = 70
#: seconds between two status reads while a page is open (a change shows on the page within a second)
STATUS_POLL_S = 0.25
#: seconds between two stats reads while a page is open
STATS_POLL_S = 1.0
