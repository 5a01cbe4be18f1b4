"""The one timer of kdcam's benchmarks (the median frame rate of a call), and the name of
the machine every measured number comes with."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def machine_name() -> str:
    """CPU model, the vector extensions that decide CPU inference speed, cores, OS."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [name for flag, name in (("amx_tile", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                   ("avx2", "AVX2")) if flag in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}{' (' + ', '.join(isa) + ')' if isa else ''}, {cores} cores, {platform.system()}"


def time_fps(fn: Callable[[], object], *, warmup: int = 2, min_runs: int = 10, min_seconds: float = 1.0,
             max_seconds: float = 8.0, max_runs: int | None = None) -> float:
    """Median calls per second of ``fn`` after ``warmup`` untimed calls.

    Runs until both ``min_runs`` and ``min_seconds`` are reached, or ``max_seconds`` have
    passed (after at least 3 runs), or ``max_runs``; so a very slow call stays bounded.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent = time.perf_counter() - start
        if (len(times) >= min_runs and spent >= min_seconds) or (spent >= max_seconds and len(times) >= 3):
            break
        if max_runs is not None and len(times) >= max_runs:
            break
    median = statistics.median(times)
    return float("inf") if median <= 0 else 1.0 / median
