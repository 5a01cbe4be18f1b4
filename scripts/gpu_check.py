"""GPU benchmark and correctness check for kdcam's GPU engines (one run, under 8 minutes).

Measures, in one process on one GPU:

* frames per second of the PyTorch CUDA engine (fp16, channels_last, CUDA graph) at
  1280x720, 1920x1080 and 3840x2160 for the default student and the seed-style SRCNN
  reference (``srcnn-955``, random weights); "end to end" is ``engine.sharpen`` on a host
  frame (upload, graph, download, both host copies), "device only" is the GPU work alone;
* the same for TensorRT when ``tensorrt`` imports (one engine per model, optimized for
  1080p, accepting up to 4K);
* the Restormer teacher at 1280x720 (fp16 autocast, eager), when ``distill.restormer``
  imports;
* the output difference of every GPU engine against the CPU engine (onnxruntime, else
  torch CPU) on the same 720p frame: max and mean absolute uint8 difference.

Results go to ``gpu_check.json`` and ``gpu_check.md`` in ``--out`` (default ``$OUT``),
rewritten after every measurement, so a run cut short still leaves what it measured.

    bash scripts/gpu_check.sh                         # on the GPU machine
    python scripts/gpu_check.py --device cpu --dry-run --out /tmp/gc   # quick CPU rehearsal
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.model.checkpoint import DEFAULT_MODEL, load_student, save_student  # noqa: E402
from engines.model.students import DEFAULT_STUDENT, create_student  # noqa: E402
from engines.foundation.timing import time_fps

SIZES = [(1280, 720), (1920, 1080), (3840, 2160)]
DRY_SIZES = [(128, 72), (192, 108), (384, 216)]  # same code path, 1/10 of each side
TARGET_FPS_1080P = 1000.0


# --- inputs ------------------------------------------------------------------------------------


def test_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic, photo-like BGR frame: smooth gradients, soft texture and edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), 0.5 + 0.5 * np.sin(xx / 37 + yy / 53)], -1)
    noise = cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 2.0)
    img = 0.6 * base + 0.4 * noise
    step = max(8, min(width, height) // 12)
    img[(xx.astype(int) // step + yy.astype(int) // step) % 7 == 0] *= 0.5  # hard edges
    img = cv2.GaussianBlur(img, (0, 0), 1.2)  # a little blur for the model to undo
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def prepare_models(workdir: Path, notes: list[str]) -> list[tuple[str, Path]]:
    """(label, checkpoint path) of the default student and the SRCNN reference."""
    models = []
    if DEFAULT_MODEL.is_file():
        _, meta = load_student(DEFAULT_MODEL)
        models.append((f"default student ({meta['arch']}, shipped weights)", DEFAULT_MODEL))
    else:
        torch.manual_seed(0)
        student = create_student(DEFAULT_STUDENT)
        with torch.no_grad():  # the last conv starts at zero; perturb so outputs differ from inputs
            for p in student.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        path = save_student(
            student, workdir / f"{DEFAULT_STUDENT}-random.safetensors", card={"note": "gpu_check random weights"}
        )
        models.append((f"default student ({DEFAULT_STUDENT}, random weights)", path))
        notes.append(
            f"The trained default model ({DEFAULT_MODEL}) is not in this checkout; the default architecture "
            f"{DEFAULT_STUDENT} ran with random weights (same speed; output differences are still meaningful)."
        )
    torch.manual_seed(1)
    srcnn = create_student("srcnn-955")
    models.append(
        (
            "srcnn-955 (seed-style reference, random weights)",
            save_student(srcnn, workdir / "srcnn-955-random.safetensors"),
        )
    )
    return models


# --- measuring ---------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_engine(engine, frame: np.ndarray, seconds: float) -> dict:
    """End-to-end fps (host frame in, host frame out) and device-only fps."""
    out = np.empty_like(frame)
    for _ in range(3):  # allocation, capture / first-run work, warm-up
        engine.sharpen(frame, out=out)
    e2e = time_fps(
        lambda: engine.sharpen(frame, out=out), warmup=0, min_runs=3, min_seconds=seconds, max_seconds=seconds
    )
    probe = engine.time_device(3)
    iters = int(min(max(seconds / max(probe, 1e-6), 3), 5000))
    dev = 1.0 / engine.time_device(iters)
    return {"e2e_fps": e2e, "device_fps": dev, "device_frames": iters}


def diff_stats(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"max_abs": int(d.max()), "mean_abs": float(d.mean()), "frac_differing": float((d > 0).mean())}


def cpu_reference(model_path: Path, frame: np.ndarray) -> tuple[str, np.ndarray]:
    from engines.registry import create_engine, engine_status

    name = "onnxruntime" if engine_status().get("onnxruntime") is None else "torch"
    with create_engine(name, model=model_path, quiet=True) as cpu:
        return cpu.describe(), cpu.sharpen(frame).copy()


def teacher_row(device: torch.device, size: tuple[int, int], seconds: float, dry_run: bool) -> dict:
    try:
        from distill.restormer import Restormer
    except ImportError as err:
        return {"skipped": f"distill.restormer is not available ({err})"}
    if dry_run:
        from distill.restormer import preset_config

        model, label = Restormer(**preset_config("tiny")), "Restormer (tiny preset: dry run)"
    else:
        model, label = Restormer(), "Restormer (official motion-deblurring size, random weights)"
    model = model.to(device).eval()
    w, h = size
    x = torch.from_numpy(test_frame(w, h)).to(device).permute(2, 0, 1).unsqueeze(0).float() / 255
    # autocast keeps norms and reductions in fp32 (the attention L2-normalizes over all
    # pixels, which would overflow in plain fp16)
    amp = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        fps = time_fps(
            lambda: (model(x), sync(device)),
            warmup=2,
            min_runs=2,
            min_seconds=seconds,
            max_seconds=seconds,
            max_runs=200,
        )
    row = {
        "model": label,
        "engine": f"torch eager ({'fp16 autocast' if device.type == 'cuda' else 'fp32'})",
        "size": f"{w}x{h}",
        "device_fps": fps,
    }
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del model, x
    return row


# --- reporting ---------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        env.update(
            gpu=torch.cuda.get_device_name(device),
            compute_capability=f"{major}.{minor}",
            cudnn=torch.backends.cudnn.version(),
        )
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError:
        env["tensorrt"] = None
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        env["onnxruntime"] = None
    return env


def render_markdown(res: dict) -> str:
    env = res["environment"]
    lines = [
        "# kdcam GPU check",
        "",
        f"- GPU: {env.get('gpu', 'none (' + env['device'] + ')')}, compute capability "
        f"{env.get('compute_capability', '-')}",
        f"- torch {env['torch']} (CUDA {env['torch_cuda']}), TensorRT {env['tensorrt'] or 'not installed'}, "
        f"onnxruntime {env['onnxruntime'] or 'not installed'}, Python {env['python']}, {env['cpu_count']} CPUs",
        f"- mode: {'DRY RUN (tiny frames, not a benchmark)' if res['dry_run'] else 'full'}; {res['seconds']} "
        "s per measurement; "
        f"wall time {res.get('wall_s', 0):.0f} s",
        "",
        "## Speed",
        "",
        "End to end: `engine.sharpen()` on a host frame (copy into pinned memory, upload, graph, download, copy out).",
        "Device only: the GPU work of one frame, back to back (no host copies).",
        "",
        "| model | engine | frame | end-to-end fps | device-only fps | device ms/frame |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in res["speed"]:
        if "skipped" in r:
            lines.append(
                f"| {r.get('model', '')} | {r.get('engine', '')} | {r.get('size', '')} | skipped: {r['skipped']} | | |"
            )
            continue
        e2e = f"{r['e2e_fps']:,.0f}" if "e2e_fps" in r else "-"
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['size']} | {e2e} | {r['device_fps']:,.1f} | "
            f"{1000 / r['device_fps']:.3f} |"
        )
    lines += ["", "## GPU output versus the CPU engine (uint8 levels, same frame, strength 1)", ""]
    lines += [
        "| model | GPU engine | CPU engine | frame | max abs | mean abs | pixels differing |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for d in res["diffs"]:
        lines.append(
            f"| {d['model']} | {d['engine']} | {d['cpu_engine']} | {d['size']} | {d['max_abs']} | "
            f"{d['mean_abs']:.4f} | {100 * d['frac_differing']:.2f}% |"
        )
    if res.get("target"):
        lines += ["", "## Target", "", res["target"]]
    if res["notes"] or res["errors"]:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in res["notes"]]
        lines += [f"- error: {e}" for e in res["errors"]]
    return "\n".join(lines) + "\n"


def save(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "gpu_check.md").write_text(render_markdown(res))


def target_line(res: dict, label: str, size: tuple[int, int]) -> str | None:
    rows = [
        r
        for r in res["speed"]
        if r.get("model") == label and r.get("size") == f"{size[0]}x{size[1]}" and "device_fps" in r
    ]
    if not rows:
        return None
    parts = []
    for r in rows:
        for key, what in (("device_fps", "device only"), ("e2e_fps", "end to end")):
            if key in r:
                ok = "meets" if r[key] >= TARGET_FPS_1080P else "misses"
                parts.append(f"{r['engine']} {what}: {r[key]:,.0f} fps ({ok})")
    return f"Default student at {size[0]}x{size[1]}, target >= {TARGET_FPS_1080P:,.0f} fps: " + "; ".join(parts) + "."


# --- main --------------------------------------------------------------------------------------


class GpuCheck:
    """One run: the engines of every model at every size, the teacher, then TensorRT."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args, self.device = args, device
        self.t0 = time.perf_counter()
        self.seconds = args.seconds if args.seconds is not None else (0.1 if args.dry_run else 2.0)
        self.sizes = DRY_SIZES if args.dry_run else SIZES
        self.res: dict = {
            "environment": environment(device),
            "dry_run": args.dry_run,
            "seconds": self.seconds,
            "speed": [],
            "diffs": [],
            "notes": [],
            "errors": [],
        }
        from engines.tensorrt_common import availability as trt_availability

        self.trt_why = (
            "disabled (--no-tensorrt)"
            if args.no_tensorrt
            else "TensorRT needs --device cuda"
            if device.type != "cuda"
            else trt_availability()
        )
        if self.trt_why is not None:
            self.res["notes"].append(f"TensorRT rows skipped: {self.trt_why}")
        self.diff_size = self.sizes[0]
        self.diff_frame = test_frame(*self.diff_size, seed=3)
        self.cpu_refs: dict[str, tuple[str, np.ndarray] | None] = {}

    def over_budget(self) -> bool:
        return time.perf_counter() - self.t0 > self.args.budget

    def save(self) -> None:
        save(self.res, self.args.out)

    def engines_for(self, label: str, path: Path):
        """(engine label, factory) pairs for one model."""
        from engines.torch_engine import TorchCudaEngine

        student, _ = load_student(path)
        if self.device.type == "cuda":
            yield "torch-cuda (fp16, channels_last, CUDA graph)", lambda: TorchCudaEngine(student=student)
        else:  # fp16 convolutions are very slow on CPUs; the rehearsal runs the same path in fp32
            yield (
                "torch-cuda code path on CPU (fp32, channels_last)",
                (lambda: TorchCudaEngine(student=student, device="cpu", dtype=torch.float32)),
            )
        if self.trt_why is None:
            yield "tensorrt (fp16)", lambda: self.tensorrt_engine(label, path, student.multiple)

    def tensorrt_engine(self, label: str, path: Path, multiple: int):
        from engines.tensorrt_build import build_engine
        from engines.tensorrt_engine import TensorRTEngine

        t = time.perf_counter()
        lo, hi = self.sizes[0], self.sizes[-1]
        engine_path = build_engine(
            model=path,
            size=self.sizes[1],
            min_size=(lo[0] // 2, lo[1] // 2),
            max_size=hi,
            precision="fp16",
            progress=False,
        )
        self.res["notes"].append(
            f"TensorRT engine for {label}: built in {time.perf_counter() - t:.0f} s ({engine_path.name})"
        )
        return TensorRTEngine(engine_path=engine_path, multiple=multiple)

    def cpu_reference(self, label: str, path: Path) -> None:
        try:
            self.cpu_refs[label] = cpu_reference(path, self.diff_frame)
        except Exception as err:  # keep measuring speed even if the CPU side fails
            self.cpu_refs[label] = None
            self.res["errors"].append(f"CPU reference for {label}: {err}")

    def run_engine(self, label: str, engine_label: str, factory) -> None:
        if self.over_budget():
            self.res["notes"].append(f"time budget reached: skipped {engine_label} for {label}")
            return
        try:
            engine = factory()
        except Exception as err:
            self.res["errors"].append(f"{engine_label} for {label} could not start: {err}")
            traceback.print_exc()
            self.save()
            return
        with engine:
            if self.cpu_refs.get(label) is not None:
                cpu_name, cpu_out = self.cpu_refs[label]
                got = engine.sharpen(self.diff_frame).copy()
                self.res["diffs"].append(
                    {
                        "model": label,
                        "engine": engine_label,
                        "cpu_engine": cpu_name,
                        "size": f"{self.diff_size[0]}x{self.diff_size[1]}",
                        **diff_stats(got, cpu_out),
                    }
                )
            for w, h in self.sizes:
                self.measure(label, engine_label, engine, w, h)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def measure(self, label: str, engine_label: str, engine, w: int, h: int) -> None:
        row = {"model": label, "engine": engine_label, "size": f"{w}x{h}"}
        if self.over_budget():
            self.res["speed"].append({**row, "skipped": "time budget reached"})
            return
        try:
            row.update(measure_engine(engine, test_frame(w, h), self.seconds))
        except Exception as err:
            row["skipped"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            traceback.print_exc()
        self.res["speed"].append(row)
        print(f"gpu_check: {row}", file=sys.stderr)
        self.save()

    def run_teacher(self) -> None:
        if self.args.no_teacher:
            self.res["notes"].append("teacher row skipped (--no-teacher)")
            return
        if self.over_budget():
            self.res["notes"].append("teacher row skipped: time budget reached")
            return
        try:
            row = teacher_row(self.device, self.sizes[0], self.seconds, self.args.dry_run)
        except torch.cuda.OutOfMemoryError as err:
            row = {"skipped": f"out of GPU memory ({str(err).splitlines()[0]})"}
        except Exception as err:
            row = {"skipped": f"{type(err).__name__}: {err}"}
            traceback.print_exc()
        if "skipped" in row:
            self.res["notes"].append(f"teacher (Restormer) row skipped: {row['skipped']}")
        else:
            self.res["speed"].append(row)
        self.save()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def run(self, models: list[tuple[str, Path]]) -> int:
        for label, path in models:
            self.cpu_reference(label, path)
        # Order: the PyTorch engine for every model, the teacher, then TensorRT (its builds
        # are the slow, least predictable part; the time budget cuts from the end).
        plan = [(label, name, factory) for label, path in models for name, factory in self.engines_for(label, path)]
        for label, name, factory in plan:
            if not name.startswith("tensorrt"):
                self.run_engine(label, name, factory)
        self.run_teacher()
        for label, name, factory in plan:
            if name.startswith("tensorrt"):
                self.run_engine(label, name, factory)
        self.res["target"] = target_line(self.res, models[0][0], self.sizes[1])
        if self.args.dry_run and self.res["target"]:
            self.res["target"] += " (dry run: tiny frames, the numbers mean nothing)"
        self.res["wall_s"] = time.perf_counter() - self.t0
        self.save()
        print((self.args.out / "gpu_check.md").read_text())
        return 1 if self.res["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"))
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument(
        "--dry-run", action="store_true", help="tiny frames and short timings: exercise the code path quickly"
    )
    ap.add_argument("--seconds", type=float, default=None, help="time per measurement (default 2, dry run 0.1)")
    ap.add_argument(
        "--budget", type=float, default=420.0, help="stop starting new measurements after this many seconds"
    )
    ap.add_argument("--no-tensorrt", action="store_true")
    ap.add_argument("--no-teacher", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
            "use --device cpu --dry-run to rehearse",
            file=sys.stderr,
        )
        return 2
    check = GpuCheck(args, device)
    workdir = Path(tempfile.mkdtemp(prefix="kdcam-gpu-check-"))
    os.environ["KDCAM_CACHE_DIR"] = str(workdir / "cache")  # ONNX exports and engines stay out of ~/.cache
    return check.run(prepare_models(workdir, check.res["notes"]))


if __name__ == "__main__":
    sys.exit(main())
