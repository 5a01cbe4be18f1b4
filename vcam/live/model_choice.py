"""``--model auto``: the best installed model whose frame time fits the frame budget here.

The installed models (``engines.model.zoo.ORDER``, best first) are timed on the engine
that will run them, as the live loop runs it (``LIVE_THREADS`` inference threads), at the
frame size that will be published: the first whose median frame time (on one thread: its CPU
time) is within ``HEADROOM`` of the frame period wins (the rest of the period is for
capture, colour conversion, sending, and whatever else the machine runs during a call);
if none fits, the fastest. A measurement takes a second or two per model and is cached per
machine, engine, frame size and model file, so the next start decides at once. One line
says which model, and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from engines.atomic import atomic_write_text
from engines.foundation.cache_dir import cache_dir
from engines.foundation.timing import machine_name, time_fps

#: the share of the frame period the engine may use (half: at 30 fps a model must run at 60 fps or more)
HEADROOM = 0.5
#: the longest a model's measurement takes: building its engine (about a second), then timing it
MEASURE_S = 4.0


def _cache_path():
    return cache_dir() / "model-times.json"


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def frame_time(model, *, engine: str, size: tuple[int, int], cache: dict,
               before_measuring: Callable[[], None] = lambda: None) -> tuple[float, bool]:
    """Seconds per frame of ``model`` (a ResolvedModel) on ``engine`` at ``size``, and
    whether it came from the cache (``before_measuring`` is called when it did not)."""
    from engines.foundation.values import LIVE_THREADS
    from engines.registry import pick_engine
    from vcam.live.engine_switch import live_engine

    spec, _ = pick_engine(engine)
    key = f"{machine_name()}|{spec.name}|{size[0]}x{size[1]}|{model.sha256[:16]}|threads {LIVE_THREADS}"
    if isinstance(cache.get(key), float):
        return cache[key], True
    before_measuring()
    frame = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = np.empty_like(frame)
    with live_engine(spec.name, model=model, quiet=True) as runner:
        seconds = 1.0 / time_fps(lambda: runner.sharpen(frame, out=out), min_runs=8, min_seconds=0.5,
                                 max_seconds=MEASURE_S - 1.0)
    cache[key] = seconds
    return seconds, False


def choose_model(*, engine: str, size: tuple[int, int], fps: float, log: Callable[[str], None]):
    """The installed model ``--model auto`` runs, as ``(name, ResolvedModel)`` (read once, for
    the engine to use); says which and why in one line."""
    from engines.errors import KdcamError
    from engines.model.checkpoint import open_model
    from engines.model.zoo import installed

    names = installed()
    if not names:
        raise KdcamError("no installed model to choose from; reinstall kdcam or pass --model FILE")
    budget = HEADROOM / fps
    cache = _read_cache()
    times: dict[str, float] = {}
    opened = {}
    fresh = False
    said: list[bool] = []

    def first_measurement() -> None:  # said once, before the first model is timed
        if not said:
            said.append(True)
            log(f"kdcam: --model auto: first start here at {size[0]}x{size[1]} on this engine: timing the "
                f"{len(names)} installed models to choose one (up to {MEASURE_S:g} s each; cached for later starts)")

    for name in names:
        opened[name] = open_model(name)
        times[name], cached = frame_time(opened[name], engine=engine, size=size, cache=cache,
                                         before_measuring=first_measurement)
        fresh = fresh or not cached
        if times[name] <= budget:
            break
    if fresh:
        atomic_write_text(_cache_path(), json.dumps(cache, indent=1) + "\n")
    fits = [n for n in names if n in times and times[n] <= budget]
    chosen = fits[0] if fits else min(times, key=times.get)
    measured = ", ".join(f"{n} {times[n] * 1000:.1f} ms" for n in times)
    why = (f"the best installed model that fits {HEADROOM:.0%} of the {1000 / fps:.1f} ms frame budget"
           if fits else f"none fits {HEADROOM:.0%} of the {1000 / fps:.1f} ms frame budget: the fastest")
    log(f"kdcam: model auto -> {chosen}: {why} at {size[0]}x{size[1]} ({measured} per frame; "
        f"{'measured now, cached' if fresh else 'cached measurement'})")
    return chosen, opened[chosen]
