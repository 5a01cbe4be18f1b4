"""``kdcam distill``: fit a teacher, label crops, train a student, evaluate, export.

Thin typer wrappers over keyword-only functions (``distill.train.train_student``,
``distill.fit_teacher.fit_teacher``, ``distill.label.label``, ``evaluate_models`` here and
``distill.export.export_student``). Also runnable as ``python -m distill.cli`` (for
``torchrun --nproc_per_node N -m distill.cli train ...``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from distill.errors import KdcamError

app = typer.Typer(
    name="distill",
    help="Train and ship the student: fit-teacher, label, train, evaluate, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _print_json(data: dict) -> None:
    if _rank0():
        typer.echo(json.dumps(data, indent=2, default=str))


# --------------------------------------------------------------------------- train


@app.command("train")
def train_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of training photos (never the eval set)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, log, loss curve, final students. Rerun to resume."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Student architecture (default: the shipped one)."),
    alpha: float = typer.Option(0.0, "--alpha", help="Weight of the teacher term, 0..1 (0 = supervised only)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Label cache from `kdcam distill label`."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Teacher run on the fly instead of --labels (slow)."),
    loss: str = typer.Option("charbonnier", "--loss", help="Pixel loss: charbonnier or l1."),
    edge_weight: float = typer.Option(0.0, "--edge-weight", help="Weight of the Sobel edge term."),
    freq_weight: float = typer.Option(0.0, "--freq-weight", help="Weight of the FFT-magnitude term."),
    steps: int = typer.Option(2000, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(16, "--batch-size", help="Global batch size (split over torchrun processes)."),
    crop: int = typer.Option(128, "--crop", help="Training crop side in pixels."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, warm-up then cosine decay)."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="AdamW weight decay."),
    degradation: str = typer.Option("webcam", "--degradation", help="Degradation preset of the inputs."),
    items: Optional[int] = typer.Option(None, "--items", help="Distinct training items (default: fresh every step, or the label cache's)."),
    val_every: int = typer.Option(0, "--val-every", help="Validation PSNR every N steps on held-out photos (0 = off)."),
    val_items: int = typer.Option(32, "--val-items", help="Validation crops."),
    ckpt_every: int = typer.Option(500, "--ckpt-every", help="Checkpoint every N steps."),
    log_every: int = typer.Option(10, "--log-every", help="Log the mean loss every N steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data split, crops and init."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    workers: int = typer.Option(0, "--workers", help="Data loader worker processes."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Shrink photos larger than this (pixels)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    bf16: bool = typer.Option(False, "--bf16", help="CPU bfloat16 autocast."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA."),
    teacher_tile: Optional[int] = typer.Option(None, "--teacher-tile", help="Tile size for an on-the-fly teacher."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a student by knowledge distillation (or supervised with --alpha 0); resumable."""
    from distill.train import train_student

    result = train_student(
        data=data, out=out, arch=arch, alpha=alpha, labels=labels, teacher=teacher, loss=loss,
        edge_weight=edge_weight, freq_weight=freq_weight, steps=steps, batch_size=batch_size, crop=crop, lr=lr,
        weight_decay=weight_decay, degradation=degradation, items=items, val_every=val_every, val_items=val_items,
        ckpt_every=ckpt_every, log_every=log_every, seed=seed, threads=threads, workers=workers, max_side=max_side,
        device=device, bf16=bf16, amp=amp, teacher_tile=teacher_tile, progress=progress,
    )
    _print_json(result)


# --------------------------------------------------------------------------- fit-teacher


@app.command("fit-teacher")
def fit_teacher_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of training photos (never the eval set)."),
    out: Path = typer.Option(..., "--out", help="Run folder; rerun the same command to resume."),
    size: str = typer.Option("tiny", "--size", help="Restormer preset to train from scratch (tiny, small, medium, ...)."),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights", help="Fine-tune from an official .pth instead."),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune from one of our teacher .safetensors."),
    loss: str = typer.Option("charbonnier", "--loss", help="charbonnier or l1."),
    edge_weight: float = typer.Option(0.0, "--edge-weight"),
    freq_weight: float = typer.Option(0.0, "--freq-weight"),
    steps: int = typer.Option(2000, "--steps"),
    batch_size: int = typer.Option(8, "--batch-size", help="Global batch size."),
    crop: int = typer.Option(128, "--crop", help="Crop side (multiple of 8)."),
    lr: float = typer.Option(3e-4, "--lr"),
    weight_decay: float = typer.Option(1e-4, "--weight-decay"),
    degradation: str = typer.Option("webcam", "--degradation"),
    val_every: int = typer.Option(0, "--val-every"),
    val_items: int = typer.Option(16, "--val-items"),
    ckpt_every: int = typer.Option(200, "--ckpt-every"),
    log_every: int = typer.Option(10, "--log-every"),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    workers: int = typer.Option(0, "--workers"),
    max_side: Optional[int] = typer.Option(None, "--max-side"),
    device: str = typer.Option("auto", "--device"),
    bf16: bool = typer.Option(False, "--bf16", help="CPU bfloat16 autocast."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train or fine-tune a Restormer teacher on our degradations; resumable."""
    from distill.fit_teacher import fit_teacher

    result = fit_teacher(
        data=data, out=out, size=size, teacher_weights=teacher_weights, init=init, loss=loss,
        edge_weight=edge_weight, freq_weight=freq_weight, steps=steps, batch_size=batch_size, crop=crop, lr=lr,
        weight_decay=weight_decay, degradation=degradation, val_every=val_every, val_items=val_items,
        ckpt_every=ckpt_every, log_every=log_every, seed=seed, threads=threads, workers=workers, max_side=max_side,
        device=device, bf16=bf16, amp=amp, progress=progress,
    )
    _print_json(result)


# --------------------------------------------------------------------------- label


@app.command("label")
def label_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="The training photos (same as for train)."),
    out: Path = typer.Option(..., "--out", help="Label cache folder (pass it to train --labels)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Our teacher .safetensors (or an official .pth)."),
    teacher_weights: Optional[Path] = typer.Option(None, "--teacher-weights", help="An official Restormer .pth."),
    items: int = typer.Option(1000, "--items", help="How many training items to label (0..N-1)."),
    crop: int = typer.Option(128, "--crop"),
    degradation: str = typer.Option("webcam", "--degradation"),
    seed: int = typer.Option(0, "--seed"),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    max_side: Optional[int] = typer.Option(None, "--max-side"),
    batch_size: int = typer.Option(8, "--batch-size"),
    tile: Optional[int] = typer.Option(None, "--tile", help="Run the teacher in tiles of this size."),
    device: str = typer.Option("auto", "--device"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Cache teacher outputs for the training crops (resumable; sharded under torchrun)."""
    from distill.label import label

    result = label(
        data=data, out=out, teacher=teacher, teacher_weights=teacher_weights, items=items, crop=crop,
        degradation=degradation, seed=seed, val_fraction=val_fraction, max_side=max_side, batch_size=batch_size,
        tile=tile, device=device, threads=threads, progress=progress,
    )
    _print_json(result)


# --------------------------------------------------------------------------- evaluate


def _student_method(path: Path, engine: str) -> tuple[str, Callable]:
    """A student as an evaluation row: run by an inference engine, as it ships (uint8 frames
    in and out), or with ``engine="reference"`` as the float PyTorch model."""
    import numpy as np

    from distill.checkpoint import read_metadata, resolve_model_path

    path = resolve_model_path(path)
    name = str((read_metadata(path).get("card") or {}).get("name") or path.stem)
    if engine != "reference":
        import cv2

        from engines import create_engine

        runtime = create_engine(engine, model=path)

        def run_engine(bgr: np.ndarray) -> np.ndarray:
            return runtime.sharpen(cv2.convertScaleAbs(bgr, alpha=255.0))  # rounds and saturates to uint8

        return name, run_engine
    import torch

    from distill.checkpoint import load_student

    student = load_student(path)[0].collapse().eval()

    def method(bgr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]
            y = student.restore_bgr(x).clamp_(0.0, 1.0)
        return y[0].numpy().transpose(1, 2, 0)

    return name, method


def _teacher_method(path: Path, tile: int | None) -> tuple[str, Callable]:
    import numpy as np
    import torch

    from distill.label import load_any_teacher, teacher_bgr

    model, desc = load_any_teacher(path)

    def method(bgr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]
        return teacher_bgr(model, x, tile=tile)[0].numpy().transpose(1, 2, 0)

    return f"teacher:{Path(desc['file']).stem}", method


def _labelled(entry: str | Path) -> tuple[str | None, Path]:
    """``"NAME=PATH"`` -> (NAME, PATH); a plain path -> (None, path), named by its model card."""
    text = str(entry)
    if "=" in text and not Path(text).exists():
        label, _, path = text.partition("=")
        if label.strip() and path:
            return label.strip(), Path(path)
    return None, Path(text)


def evaluate_models(
    *,
    data: str | Path | None,
    out: str | Path,
    presets: list[str] | str = ("bicubic-x2", "defocus", "stream"),
    teacher: str | Path | None = None,
    students: list[str | Path] = (),
    max_images: int | None = None,
    seed: int = 0,
    tile: int | None = None,
    time_720p: bool = True,
    crop_grid: bool = True,
    max_side: int | None = None,
    threads: int | None = None,
    engine: str = "auto",
) -> dict[str, Any]:
    """Score the teacher and students (and the builtin rows) with ``distill.evaluate.evaluate``.

    Students run on ``engine`` (an engine name, ``auto``, or ``reference`` for the float
    PyTorch model); the teacher always runs in PyTorch."""
    import torch

    from distill.evaluate import evaluate

    if data is None:
        raise KdcamError("pass --data DIR, the folder of evaluation photos (e.g. ../shared/data/eval)")
    if isinstance(presets, str):
        presets = [p.strip() for p in presets.split(",") if p.strip()]
    if threads:
        torch.set_num_threads(int(threads))
    methods: dict[str, Callable] = {}
    if teacher is not None:
        label, path = _labelled(teacher)
        name, fn = _teacher_method(path, tile)
        methods[label or name] = fn
    for entry in students:
        label, path = _labelled(entry)
        name, fn = _student_method(path, engine)
        name = label or name
        base, k = name, 2
        while name in methods:
            name, k = f"{base}-{k}", k + 1
        methods[name] = fn
    return evaluate(images_dir=data, presets=list(presets), methods=methods, max_images=max_images, out_dir=out,
                    seed=seed, crop_grid=crop_grid, time_720p=time_720p, max_side=max_side)


@app.command("evaluate")
def evaluate_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of clean evaluation photos (required)."),
    out: Path = typer.Option(Path("eval-results"), "--out", help="Where results.json/.md and grids go."),
    presets: str = typer.Option("bicubic-x2,defocus,stream", "--presets", help="Comma-separated degradation presets."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Our teacher .safetensors or an official .pth (NAME=PATH names its row)."),
    student: list[str] = typer.Option([], "--student", help="A student checkpoint, or NAME=PATH to name its row (repeatable)."),
    max_images: Optional[int] = typer.Option(None, "--max-images"),
    seed: int = typer.Option(0, "--seed"),
    tile: Optional[int] = typer.Option(None, "--tile", help="Teacher tile size (bounds memory)."),
    time_720p: bool = typer.Option(True, "--time-720p/--no-time-720p", help="Also time each method on a 720p frame."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Shrink larger photos to this side first."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    engine: str = typer.Option("auto", "--engine", help="Engine for the students (auto, a name, or reference: float PyTorch)."),
) -> None:
    """Score teacher and students on degraded copies of clean photos (PSNR/SSIM, speed, grids)."""
    evaluate_models(data=data, out=out, presets=presets, teacher=teacher, students=list(student),
                    max_images=max_images, seed=seed, tile=tile, time_720p=time_720p, max_side=max_side,
                    threads=threads, engine=engine)
    typer.echo(f"results in {out}/results.md")


# --------------------------------------------------------------------------- export


@app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "--output", help="The shipped checkpoint, PATH.safetensors (+ .json, .onnx)."),
    run: Optional[Path] = typer.Option(None, "--run", help="A run folder of `kdcam distill train`."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A student or training checkpoint instead."),
    which: str = typer.Option("best", "--which", help="From a run: best (by val PSNR) or last."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Also write the ONNX file beside it."),
) -> None:
    """Write the collapsed student, its model card and its ONNX file."""
    from distill.export import export_student

    result = export_student(output=output, run=run, checkpoint=checkpoint, which=which, onnx=onnx)
    typer.echo(f"wrote {result['checkpoint']}")
    typer.echo(f"wrote {result['json']}")
    if result["onnx"]:
        typer.echo(f"wrote {result['onnx']}")


def main() -> None:
    from vcam.cli import run_app

    run_app(app)


if __name__ == "__main__":
    main()
