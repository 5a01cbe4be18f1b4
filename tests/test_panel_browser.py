"""The control panel in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

The test runs against two ``panel_target``s: the panel served in-process with a fake camera
(``vcam.panel.demo.FakeCamera``, which records every request), and a real ``kdcam start`` on
the sample clip, loaded through the address it printed: ``status`` is then `kdcam ctl status`,
``ctl`` a request as `kdcam ctl` sends it, and afterwards its lossless recording is checked
frame by frame (the frames made with the effect off are the input; with the split view on,
the left half is the input).

Skipped, with the reason, where /usr/bin/chromium or the playwright package is missing (the
browser is Debian's `chromium`, never one that `playwright install` downloads).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from vcam.panel import serve_panel
from vcam.panel.demo import ENGINES, FakeCamera, FakeFrames, fake_stats

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "panel.png"
CLIP = REPO / "samples" / "vtest_clip.avi"

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                     "(pip install playwright; the browser is Debian's chromium)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")),
                                 reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")]


@dataclass
class PanelTarget:
    url: str  # the address the camera printed, with the token
    status: Callable[[], dict]  # the camera's status, as `kdcam ctl status` gives it
    ctl: Callable[[dict], dict]  # a request sent from outside the page, as `kdcam ctl` sends it
    received: list[dict] | None  # the requests the camera got, where they can be seen
    switch_s: float = 3.0  # how long a model switch may take (a real one builds an engine)


def _fake_camera() -> Iterator[PanelTarget]:
    camera = FakeCamera()
    with serve_panel(handle=camera.handle, latest_frames=FakeFrames(), stats=fake_stats,
                     engines=ENGINES[1:]) as panel:
        yield PanelTarget(url=panel.login_url, status=camera.status, ctl=camera.handle, received=camera.requests)
        assert not panel.errors, list(panel.errors)


def _real_camera(tmp_path: Path, monkeypatch) -> Iterator[PanelTarget]:
    """`kdcam start` on the sample clip with a lossless recording and its frame log."""
    from vcam.live.controls.client import send_request

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    rec, frames = tmp_path / "rec.mkv", tmp_path / "frames.csv"
    proc = subprocess.Popen([sys.executable, "-m", "vcam.cli", "start", "--device", str(CLIP), "--no-vcam", "--loop",
                             "--duration", "120", "--model", "quality", "--output", str(rec),
                             "--frame-log", str(frames)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ)
    lines: list[str] = []
    try:
        url = None
        while url is None and (line := proc.stdout.readline()):
            lines.append(line)
            found = re.search(r"control panel at (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            url = found.group(1) if found else None
        assert url, "".join(lines)
        name = "KD Sharpen Cam"
        yield PanelTarget(url=url, status=lambda: send_request(name, {"cmd": "status"})["status"],
                          ctl=lambda request: send_request(name, request), received=None, switch_s=30.0)
        proc.send_signal(signal.SIGINT)  # a clean stop: the recording is finalized
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    finally:
        proc.kill()
    assert proc.returncode == 130, "".join(lines)[-3000:]
    _check_recording(rec, frames)


def _check_recording(rec: Path, frames: Path) -> None:
    """The page's changes reached the frames the call got, as `kdcam ctl`'s do."""
    with open(frames, newline="") as f:
        rows = list(csv.DictReader(f))
    source, recorded = cv2.VideoCapture(str(CLIP)), cv2.VideoCapture(str(rec))
    clip = []
    while (frame := source.read()[1]) is not None:
        clip.append(frame)
    seen = {"off": 0, "split": 0}
    for row in rows:
        frame = recorded.read()[1]
        assert frame is not None, "one recorded frame per sent frame"
        before, half = clip[int(row["pos"]) % len(clip)], frame.shape[1] // 2
        if row["split"] == "on":
            assert (frame[:, :half] == before[:, :half]).all(), row  # split: the left half is the input
            seen["split"] += 1
        if row["effect"] == "0" and row["split"] in ("off", "on"):
            same = frame == before
            same[:, half] = True  # the split view's divider column
            assert same.all(), row  # the effect off: the input itself
            seen["off"] += 1
    assert seen["off"] and seen["split"], seen


@pytest.fixture(params=["fake camera", "kdcam start"])
def panel_target(request, tmp_path, monkeypatch) -> Iterator[PanelTarget]:
    if request.param == "fake camera":
        yield from _fake_camera()
    else:
        yield from _real_camera(tmp_path, monkeypatch)


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM if os.access(CHROMIUM, os.X_OK)
                                              else shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def wait_for(check: Callable[[], object], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def wait_js(page, expression: str, timeout: float, arg=None):
    """Poll ``expression`` in the page until it is truthy (the page's CSP forbids wait_for_function's eval)."""
    script = expression if arg is not None else f"() => ({expression})"
    return wait_for(lambda: page.evaluate(script, arg), timeout, expression)


def last_request(target: PanelTarget, cmd: str) -> dict | None:
    if target.received is None:
        return None
    found = [request for request in target.received if isinstance(request, dict) and request.get("cmd") == cmd]
    return found[-1] if found else None


def check_sent(target: PanelTarget, cmd: str, value=None, *, status_key: str | None = None, expected=None,
               timeout: float = 3.0):
    """The page's action reached the camera: as a request (where seen) and in its status."""
    if target.received is not None:
        request = wait_for(lambda: (r := last_request(target, cmd)) and r.get("value") == value and r, 3.0,
                           f"the camera got {cmd} {value!r}")
        assert request == ({"cmd": cmd} if value is None else {"cmd": cmd, "value": value})
        if cmd == "strength":
            assert type(request["value"]) in (int, float)  # a JSON number, as `kdcam ctl strength` sends
    if status_key is not None:
        wait_for(lambda: target.status()[status_key] == expected, timeout, f"status {status_key} = {expected!r}")


def test_the_panel_in_a_browser(browser, panel_target):
    target = panel_target
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1100, "height": 820})
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(target.url)
    base = target.url.split("?", 1)[0]
    assert page.url == base  # the token left the address bar for a cookie
    cookies = context.cookies()
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    wait_js(page, "document.getElementById('connection').textContent === 'live'", 5)
    start = target.status()
    wait_js(page, f"document.getElementById('strength-value').textContent === '{start['strength']:.2f}'", 3)
    wait_js(page, "document.getElementById('after').src.startsWith('blob:') && "
                  "document.getElementById('before').naturalWidth > 0", 5)
    assert page.evaluate("document.getElementById('after').naturalWidth") <= 640
    models = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert models == start["models"]

    # the strength slider, with the keyboard: 8 steps of 0.05 down
    page.focus("#strength")
    for _ in range(8):
        page.keyboard.press("ArrowLeft")
    wanted = round(start["strength"] - 0.4, 2)
    check_sent(target, "strength", wanted, status_key="strength", expected=wanted)

    page.click("#effect")
    check_sent(target, "toggle", status_key="effect", expected="off" if start["effect"] == "on" else "on")
    wait_js(page, "document.getElementById('effect').getAttribute('aria-pressed') === "
                           f"'{'false' if start['effect'] == 'on' else 'true'}'", 2)

    page.check("input[name=split][value=on]")
    check_sent(target, "split", "on", status_key="split", expected="on")

    other = next(name for name in start["models"] if name != start["model"])
    page.select_option("#model", other)
    check_sent(target, "model", other, status_key="model", expected=other, timeout=target.switch_s)

    page.click("#save")
    check_sent(target, "save")
    wait_js(page, "document.getElementById('message').textContent.length > 0", 3)

    # changes made outside (the terminal, `kdcam ctl`) show within a second
    for request, script in (({"cmd": "strength", "value": 1.3},
                             "document.getElementById('strength-value').textContent === '1.30'"),
                            ({"cmd": "split", "value": "labels"},
                             "document.querySelector('input[name=split][value=labels]').checked"),
                            ({"cmd": "toggle"}, ("document.getElementById('effect').getAttribute('aria-pressed') "
                                                 f"=== '{'true' if start['effect'] == 'on' else 'false'}'"))):
        assert target.ctl(request)["ok"]
        changed = time.monotonic()
        wait_js(page, script, 1)
        assert time.monotonic() - changed < 1.0, request

    # the before / after divider: dragged with the mouse, moved with the keyboard
    box = page.locator("#stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    assert abs(int(page.get_attribute("#divider", "aria-valuenow")) - 25) <= 1
    page.focus("#divider")
    page.keyboard.press("ArrowRight")
    assert abs(int(page.get_attribute("#divider", "aria-valuenow")) - 30) <= 1

    wait_js(page, "document.getElementById('fps-value').textContent !== '\u2013'", 3)
    assert not problems, problems
    if target.received is None:  # the real camera's page, with its real frames, is the one README shows
        _screenshot(page)

    # a refused value shows the camera's own one-line error
    page.evaluate("send('strength', 'lots')")
    error = target.ctl({"cmd": "strength", "value": "lots"})["error"]
    wait_js(page, "e => document.getElementById('message').textContent === e", 3, arg=error)


    # still usable at 360 px wide: nothing wider than the screen, every control on it
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for selector in ("#effect", "#strength", "#model", "#engine", "#save", "#divider"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
    context.close()


def _screenshot(page) -> None:
    SCREENSHOT.parent.mkdir(exist_ok=True)
    temp = SCREENSHOT.with_name(f".{SCREENSHOT.name}.{os.getpid()}.tmp.png")
    try:
        page.screenshot(path=str(temp), full_page=True)
        os.replace(temp, SCREENSHOT)
    finally:
        temp.unlink(missing_ok=True)
