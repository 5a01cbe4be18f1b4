"""How fast and how light `kdcam start` is at 720p on the CPU engines (not in CI: it measures).

    python scripts/measure_start.py [--runs 5] [--engines openvino,onnxruntime] [--frames 60]
        [--json docs/start_time.json]

Makes a 1280x720, 30 fps MJPG clip from samples/vtest_clip.avi (so the source is 720p like a
webcam's, and gives a new frame on every tick), then runs

    kdcam start --device CLIP --no-vcam --max-frames 60 --no-panel --engine E

as a fresh process, ``--runs`` times per engine, after one warm-up run that fills the model
choice cache (``--model auto`` measures the installed models once per machine, engine and
size) and the OS file cache. Per run:

* **first frame**: seconds from the process's start to the first frame the sender sends
  (with ``--no-vcam``, the moment it would be sent), as kdcam's own summary line says it
  (``vcam.live.stats``); the command is this venv's ``kdcam`` script, as a user runs it;
* **wall**: the whole command, spawn to exit;
* **max RSS**: the child's maximum resident memory (``os.wait4``'s rusage, that child alone),
  and the peaks of its anonymous (heap, buffers) and file-backed (mapped libraries) parts,
  sampled from ``/proc/PID/status`` every 20 ms: the file-backed part depends on how the
  libraries sit in the page cache (the same ``cv2`` maps 30 MiB more in a venv whose files
  were read in large pages), so compare runs in the same venv.

Prints min and median of each with the CPU model and the load average (the machine may run
other work: say so when reporting), and writes them as JSON with ``--json``. Targets (issue
23): first frame <= 2 s, max RSS <= 200 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "vtest_clip.avi"
TARGET_FIRST_S = 2.0
TARGET_RSS_MIB = 200.0

#: the summary line's first-frame time (vcam.live.stats: from the process's start to the first send)
FIRST_FRAME = re.compile(r"first frame sent ([0-9.]+) s after the command started")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_clip(folder: Path, frames: int = 90, size: tuple[int, int] = (1280, 720), fps: float = 30.0) -> Path:
    """A ``size`` MJPG clip at ``fps`` from the shipped sample (scaled, like a 720p webcam's frames)."""
    cap = cv2.VideoCapture(str(SAMPLE))
    path = folder / "clip720.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    writer.release()
    cap.release()
    return path


def _peaks(pid: int, done: threading.Event, peaks: dict[str, int]) -> None:
    """The largest RssAnon and RssFile (KiB) of process ``pid`` until ``done``."""
    while not done.wait(0.02):
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    key, _, value = line.partition(":")
                    if key in ("RssAnon", "RssFile"):
                        peaks[key] = max(peaks.get(key, 0), int(value.split()[0]))
        except (OSError, ValueError):
            return


def run_once(args: list[str], env: dict[str, str], folder: Path) -> dict:
    """One fresh `kdcam start`: first-frame and wall seconds, max RSS MiB, exit code."""
    kdcam = Path(sys.executable).with_name("kdcam")  # the command a user runs, from this venv
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        t0 = time.time()
        proc = subprocess.Popen([str(kdcam), *args], cwd=folder, env=env, stdout=out, stderr=err)
        done, peaks = threading.Event(), {}
        sampler = threading.Thread(target=_peaks, args=(proc.pid, done, peaks))
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.time() - t0
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    found = FIRST_FRAME.search((folder / "stdout.txt").read_text(errors="replace"))
    first = float(found[1]) if found else None
    stderr = (folder / "stderr.txt").read_text(errors="replace")
    model = re.search(r"model auto -> (\S+):", stderr)
    return {"first_frame_s": first, "wall_s": wall, "max_rss_mib": usage.ru_maxrss / 1024,
            "anon_mib": peaks.get("RssAnon", 0) / 1024, "file_mib": peaks.get("RssFile", 0) / 1024,
            "model": model[1] if model else None, "returncode": proc.returncode, "stderr": stderr[-2000:]}


def summarize(rows: list[dict]) -> dict:
    out = {}
    for key in ("first_frame_s", "wall_s", "max_rss_mib", "anon_mib", "file_mib"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = {"min": min(values), "median": statistics.median(values)} if values else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", default="openvino,onnxruntime")
    parser.add_argument("--frames", type=int, default=60, help="--max-frames of each run")
    parser.add_argument("--extra", default="", help="more kdcam start flags, space-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = parser.parse_args()
    results: dict = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": sys.executable,
                     "load_before": os.getloadavg(), "runs": a.runs, "engines": {}}
    with tempfile.TemporaryDirectory(prefix="kdcam-start-") as tmp:
        folder = Path(tmp)
        clip = make_clip(folder)
        runtime = folder / "runtime"
        runtime.mkdir(mode=0o700)
        env = {**os.environ, "KDCAM_CACHE_DIR": str(folder / "cache"), "XDG_CONFIG_HOME": str(folder / "config"),
               "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}
        for engine in a.engines.split(","):
            args = ["start", "--device", str(clip), "--no-vcam", "--max-frames", str(a.frames), "--no-panel",
                    "--engine", engine, *a.extra.split()]
            warm = run_once(args, env, folder)  # fills the model choice cache
            if warm["returncode"] != 0:
                print(f"kdcam start failed on {engine}:\n{warm['stderr']}", file=sys.stderr)
                return 1
            rows = [run_once(args, env, folder) for _ in range(a.runs)]
            bad = [r for r in rows if r["returncode"] != 0 or r["first_frame_s"] is None]
            if bad:
                print(f"kdcam start failed on {engine}:\n{bad[0]['stderr']}", file=sys.stderr)
                return 1
            results["engines"][engine] = {"command": "kdcam " + " ".join(args).replace(str(clip), "CLIP720.avi"),
                                          "summary": summarize(rows),
                                          "rows": [{k: v for k, v in r.items() if k != "stderr"} for r in rows]}
    results["load_after"] = os.getloadavg()
    print(f"CPU: {results['cpu']} ({results['cores']} cores); load average before {results['load_before'][0]:.2f}, "
          f"after {results['load_after'][0]:.2f}; {a.runs} runs per engine after a warm-up, 1280x720 MJPG clip, "
          f"--max-frames {a.frames}")
    print(f"python: {sys.executable}; min / median of each")
    print(f"{'engine':<12} {'model':<8} {'first frame s':>14} {'wall s':>12} {'max RSS MiB':>12} "
          f"{'anon MiB':>10} {'file MiB':>10}")
    for engine, r in results["engines"].items():
        s = r["summary"]
        cells = [f"{s[k]['min']:{f}} / {s[k]['median']:{f}}" for k, f in
                 (("first_frame_s", ".2f"), ("wall_s", ".2f"), ("max_rss_mib", ".0f"), ("anon_mib", ".0f"),
                  ("file_mib", ".0f"))]
        models = ",".join(sorted({str(row["model"]) for row in r["rows"]}))
        print(f"{engine:<12} {models:<8} {cells[0]:>14} {cells[1]:>12} {cells[2]:>12} {cells[3]:>10} {cells[4]:>10}")
    print(f"targets: first frame <= {TARGET_FIRST_S:g} s, max RSS <= {TARGET_RSS_MIB:g} MiB")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
