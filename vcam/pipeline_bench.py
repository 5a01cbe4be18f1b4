"""``kdcam bench --pipeline``: the whole live loop from a video file, no virtual camera.

The file is scaled to ``size``, looped, and paced at ``fps`` like a live camera, so the
numbers are what a webcam of that size and rate would see: sustained sent fps, added
latency (capture -> sent) p50/p95, CPU cores used (process CPU time / wall time), and where
that CPU goes, stage by stage (``vcam.live.profile``).
"""

from __future__ import annotations

import contextlib
import threading
from functools import partial
from pathlib import Path

from engines.errors import KdcamError, shown
from engines.foundation.timing import machine_name

from vcam.live.stage import default_log
from vcam.live.sources import describe_source, open_video, output_shape
from vcam.live.settings import parse_duration
from engines.foundation.values import AUTO, DEFAULT_FPS, DEFAULT_SIZE, parse_fps, parse_size
from vcam.live.controls.state import Controls
from vcam.live.engine_switch import live_engine, warm_up
from vcam.live.model_choice import choose_model
from vcam.live.pipeline import run_loop
from vcam.live.profile import StageProfile, format_profile
from vcam.live.controls.protocol import handle_request
from vcam.live.panel_link import PanelFrames, PanelStats
from vcam.live.stats import LiveStats

#: how long `kdcam bench --pipeline` runs by default, in seconds
PIPELINE_SECONDS = 30.0


def run_pipeline_bench(
    *,
    source: str | Path,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: float = DEFAULT_FPS,
    seconds: float = PIPELINE_SECONDS,
    engine: str = AUTO,
    model: str | Path | None = None,
    strength: float = 1.0,
    panel: str = "off",
) -> dict:
    """Run the live loop for ``seconds`` on ``source`` and return its summary, plus the
    settings; warm-up and model loading are not counted. ``panel``: ``off``, ``idle`` (the
    control panel served, no page open: what `kdcam start` does) or ``page`` (one page open
    for the whole run, in a process of its own, reading the live preview)."""
    if panel not in PANEL_MODES:
        raise KdcamError(f"bad --panel {shown(panel)}: use one of {', '.join(PANEL_MODES)}")
    size = parse_size(f"{size[0]}x{size[1]}")
    fps = parse_fps(fps)
    seconds = parse_duration(seconds, what="--seconds")

    def factory():
        return open_video(str(source), loop=True, fps=fps, pace_fps=fps)

    opened = factory()  # a bad source fails before any model loads
    try:
        if model is None or str(model) == AUTO:
            _, model = choose_model(engine=engine, size=size, fps=fps, log=default_log)
        runner = live_engine(engine, model=model)
    except BaseException:
        opened.close()
        raise
    try:
        default_log(
            "kdcam bench: "
            + describe_source(opened.info, asked_size=size, asked_fps=fps, camera=False)
            + f", scaled to {size[0]}x{size[1]}, paced at {fps:g} fps"
        )
        shape = output_shape(opened.info, size)
        warm_up(runner, shape=shape, strength=strength)
        stats, controls = LiveStats(engine=runner.describe()), Controls(strength=strength)
        page: dict = {}  # what the watching page received, filled when it closes
        with contextlib.ExitStack() as stack:
            frames = _bench_panel(stack, panel, controls, stats, page) if panel != "off" else None
            profile = StageProfile()
            summary = run_loop(
                source=opened,
                factory=factory,
                engine=runner,
                shape=shape,
                fps=fps,
                controls=controls,
                stats=stats,
                stop=threading.Event(),
                observers=[frames] if frames is not None else [],
                keep_before=frames.watching if frames is not None else False,
                duration=seconds,
                report_every=None,
                profile=profile,
            )
    finally:
        runner.close()
    summary["stages"] = profile.report(wall_s=summary["seconds"], frames=summary["processed"],
                                       process_cpu_s=summary["cpu_cores"] * summary["seconds"])
    default_log("kdcam bench: where the CPU goes (per processed frame; cores = CPU seconds per second)\n"
                + format_profile(summary["stages"]))
    summary.update(size=f"{size[0]}x{size[1]}", target_fps=fps, source=str(source), panel=panel)
    if page:
        summary["panel_page"] = page
    return summary


#: the panel during a pipeline bench: none, served with no page open, or with one page open
PANEL_MODES = ("off", "idle", "page")


def _bench_panel(stack: contextlib.ExitStack, mode: str, controls: Controls, stats: LiveStats,
                 page_result: dict) -> PanelFrames:
    """Serve the panel for a bench run (into ``stack``); with ``page``, a watching page in a process of its own."""
    import json
    import subprocess
    import sys

    from vcam.panel import serve_panel

    frames = PanelFrames()
    handle = partial(handle_request, controls=controls, save=lambda: "a bench saves nothing")
    panel = stack.enter_context(serve_panel(handle=handle, latest_frames=frames.latest,
                                            stats=PanelStats(stats, machine_name())))
    if mode == "page":
        page = subprocess.Popen([sys.executable, "-m", "vcam.panel.page_client", panel.login_url],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def finish() -> None:
            out, _ = page.communicate(input="", timeout=30)
            page_result.update(json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": "no answer"})

        stack.callback(finish)
    return frames
