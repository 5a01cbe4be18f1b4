"""``kdcam bench --pipeline``: the whole live loop from a video file, no virtual camera.

The file is scaled to ``size``, looped, and paced at ``fps`` like a live camera, so the
numbers are what a webcam of that size and rate would see: sustained sent fps, added
latency (capture -> sent) p50/p95, and CPU cores used (process CPU time / wall time).
"""

from __future__ import annotations

import threading
from pathlib import Path

from vcam.live.stage import default_log
from vcam.live.sources import describe_source, open_video, output_shape
from vcam.live.settings import parse_duration
from engines.foundation.values import AUTO, DEFAULT_FPS, DEFAULT_SIZE, parse_fps, parse_size
from vcam.live.controls.state import Controls
from vcam.live.engine_switch import warm_up
from vcam.live.model_choice import choose_model
from vcam.live.pipeline import run_loop
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
) -> dict:
    """Run the live loop for ``seconds`` on ``source`` and return its summary, plus the
    settings; warm-up and model loading are not counted."""
    from engines import create_engine

    size = parse_size(f"{size[0]}x{size[1]}")
    fps = parse_fps(fps)
    seconds = parse_duration(seconds, what="--seconds")

    def factory():
        return open_video(str(source), loop=True, fps=fps, pace_fps=fps)

    opened = factory()  # a bad source fails before any model loads
    try:
        if model is None or str(model) == AUTO:
            _, model = choose_model(engine=engine, size=size, fps=fps, log=default_log)
        runner = create_engine(engine, model=model)
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
        stats = LiveStats(engine=runner.describe())
        summary = run_loop(
            source=opened,
            factory=factory,
            engine=runner,
            shape=shape,
            fps=fps,
            controls=Controls(strength=strength),
            stats=stats,
            stop=threading.Event(),
            duration=seconds,
            report_every=None,
        )
    finally:
        runner.close()
    summary.update(size=f"{size[0]}x{size[1]}", target_fps=fps, source=str(source))
    return summary
