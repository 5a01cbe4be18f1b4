"""Soak test (not in CI): a long `kdcam start` with a recording, watched from outside.

    python scripts/soak.py [--video ../shared/data/video/vtest.avi] [--minutes 10] [--size 1280x720]
        [--out docs/soak]

Runs ``kdcam start --device VIDEO --loop --size SIZE --fps 30 --no-vcam --output REC
--duration S`` as its own process (the video file, scaled and looped, stands in for a
camera; it is first copied with its frames re-timed to ``--fps``, so, like a 30 fps
camera, it gives a new frame on every tick and every frame is sharpened), samples its
resident memory every few seconds, reads its live stats lines, and at the end checks what
a user needs from a long call:

* memory is flat: the resident size at the end is within ``--rss-slack-mb`` of the size
  after the first minute (no leak per frame);
* the sent rate holds: the live lines' sent fps stay at the target;
* the recording has the session's real duration: frames / fps matches the session within 2%.

Writes ``soak.json`` and ``soak.md`` into ``--out``; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import psutil

ROOT = Path(__file__).resolve().parents[1]
SENT = re.compile(r"sent\s+([\d.]+)")


def watch(proc: subprocess.Popen, every: float) -> tuple[list[tuple[float, float]], list[float], list[str]]:
    """(time, RSS MiB) samples, sent fps of each live line, and every stderr line."""
    samples: list[tuple[float, float]] = []
    sent: list[float] = []
    lines: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            for part in line.replace("\r", "\n").splitlines():
                lines.append(part)
                match = SENT.search(part)
                if part.startswith("capture") and match:
                    sent.append(float(match.group(1)))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    start = time.monotonic()
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            samples.append((time.monotonic() - start, ps.memory_info().rss / 2**20))
        except psutil.NoSuchProcess:
            break
        time.sleep(every)
    reader.join(timeout=10)
    return samples, sent, lines


def retimed(video: Path, path: Path, *, fps: float) -> Path:
    """A copy of ``video`` (Motion-JPEG, quality 95) whose frames are labelled ``fps``."""
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    if not ok:
        raise SystemExit(f"soak: cannot read {video}")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame.shape[1], frame.shape[0]))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    while ok:
        writer.write(frame)
        ok, frame = cap.read()
    writer.release()
    cap.release()
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "vtest.avi")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--rss-slack-mb", type=float, default=40.0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "soak")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    recording = args.out / "soak-recording.mp4"
    camera = retimed(args.video, args.out / "soak-camera.avi", fps=args.fps)
    seconds = args.minutes * 60
    cmd = [
        sys.executable,
        "-m",
        "vcam.cli",
        "start",
        "--device",
        str(camera),
        "--loop",
        "--size",
        args.size,
        "--fps",
        str(args.fps),
        "--no-vcam",
        "--engine",
        args.engine,
        "--output",
        str(recording),
        "--duration",
        str(seconds),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, sent, lines = watch(proc, every=5.0)
    summary_out = proc.stdout.read()
    wall = time.monotonic() - started
    summary = next((line for line in summary_out.splitlines() if line.startswith("kdcam:")), "").replace(f"{ROOT}/", "")
    session = float(re.search(r"kdcam: ([\d.]+) s:", summary).group(1)) if summary else float("nan")

    cap = cv2.VideoCapture(str(recording))
    frames, file_fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS) or args.fps
    cap.release()
    recorded_s = frames / file_fps
    after_first_minute = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
    rss_growth = after_first_minute[-1] - after_first_minute[0] if after_first_minute else float("nan")
    steady = sent[2:] or sent
    low = sum(1 for f in steady if f < 0.95 * args.fps)
    checks = {
        "exit code 0": proc.returncode == 0,
        f"memory flat (growth after the first minute {rss_growth:+.1f} MiB <= {args.rss_slack_mb:g})": rss_growth
        <= args.rss_slack_mb,
        f"sent rate holds ({low} of {len(steady)} live lines under 95% of {args.fps:g} fps)": low
        <= max(1, len(steady) // 100),
        f"recording plays the session ({recorded_s:.1f} s for {session:.1f} s)": abs(recorded_s - session)
        <= 0.02 * session,
    }
    result = {
        "command": " ".join(cmd).replace(f"{ROOT}/", ""),
        "wall_s": wall,
        "session_s": session,
        "summary": summary,
        "rss_mib": samples,
        "sent_fps_lines": sent,
        "recording_frames": frames,
        "recording_fps": file_fps,
        "recording_s": recorded_s,
        "checks": checks,
        "machine": _machine(),
    }
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [
        f"# Soak: {args.minutes:g} minutes of `kdcam start` at {args.size} {args.fps:g} fps with a recording",
        "",
        f"Machine: {result['machine']}. Command: `{result['command'].split(' -m ')[-1]}` ({args.video.name} "
        "re-timed to "
        f"{args.fps:g} fps as soak-camera.avi, so every tick brings a new frame to sharpen).",
        "",
        f"Summary: `{summary}`",
        "",
    ]
    md += [f"- {'pass' if ok else '**FAIL**'}: {name}" for name, ok in checks.items()]
    md += [
        "",
        f"Resident memory (MiB) every 5 s: first {samples[0][1]:.0f}, after 1 min {after_first_minute[0]:.0f}, "
        f"end {samples[-1][1]:.0f}."
        if samples
        else "",
    ]
    (args.out / "soak.md").write_text("\n".join(md) + "\n")
    recording.unlink(missing_ok=True)  # the measurement is kept; the videos are not
    camera.unlink(missing_ok=True)
    print("\n".join(md))
    return 0 if all(checks.values()) else 1


def _machine() -> str:
    from engines.foundation.timing import machine_name

    return machine_name()


if __name__ == "__main__":
    raise SystemExit(main())
