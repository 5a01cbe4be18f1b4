"""The options of ``kdcam distill`` commands, each declared once (see ``engines.foundation.options``).

One dataclass per command (``TrainConfig``, ``TeacherConfig``, ``LabelConfig``,
``EvaluateConfig``); the groups they share are base classes. A command's typer flags,
the keyword its library function takes, the settings a run saves (and checks on resume)
and the model card all come from these fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from engines.foundation.options import default, opt
from engines.registry import ENGINE_NAMES


@dataclass(kw_only=True)
class RunConfig:
    """Where and how a command computes."""

    device: str = opt("auto", "auto, cpu or cuda.", resumable=True)
    threads: Optional[int] = opt(None, "CPU threads for torch (default: all).", resumable=True)
    progress: bool = opt(True, "Show a progress bar.", resumable=True)


@dataclass(kw_only=True)
class DataConfig:
    """Which crops: the training photos, their split, and the degraded crops cut from them.

    A label cache records these fields, and training refuses labels made with other ones."""

    data: Optional[Path] = opt(None, "Folder of training photos (never the eval set).")
    crop: int = opt(128, "Crop side in pixels.")
    degradation: str = opt("webcam", "Degradation preset of the inputs (distill/degrade.py).")
    soft_reference: float = opt(
        0.0,
        "Share of crops whose reference is itself soft (the soft-reference preset): soft "
        "content is not always a blurred frame, so a model learns when to leave a frame alone.",
    )
    seed: int = opt(0, "Seed of the data split, the crops and the initial weights.")
    val_fraction: float = opt(0.1, "Share of the photos held out for validation (by file name).")
    max_side: Optional[int] = opt(None, "Shrink photos larger than this (pixels) first.")

    def data_fields(self) -> dict[str, Any]:
        """The fields a label cache must match (the photos themselves are matched by name)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(DataConfig) if f.name != "data"}


@dataclass(kw_only=True)
class LoopConfig(DataConfig, RunConfig):
    """The resumable training loop (``distill.loop``) over crops of the training photos."""

    out: Path = opt(help="Run folder: checkpoints, log, loss curve, results. Rerun the same command to resume.")
    steps: int = opt(2000, "Optimizer steps.", resumable=True)
    batch_size: int = opt(16, "Global batch size (split over torchrun processes).")
    lr: float = opt(1e-3, "Peak learning rate (AdamW, linear warm-up, then cosine decay).")
    weight_decay: float = opt(0.0, "AdamW weight decay.")
    warmup: Optional[int] = opt(None, "Warm-up steps (default: 2% of the steps, at most 500).")
    min_lr_ratio: float = opt(0.01, "Final learning rate as a share of the peak.")
    grad_clip: Optional[float] = opt(1.0, "Clip the gradient norm to this (none: no clipping).")
    loss: str = opt("charbonnier", "Pixel loss: charbonnier, l1, or psnr (mean over images of 10 log10 MSE).")
    edge_weight: float = opt(0.0, "Weight of the Sobel edge term.")
    freq_weight: float = opt(0.0, "Weight of the FFT-magnitude term.")
    val_every: int = opt(0, "Validation PSNR every N steps on the held-out photos (0 = off).", resumable=True)
    val_items: int = opt(32, "Validation crops.", resumable=True)
    ckpt_every: int = opt(500, "Checkpoint every N steps.", resumable=True)
    log_every: int = opt(10, "Log the mean loss every N steps.", resumable=True)
    workers: int = opt(0, "Data loader worker processes.", resumable=True)
    bf16: bool = opt(False, "CPU bfloat16 autocast.")
    amp: bool = opt(True, "Mixed precision on CUDA.")


@dataclass(kw_only=True)
class TrainConfig(LoopConfig):
    """Train a student by knowledge distillation (or supervised with --alpha 0); resumable."""

    arch: Optional[str] = opt(None, "Student architecture (default: the shipped one's).")
    alpha: float = opt(0.0, "Weight of the teacher term, 0..1 (0 = ground truth only).")
    decision_weight: float = opt(
        0.0,
        "Weight of the teacher's decision term: each crop's correction strength (log RMS "
        "of output - input) matches the teacher's, so the student leaves alone what the "
        "teacher leaves alone (needs labels).",
    )
    labels: Optional[Path] = opt(None, "Label cache from `kdcam distill label`.")
    teacher: Optional[Path] = opt(None, "Teacher run on the fly instead of --labels (slow).")
    teacher_tile: Optional[int] = opt(None, "Tile size for an on-the-fly teacher.")
    items: Optional[int] = opt(None, "Distinct training items (default: fresh every step, or the label cache's).")
    footage_labels: Optional[Path] = opt(
        None,
        "Label cache of footage (`label --footage`): crops with no ground truth, the teacher's output as their target.",
    )
    footage_share: float = opt(0.25, "Share of the training items that are footage crops (with --footage-labels).")
    init: Optional[Path] = opt(
        None,
        "Start from this student checkpoint (and its architecture) instead of fresh weights: "
        "a second stage, e.g. the gate on larger crops.",
    )
    train_only: str = opt(
        "all", "Which weights train: all, or gate (the whole-frame code alone; the body stays as it is)."
    )


@dataclass(kw_only=True)
class TeacherConfig(LoopConfig):
    """Train or fine-tune a Restormer teacher on our degradations; resumable."""

    size: str = opt("tiny", "Restormer preset to train from scratch (tiny, small, medium, ...).")
    teacher_weights: Optional[Path] = opt(None, "Fine-tune from an official Restormer .pth instead.")
    init: Optional[Path] = opt(None, "Fine-tune from one of our teacher .safetensors instead.")
    batch_size: int = default(8)
    lr: float = default(3e-4)
    weight_decay: float = default(1e-4)
    val_items: int = default(16)
    ckpt_every: int = default(200)


@dataclass(kw_only=True)
class LabelConfig(DataConfig, RunConfig):
    """Cache teacher outputs for the training crops (resumable; sharded under torchrun)."""

    out: Path = opt(help="Label cache folder (pass it to `train --labels`).")
    teacher: Optional[Path] = opt(None, "Our teacher .safetensors, or an official Restormer .pth.")
    items: int = opt(1000, "How many training items to label (items 0..N-1).")
    batch_size: int = opt(8, "Crops per teacher batch.")
    tile: Optional[int] = opt(None, "Run the teacher in tiles of this size (bounds memory).")
    footage: list[Path] = opt(
        help="Label crops of these videos (or images) instead of the training photos: real "
        "frames with no ground truth (repeatable; the frames are degraded by --degradation).",
        factory=list,
    )
    footage_every: int = opt(10, "With --footage: take every N-th frame of each video.")


@dataclass(kw_only=True)
class EvaluateConfig:
    """Score teacher and students on degraded copies of clean photos (PSNR/SSIM, speed, grids)."""

    data: Optional[Path] = opt(None, "Folder of clean evaluation photos (required).")
    out: Path = opt(Path("eval-results"), "Where results.json, results.md and the grids go.")
    presets: str = opt("bicubic-x2,defocus,stream", "Comma-separated degradation presets.")
    teacher: Optional[str] = opt(None, "Our teacher .safetensors or an official .pth (NAME=PATH names its row).")
    student: list[str] = opt(help="A student checkpoint, or NAME=PATH to name its row (repeatable).", factory=list)
    engine: str = opt(
        "auto", f"Engine for the students: {', '.join(ENGINE_NAMES)}, or reference (the float PyTorch model)."
    )
    precision: str = opt(
        "fp32",
        "Precision of the student engines that have a choice (OpenVINO fp32 or bf16; auto: the "
        "engine's own). fp32 makes the scores the same on every CPU.",
    )
    max_images: Optional[int] = opt(None, "Use only the first N photos.")
    max_side: Optional[int] = opt(None, "Shrink larger photos to this side first.")
    seed: int = opt(0, "Seed of the degradations (image i uses seed * 1000003 + i).")
    tile: Optional[int] = opt(None, "Teacher tile size (bounds memory; changes its result).")
    timing: bool = opt(True, "Also time each method on a 1280x720 and a 1920x1080 frame.")
    crop_grid: bool = opt(True, "Write a crop comparison grid per preset.")
    threads: Optional[int] = opt(None, "CPU threads for torch.")

    def preset_list(self) -> list[str]:
        return [p.strip() for p in self.presets.split(",") if p.strip()]
