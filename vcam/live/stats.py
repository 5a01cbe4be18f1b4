"""Live statistics: frame rates at each stage, added latency, CPU use.

Each counter has exactly one writer thread (capture, processing, sending), so plain
integer increments are enough; the reporter only reads them. Latencies go into
fixed-size histograms, so recording one costs an index increment, never an allocation.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import psutil

_BIN_S = 0.0005  # 0.5 ms latency bins
_MAX_S = 5.0  # latencies above this land in the last bin


def process_age_s() -> float:
    """Seconds since this process started: on Linux from its start tick in ``/proc/self/stat``
    (10 ms steps; psutil's create time counts from a boot time rounded to the second)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time() - psutil.Process().create_time()


class LatencyHistogram:
    def __init__(self) -> None:
        self._counts = np.zeros(int(_MAX_S / _BIN_S) + 1, np.int64)
        self._last = len(self._counts) - 1
        self.count = 0

    def add(self, seconds: float) -> None:
        self._counts[min(max(int(seconds / _BIN_S), 0), self._last)] += 1
        self.count += 1

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0..100) in milliseconds, to the bin's upper edge; nan if empty."""
        if self.count == 0:
            return float("nan")
        rank = max(1, int(np.ceil(self.count * q / 100.0)))
        index = int(np.searchsorted(np.cumsum(self._counts), rank))
        return (index + 1) * _BIN_S * 1000.0

    def reset(self) -> None:
        self._counts[:] = 0
        self.count = 0


@dataclass
class _Snapshot:
    t: float
    captured: int
    processed: int
    sent: int


class LiveStats:
    """Counters of the live loop plus the report line and the exit summary.

    Added latency, here and in ``kdcam bench --pipeline`` alike: from the moment a frame was
    captured to the moment the first send of its sharpened frame returns (the virtual
    camera's send; with no virtual camera, the moment it would be sent). A repeated frame is
    not new latency and is not counted.
    """

    def __init__(self, *, engine: str = "", clock=time.perf_counter) -> None:
        self.engine = engine
        self.captured = 0  # written by the capture thread
        self.processed = 0  # written by the processing thread
        self.sent = 0  # written by the sender
        self.repeated = 0  # sends that repeated the previous frame
        self.reconnects = 0
        self.stills = 0  # still frames sent while no app watched (on demand)
        self.first_frame_s: float | None = None  # the process's age at the first send (how fast a start is)
        #: the on-demand state (vcam.live.on_demand.Demand), None when always on
        self.demand = None
        self.last_line = ""  # the latest live line, for the preview overlay
        self._clock = clock
        self._window = LatencyHistogram()
        self._total = LatencyHistogram()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # starts psutil's interval
        self._cpu_start = self._cpu_seconds()
        self._t_start = clock()
        self._last = _Snapshot(self._t_start, 0, 0, 0)

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system

    def restart_clock(self) -> None:
        """Start the rates, the CPU share and the summary from now (after warm-up)."""
        self._t_start = self._clock()
        self._cpu_start = self._cpu_seconds()
        self._process.cpu_percent(None)
        self._last = _Snapshot(self._t_start, self.captured, self.processed, self.sent)

    def on_sent(self, latency_s: float | None) -> None:
        """One frame went out: ``latency_s`` from capture to sent, None for a repeat."""
        self.sent += 1
        if self.first_frame_s is None:
            self.first_frame_s = process_age_s()
        if latency_s is None:
            self.repeated += 1
        else:
            self._window.add(latency_s)
            self._total.add(latency_s)

    def line(self) -> str:
        """The live line over the interval since the previous call."""
        now = self._clock()
        last = self._last
        dt = max(now - last.t, 1e-9)
        cores = self._process.cpu_percent(None) / 100.0
        text = (
            f"capture {(self.captured - last.captured) / dt:5.1f} fps | "
            f"processed {(self.processed - last.processed) / dt:5.1f} | "
            f"sent {(self.sent - last.sent) / dt:5.1f} | "
            f"latency p50 {self._window.percentile_ms(50):5.1f} ms p95 {self._window.percentile_ms(95):5.1f} ms | "
            f"CPU {cores:4.2f} cores | {self.engine}"
        )
        if self.demand is not None:
            active, idle = self.demand.seconds()
            text += f" | {'active' if self.demand.active else 'idle'}: active {active:.0f} s, idle {idle:.0f} s"
        self._last = _Snapshot(now, self.captured, self.processed, self.sent)
        self._window.reset()
        self.last_line = text
        return text

    def peek(self) -> dict:
        """The counters, the CPU time and the current window's latency p95, changing nothing
        (``line`` starts a new window; a panel reads this instead, on its own clock)."""
        return {"t": self._clock(), "sent": self.sent, "cpu_s": self._cpu_seconds(),
                "latency_p95_ms": self._window.percentile_ms(95) if self._window.count else math.nan,
                "engine": self.engine}

    def summary(self) -> dict:
        """Totals and rates since the start (or ``restart_clock``)."""
        wall = max(self._clock() - self._t_start, 1e-9)
        demand = {}
        if self.demand is not None:
            active, idle = self.demand.seconds()
            demand = {"active_s": active, "idle_s": idle, "wakes": self.demand.wakes, "stills": self.stills}
        return {
            **demand,
            "first_frame_s": self.first_frame_s,  # from the process's start to the first frame sent
            "seconds": wall,
            "captured": self.captured,
            "processed": self.processed,
            "sent": self.sent,
            "repeated": self.repeated,
            "reconnects": self.reconnects,
            "capture_fps": self.captured / wall,
            "processed_fps": self.processed / wall,
            "sent_fps": self.sent / wall,
            "latency_p50_ms": self._total.percentile_ms(50),
            "latency_p95_ms": self._total.percentile_ms(95),
            "cpu_cores": (self._cpu_seconds() - self._cpu_start) / wall,
            "engine": self.engine,
        }


def format_summary(summary: dict) -> str:
    s = summary
    text = (
        f"kdcam: {s['seconds']:.1f} s: captured {s['captured']} ({s['capture_fps']:.1f} fps), "
        f"processed {s['processed']} ({s['processed_fps']:.1f} fps), "
        f"sent {s['sent']} ({s['sent_fps']:.1f} fps, {s['repeated']} repeats), "
        f"added latency p50 {s['latency_p50_ms']:.1f} ms p95 {s['latency_p95_ms']:.1f} ms, "
        f"CPU {s['cpu_cores']:.2f} cores, reconnects {s['reconnects']}, engine {s['engine']}"
    )
    if s.get("first_frame_s") is not None:
        text += f"; first frame sent {s['first_frame_s']:.2f} s after the command started"
    if "idle_s" in s:
        text += (f"; on demand: active {s['active_s']:.1f} s, idle {s['idle_s']:.1f} s "
                 f"({s['wakes']} wake-ups, {s['stills']} still frames)")
    if "recorded" in s:
        text += (f"; recorded {s['recorded']} frames ({s['recorded_seconds']:.1f} s) to {s['recording']}"
                 + (f", {s['recorded_dropped']} dropped (the encoder fell behind)" if s["recorded_dropped"] else ""))
    if s.get("changes"):
        text += "; changes: " + "; ".join(s["changes"])
    if s.get("signal"):
        import signal

        text += f"; stopped by {signal.Signals(s['signal']).name}"
    return text
