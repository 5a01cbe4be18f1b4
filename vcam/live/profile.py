"""Where the live loop's CPU goes, for ``kdcam bench --pipeline``.

Each stage adds the CPU time its own thread spent in it (``time.thread_time``: a wait for
the camera or for the next tick costs nothing, so a paced file and a real camera read the
same): decode (the source's read: demuxing and decoding a frame), resize (fitting it to the
published size, where the sizes differ), convert (the engine's colour conversions: BGR to
grey and the luma correction added back to the three channels), network (the model, on the
processing thread), send (the virtual camera), record (observers: a recording, the panel's
copy) and stats (the latency and rate counters). What ran on other threads (the runtime's
own worker threads, FFmpeg's decoder threads, the panel's server) is the process's CPU
time minus the stage threads'. ``kdcam start`` runs without a profile: no cost there.
"""

from __future__ import annotations

#: the stages, in the order a frame meets them
STAGES = ("decode", "resize", "convert", "network", "send", "record", "stats")


class StageProfile:
    """CPU seconds per stage; each stage has one writer thread, so no lock is needed."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        #: CPU seconds of each stage thread over its whole run (set when it ends)
        self.threads: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    def engine(self, *, convert: float, network: float) -> None:
        """The engine's own split of one frame (``engines.base.DeltaEngine.profile``)."""
        self.seconds["convert"] += convert
        self.seconds["network"] += network

    def report(self, *, wall_s: float, frames: int, process_cpu_s: float) -> dict:
        """Per stage: CPU ms per processed frame and cores (CPU seconds per wall second),
        plus the other threads' share; ``process_cpu_s`` is the process's CPU over ``wall_s``."""
        frames = max(frames, 1)
        rows = {stage: {"ms_per_frame": s * 1000 / frames, "cores": s / wall_s} for stage, s in self.seconds.items()}
        other = max(0.0, process_cpu_s - sum(self.threads.values()))
        rows["other threads"] = {"ms_per_frame": other * 1000 / frames, "cores": other / wall_s}
        return rows


def format_profile(rows: dict) -> str:
    """The breakdown as a small table (one line per stage)."""
    lines = [f"{'stage':<14} {'CPU ms/frame':>12} {'cores':>6}"]
    lines += [f"{stage:<14} {row['ms_per_frame']:12.2f} {row['cores']:6.3f}" for stage, row in rows.items()]
    total = sum(row["cores"] for row in rows.values())
    lines.append(f"{'total':<14} {sum(r['ms_per_frame'] for r in rows.values()):12.2f} {total:6.3f}")
    return "\n".join(lines)
