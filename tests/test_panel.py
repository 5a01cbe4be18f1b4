"""The control panel's server (vcam/panel/): endpoints, security, bounds, the token file, the preview.

Each test runs the real server (uvicorn on its thread, on loopback) in-process, with a fake
``handle`` that answers as `kdcam ctl`'s does and records what it got, and a fake frame source.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time

import cv2
import httpx
import numpy as np
import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from vcam.panel import PanelError, find_panel, open_panel, panel_file_for, serve_panel, write_token_file
from vcam.panel.bounds import MAX_BODY, MAX_HTTP_CONNECTIONS, MAX_WEBSOCKETS, PREVIEW_MAX_WIDTH
from vcam.panel.demo import FakeCamera, FakeFrames
from vcam.panel.guard import cookie_name
from vcam.panel.token_file import NOT_RUNNING, open_file_for


class CountingFrames:
    """Two prepared 720p frames that alternate (a moving picture at no cost); counts its calls."""

    def __init__(self) -> None:
        before, after = FakeFrames()()
        self._pairs = [(before, after), (after, before)]
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self._pairs[self.calls % 2]


def stats():
    return {"sent_fps": 29.9, "latency_p95_ms": float("nan"), "cpu_cores": 0.8, "engine_line": "engine fake",
            "machine_line": "test machine", "ignored": object()}


@pytest.fixture
def camera():
    return FakeCamera()


@pytest.fixture
def frames():
    return CountingFrames()


@pytest.fixture
def panel(camera, frames, tmp_path):
    with serve_panel(handle=camera.handle, latest_frames=frames, stats=stats, engines=["onnxruntime", "torch"],
                     token_file=tmp_path / "cam.panel.json") as running:
        yield running
    assert not running.errors, list(running.errors)


def origin(panel) -> str:
    return panel.url.rstrip("/")


def cookies(panel, token: str | None = None) -> dict:
    return {"cookie": f"{cookie_name(panel.port)}={token or panel.token}"}


@pytest.fixture
def client(panel):
    """A client signed in the way a browser is: through the printed address."""
    with httpx.Client(timeout=5) as session:
        assert session.get(panel.login_url).status_code == 303
        yield session


def post(client, panel, request, **headers):
    body = request if isinstance(request, (bytes, str)) else json.dumps(request)
    headers = {"origin": origin(panel), "content-type": "application/json", **headers}
    return client.post(panel.url + "api/request", content=body, headers=headers)


def ws(panel, *, token=None, origin_header="own", **kwargs):
    headers = cookies(panel, token) if token != "" else {}
    own = origin(panel) if origin_header == "own" else origin_header
    return ws_connect(f"ws://127.0.0.1:{panel.port}/ws", origin=own, additional_headers=headers, open_timeout=5,
                      max_size=2**22, max_queue=None, **kwargs)


@contextlib.contextmanager
def ws_later():
    """Pages opened inside the block (by calling what it yields with a panel), closed at its end."""
    with contextlib.ExitStack() as stack:
        yield lambda panel: stack.enter_context(ws(panel))


def receive_until(connection, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = connection.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if predicate(message):
            return message
    return None


def status_message(key, value):
    def match(message):
        if not isinstance(message, str):
            return False
        data = json.loads(message)
        return data["type"] == "status" and data["status"].get(key) == value
    return match


# -- the door: token, cookie, Host, Origin ---------------------------------------------------


def test_no_token_is_refused(panel, camera):
    for path in ("", "panel.js", "panel.css", "api/status"):
        answer = httpx.get(panel.url + path)
        assert answer.status_code == 401, path
        assert answer.text.count("\n") == 1 and "kdcam panel" in answer.text
    answer = httpx.post(panel.url + "api/request", json={"cmd": "toggle"}, headers={"origin": origin(panel)})
    assert answer.status_code == 401
    assert camera.requests == []


def test_wrong_token_is_refused(panel, camera):
    answer = httpx.get(panel.url + "?token=" + "x" * 43)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    assert "wrong token" in answer.text
    assert httpx.get(panel.url, headers=cookies(panel, "y" * 43)).status_code == 401
    assert httpx.get(panel.url, headers=cookies(panel, panel.token[:-1])).status_code == 401
    answer = httpx.post(panel.url + f"api/request?token={panel.token}", json={"cmd": "toggle"},
                        headers={"origin": origin(panel)})
    assert answer.status_code == 403  # the token is exchanged by one GET of a page, never used for an action
    assert camera.requests == []


def test_cookie_exchange_removes_the_token_from_the_address(panel):
    answer = httpx.get(panel.login_url)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(panel.port)}={panel.token};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert panel.token not in answer.headers["location"]
    assert answer.headers["referrer-policy"] == "no-referrer"
    page = httpx.get(panel.url, headers=cookies(panel))
    assert page.status_code == 200 and "<title>kdcam panel</title>" in page.text
    assert httpx.get(panel.url + f"panel.js?token={panel.token}").headers["location"] == "/panel.js"
    assert httpx.get(panel.url + f"/evil.example/?token={panel.token}").headers["location"] == "/evil.example/"
    with httpx.Client() as browser:  # the way a browser does it: one hop, then the cookie
        page = browser.get(panel.login_url, follow_redirects=True)
        assert page.status_code == 200 and str(page.url) == panel.url


def test_a_wrong_host_is_refused(panel, client, camera):
    for host in ("evil.example", f"evil.example:{panel.port}", f"127.0.0.1:{panel.port + 1}", "127.0.0.1",
                 f"127.0.0.2:{panel.port}", f"0.0.0.0:{panel.port}", f"localhost.evil.example:{panel.port}"):
        answer = client.get(panel.url, headers={"host": host})
        assert answer.status_code == 421, host
        answer = post(client, panel, {"cmd": "toggle"}, host=host, origin=f"http://{host}")
        assert answer.status_code == 421, host
    assert camera.requests == []
    for host in (f"127.0.0.1:{panel.port}", f"localhost:{panel.port}", f"LOCALHOST:{panel.port}"):
        assert client.get(panel.url, headers={"host": host}).status_code == 200, host
    if ("::1", panel.port) in panel.addresses:
        answer = httpx.get(f"http://[::1]:{panel.port}/", headers=cookies(panel))
        assert answer.status_code == 200


def test_a_cross_origin_post_is_refused(panel, client, camera):
    for bad in ("http://evil.example", f"http://localhost:{panel.port}", f"http://127.0.0.1:{panel.port + 1}",
                f"https://127.0.0.1:{panel.port}", "null"):
        answer = post(client, panel, {"cmd": "toggle"}, origin=bad)
        assert answer.status_code == 403, bad
        assert "another origin" in answer.text
    answer = client.post(panel.url + "api/request", json={"cmd": "toggle"})  # no Origin at all
    assert answer.status_code == 403 and "Origin" in answer.text
    assert camera.requests == []
    assert post(client, panel, {"cmd": "toggle"}).json()["ok"] is True
    assert camera.requests == [{"cmd": "toggle"}]


def test_a_cross_origin_websocket_is_refused(panel):
    for bad in ("http://evil.example", f"http://localhost:{panel.port}", None):
        with pytest.raises(InvalidStatus) as refused:
            ws(panel, origin_header=bad)
        assert refused.value.response.status_code == 403, bad
    for token in ("", "z" * 43):  # no session, a wrong one
        with pytest.raises(InvalidStatus) as refused:
            ws(panel, token=token)
        assert refused.value.response.status_code == 403
    with ws(panel) as good:
        assert receive_until(good, status_message("effect", "on"), 2.0)


def test_no_cors_headers(panel, client):
    answers = [client.get(panel.url, headers={"origin": origin(panel)}),
               client.options(panel.url + "api/request", headers={
                   "origin": "http://evil.example", "access-control-request-method": "POST"}),
               client.options(panel.url + "api/request", headers={
                   "origin": origin(panel), "access-control-request-method": "POST"}),
               post(client, panel, {"cmd": "status"})]
    for answer in answers:
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    assert answers[1].status_code == 403
    page = answers[0]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_it_listens_on_loopback_only(panel):
    assert panel.addresses and {host for host, _ in panel.addresses} <= {"127.0.0.1", "::1"}
    assert {port for _, port in panel.addresses} == {panel.port}
    listening = [c for c in psutil.Process().net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == panel.port]
    assert listening and {c.laddr.ip for c in listening} <= {"127.0.0.1", "::1"}
    others = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
              if a.family == socket.AF_INET and not a.address.startswith("127.")]
    for address in others:  # this machine's other addresses: nothing answers there
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex((address, panel.port)) != 0, address


# -- bounds -------------------------------------------------------------------------------------


def test_an_oversized_request_is_cut_off(panel, client, camera):
    big = json.dumps({"cmd": "split", "value": "x" * MAX_BODY}).encode()
    head = (f"POST /api/request HTTP/1.1\r\nHost: 127.0.0.1:{panel.port}\r\nOrigin: {origin(panel)}\r\n"
            f"Cookie: {cookie_name(panel.port)}={panel.token}\r\nContent-Type: application/json\r\n").encode()
    chunked = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    for request in (head + f"Content-Length: {len(big)}\r\n\r\n".encode() + big,
                    head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked):  # no length: counted as it comes
        with socket.create_connection(("127.0.0.1", panel.port)) as sock:
            sock.sendall(request)
            sock.settimeout(3)
            answer = _read_all(sock)  # the answer, then the server closes the connection
        assert answer.startswith(b"HTTP/1.1 413") and f"at most {MAX_BODY} bytes".encode() in answer
    answer = client.get(panel.url, headers={"x-filler": "y" * 9000})  # headers over the bound, all at once
    assert answer.status_code == 431
    with socket.create_connection(("127.0.0.1", panel.port)) as sock:  # ... and in pieces: h11's own bound
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{panel.port}\r\n".encode())
        for _ in range(10):
            try:
                sock.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
            except OSError:
                break
            time.sleep(0.02)
        sock.settimeout(3)
        assert _read_all(sock).startswith(b"HTTP/1.1 400")
    assert camera.requests == []
    assert post(client, panel, {"cmd": "strength", "value": 0.5}).json()["ok"] is True


def test_a_slow_or_malformed_client_closes_its_own_connection(camera, frames, monkeypatch):
    monkeypatch.setattr("vcam.panel.http_protocol.HEADER_TIMEOUT_S", 0.6)
    monkeypatch.setattr("vcam.panel.server.BODY_TIMEOUT_S", 0.6)
    with serve_panel(handle=camera.handle, latest_frames=frames) as panel:
        host = f"Host: 127.0.0.1:{panel.port}\r\n".encode()
        slow_headers = socket.create_connection(("127.0.0.1", panel.port))
        slow_headers.sendall(b"GET / HTTP/1.1\r\n" + host)
        slow_body = socket.create_connection(("127.0.0.1", panel.port))
        request = (b"POST /api/request HTTP/1.1\r\n" + host + f"Origin: {origin(panel)}\r\n".encode()
                   + f"Cookie: {cookie_name(panel.port)}={panel.token}\r\n".encode()
                   + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cmd\"")
        slow_body.sendall(request)
        garbage = socket.create_connection(("127.0.0.1", panel.port))
        garbage.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n")
        started = time.monotonic()
        for _ in range(4):  # one header line every 0.25 s: still under the deadline if it were per line
            time.sleep(0.25)
            try:
                slow_headers.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass  # closed already
            assert httpx.get(panel.url, headers=cookies(panel), timeout=2).status_code == 200
        for sock in (slow_headers, slow_body, garbage):
            sock.settimeout(3)
            data = _read_all(sock)
            assert time.monotonic() - started < 3
            sock.close()
            if sock is slow_body:
                assert b"408" in data.split(b"\r\n")[0]
            if sock is garbage:
                assert data.startswith(b"HTTP/1.1 400")
        assert httpx.get(panel.url, headers=cookies(panel)).status_code == 200
        assert camera.requests == []


def _closed(sock) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _read_all(sock) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_flood_of_slow_connections_never_locks_out_a_good_client(panel):
    host = f"Host: 127.0.0.1:{panel.port}\r\n".encode()
    flood = []
    try:
        for _ in range(MAX_HTTP_CONNECTIONS + 16):
            sock = socket.create_connection(("127.0.0.1", panel.port))
            sock.sendall(b"GET / HTTP/1.1\r\n" + host)
            flood.append(sock)
        time.sleep(0.2)
        answer = httpx.get(panel.url, headers=cookies(panel), timeout=3)
        assert answer.status_code == 200
        closed = sum(_closed(sock) for sock in flood)
        assert closed >= 16  # the oldest of them were closed to make room
    finally:
        for sock in flood:
            sock.close()


def test_websockets_are_bounded(panel):
    with contextlib.ExitStack() as stack:
        open_ones = [stack.enter_context(ws(panel)) for _ in range(MAX_WEBSOCKETS)]
        with pytest.raises(InvalidStatus) as refused:
            ws(panel)
        assert refused.value.response.status_code == 403
        open_ones.pop().close()
        time.sleep(0.3)
        with ws(panel) as again:
            assert receive_until(again, status_message("effect", "on"), 2.0)


def test_a_websocket_message_over_the_bound_closes_that_page_only(panel):
    with ws(panel) as greedy, ws(panel) as good:
        greedy.send("x" * 9000)
        with pytest.raises(ConnectionClosed) as closed:
            receive_until(greedy, lambda message: False, 2.0)
        assert closed.value.rcvd.code == 1009  # message too big
        assert receive_until(good, status_message("effect", "on"), 2.0)


# -- actions go through handle ------------------------------------------------------------------


def test_actions_go_through_handle_as_kdcam_ctl_requests(panel, client, camera):
    sent = [{"cmd": "strength", "value": 0.6}, {"cmd": "toggle"}, {"cmd": "split", "value": "on"},
            {"cmd": "model", "value": "kd-s4-c16"}, {"cmd": "engine", "value": "torch"}, {"cmd": "save"},
            {"cmd": "strength", "value": 2}]
    answers = [post(client, panel, request).json() for request in sent]
    assert camera.requests == sent
    assert isinstance(camera.requests[0]["value"], float) and isinstance(camera.requests[-1]["value"], int)
    assert all(answer["ok"] for answer in answers)
    assert answers[5]["message"] == "saved strength, model and engine to kdcam.toml"
    final = answers[-1]["status"]
    assert final == {**camera.status()}
    assert (final["effect"], final["split"], final["model"], final["engine"]) == ("off", "on", "kd-s4-c16", "torch")
    assert client.get(panel.url + "api/status").json() == {"ok": True, "status": camera.status()}


@pytest.mark.parametrize("request_", [
    {"cmd": "strength", "value": "0.6"},  # text where a number is wanted
    {"cmd": "strength", "value": True},
    {"cmd": "strength", "value": 5},
    {"cmd": "split", "value": "sideways"},
    {"cmd": "model", "value": "../../etc/passwd"},
    {"cmd": "engine", "value": "cuda-magic"},
    {"cmd": "reboot"},
    {"cmd": "toggle", "extra": 1},
    ["toggle"],
])
def test_a_refused_value_is_the_handlers_own_error(panel, client, camera, request_):
    expected = FakeCamera().handle(request_)
    answer = post(client, panel, request_)
    assert answer.status_code == 200
    assert answer.json() == expected and expected["ok"] is False and "\n" not in expected["error"]
    assert camera.requests == [request_]
    assert camera.status() == FakeCamera().status()


def test_a_broken_request_or_handler_is_one_line(panel, client, camera, monkeypatch):
    answer = post(client, panel, b"{not json")
    assert answer.json()["ok"] is False and answer.json()["error"].startswith("bad request (not JSON")
    assert post(client, panel, "[" * 4000 + "]" * 4000).json()["ok"] is False
    assert post(client, panel, b"\xff\xfe").json()["ok"] is False
    assert post(client, panel, {"cmd": "toggle"}, **{"content-type": "text/plain"}).status_code == 415

    def broken(request):
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(camera, "handle", broken)
    panel.hub._handle = broken
    error = post(client, panel, {"cmd": "toggle"}).json()["error"]
    assert error == "the request failed (RuntimeError: boom with a second line)"


# -- the live feed and the preview --------------------------------------------------------------


def test_preview_frames_are_encoded_only_while_a_page_is_open(panel, frames):
    time.sleep(1.0)
    assert (panel.encoder.encodes, frames.calls, panel.hub.status_reads) == (0, 0, 0)
    with ws(panel) as page:
        pictures = {}
        deadline = time.monotonic() + 3
        while len(pictures) < 2 and time.monotonic() < deadline:
            message = page.recv(timeout=3)
            if isinstance(message, bytes):
                pictures[message[:1]] = message[1:]
        assert set(pictures) == {b"B", b"A"}
        for data in pictures.values():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (360, PREVIEW_MAX_WIDTH, 3)
        page.send(json.dumps({"preview": False}))  # a hidden tab: no frames, status still comes
        time.sleep(0.5)
        paused = panel.encoder.encodes
        time.sleep(1.0)
        assert panel.encoder.encodes == paused
        page.send(json.dumps({"preview": True}))
        time.sleep(1.0)
        assert panel.encoder.encodes >= paused + 6
    time.sleep(0.5)
    after = (panel.encoder.encodes, frames.calls, panel.hub.status_reads)
    time.sleep(1.0)
    assert (panel.encoder.encodes, frames.calls, panel.hub.status_reads) == after


def test_two_pages_share_one_encoder(panel):
    with ws(panel), ws(panel):
        time.sleep(2.0)
        assert 8 <= panel.encoder.encodes // 2 <= 12  # about 5 fps of pairs, not twice that


def test_a_change_made_outside_shows_within_a_second(panel, camera):
    with ws(panel) as page:
        assert receive_until(page, status_message("strength", 1.0), 2.0)
        for key, value in (("strength", 0.3), ("split", "labels"), ("effect", "off"), ("model", "kd-s8-c32")):
            changed = time.monotonic()
            camera.set(key, value)
            assert receive_until(page, status_message(key, value), 1.0), key
            assert time.monotonic() - changed < 1.0


def test_stats_reach_the_page_as_plain_json(panel):
    with ws(panel) as page:
        message = receive_until(page, lambda m: isinstance(m, str) and json.loads(m)["type"] == "stats", 2.0)
    stats = json.loads(message)["stats"]
    assert stats == {"sent_fps": 29.9, "latency_p95_ms": None, "cpu_cores": 0.8, "engine_line": "engine fake",
                     "machine_line": "test machine"}
    with ws(panel) as page:
        status = json.loads(receive_until(page, status_message("effect", "on"), 2.0))["status"]
    assert status["engines"] == ["onnxruntime", "torch"]


def _panel_cpu_seconds() -> float:
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads()
               if names.get(t.id, "").startswith("kdcam-panel"))


def test_cost_no_page_nothing_one_page_at_most_a_tenth_of_a_core(panel):
    time.sleep(0.3)
    idle_start = _panel_cpu_seconds()
    time.sleep(2.0)
    assert (_panel_cpu_seconds() - idle_start) / 2.0 < 0.01
    with ws(panel) as page:
        page.recv(timeout=2)
        start, cpu_start = time.monotonic(), _panel_cpu_seconds()
        received = 0
        while time.monotonic() - start < 3.0:
            message = page.recv(timeout=2)
            received += isinstance(message, bytes)
        cores = (_panel_cpu_seconds() - cpu_start) / (time.monotonic() - start)
    assert received >= 2  # before + after frames arrive (how many in 3 s depends on how busy the machine is)
    print(f"panel cost with one page open: {cores:.3f} cores")
    assert cores <= 0.1, f"the panel used {cores:.3f} cores with one page open"


# -- start, stop, the token file ----------------------------------------------------------------


def test_stop_is_quick_and_releases_the_port(camera, frames, tmp_path):
    token_file = tmp_path / "cam.panel.json"
    with ws_later() as connect_page:
        with serve_panel(handle=camera.handle, latest_frames=frames, token_file=token_file) as panel:
            page = connect_page(panel)
            assert receive_until(page, status_message("effect", "on"), 2.0)
            port = panel.port
            assert find_panel(token_file).login_url == panel.login_url
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 1.5
        assert not panel.running
        assert not token_file.exists()
        with pytest.raises(ConnectionClosed):
            receive_until(page, lambda message: False, 2.0)  # the page was told the server went away
    for family, host in ((socket.AF_INET, "127.0.0.1"),):
        with socket.socket(family) as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind((host, port))
    assert not [c for c in psutil.Process().net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    with serve_panel(handle=camera.handle, latest_frames=frames, port=port) as panel:  # the same port at once
        assert panel.port == port


def test_a_busy_port_is_one_line(camera, frames):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PanelError) as err, serve_panel(handle=camera.handle, latest_frames=frames, port=port):
            pass
    assert str(err.value) == (f"the panel port {port} on 127.0.0.1 is in use: choose another --panel-port "
                              "(0 picks a free one) or --no-panel")
    with pytest.raises(PanelError, match="bad panel port"):
        serve_panel(handle=camera.handle, latest_frames=frames, port=70000).__enter__()


def test_the_token_file_is_private_and_removed_on_stop(camera, frames, tmp_path):
    token_file = panel_file_for(tmp_path / "studio-cam.sock")
    assert token_file == tmp_path / "studio-cam.panel.json"
    with serve_panel(handle=camera.handle, latest_frames=frames, token_file=token_file) as panel:
        info = os.lstat(token_file)
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
        record = json.loads(token_file.read_text())
        assert record == {"url": panel.url, "token": panel.token, "pid": os.getpid()}
        assert len(panel.token) >= 43  # secrets.token_urlsafe(32): 256 bits
        assert [p.name for p in tmp_path.iterdir()] == [token_file.name]  # no temporary file left
        found = find_panel(token_file)
        assert (found.url, found.token, found.pid) == (panel.url, panel.token, os.getpid())
    assert not token_file.exists()
    with pytest.raises(PanelError) as err:
        find_panel(token_file)
    assert str(err.value) == NOT_RUNNING


def test_the_token_file_is_written_0600_from_the_start(tmp_path, monkeypatch):
    opened = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    target = tmp_path / "cam.panel.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_token_file(target, url="http://127.0.0.1:1234/", token="t" * 43, pid=1)
    monkeypatch.undo()
    path, flags, mode = opened[0]
    assert path != str(target) and mode == 0o600 and flags & os.O_CREAT and flags & os.O_EXCL
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(target.read_text())["token"] == "t" * 43


def test_find_panel_refuses_what_it_cannot_trust(tmp_path):
    path = tmp_path / "cam.panel.json"
    with pytest.raises(PanelError, match="no kdcam panel is running"):
        find_panel(path)
    dead = psutil.Popen(["true"])
    dead.wait()
    write_token_file(path, url="http://127.0.0.1:1234/", token="t" * 43, pid=dead.pid)
    with pytest.raises(PanelError, match="no kdcam panel is running"):
        find_panel(path)
    write_token_file(path, url="http://evil.example:1234/", token="t" * 43)
    with pytest.raises(PanelError, match="not a panel token file"):
        find_panel(path)
    write_token_file(path, url="http://127.0.0.1:1234/", token="t" * 43)
    os.chmod(path, 0o644)
    with pytest.raises(PanelError, match="not a private file"):
        find_panel(path)
    os.chmod(path, 0o600)
    assert find_panel(path).login_url == "http://127.0.0.1:1234/?token=" + "t" * 43
    link = tmp_path / "link.panel.json"
    link.symlink_to(path)
    with pytest.raises(PanelError, match="cannot read"):
        find_panel(link)
    fifo = tmp_path / "fifo.panel.json"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(PanelError, match="not a private file"):
        find_panel(fifo)  # refused at once, never waiting for a writer


def test_open_panel_hands_the_browser_a_private_page_not_the_token(panel):
    opened = []
    info = open_panel(panel.token_file, browser=lambda url: opened.append(url) or True)
    assert info.login_url == panel.login_url
    page = open_file_for(panel.token_file)
    assert opened == [page.resolve().as_uri()] and panel.token not in opened[0]
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    assert panel.login_url in page.read_text()
    with pytest.raises(PanelError, match="no browser"):
        open_panel(panel.token_file, browser=lambda url: False)
