"""``kdcam ctl``'s side of the control socket: send one request, return the answer."""

from __future__ import annotations

import json
import socket

from engines.errors import KdcamError
from vcam.live.controls.protocol import MAX_REQUEST, RESPONSE_TIMEOUT_S, read_line
from vcam.live.controls.sockets import owned_socket, socket_path


def send_request(camera_name: str, request: dict) -> dict:
    """The running instance's answer to ``request``; a one-line KdcamError when none runs."""
    path = socket_path(camera_name)
    if not path.exists() or not owned_socket(path):
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
            reply = read_line(sock, 1 << 20)
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
