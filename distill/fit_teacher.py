"""Train or fine-tune a Restormer teacher on our degradations, with the shared training loop.

A teacher is a ``Restormer`` of a preset size (``--size tiny|small|medium|...`` from
``RESTORMER_PRESETS``) trained from scratch, or one initialised from a released ``.pth``
(``--teacher-weights``, loaded safely by ``load_official_checkpoint``) or from one of our
teacher files (``--init``), then fine-tuned. It learns to map degraded crops (default: the
``webcam`` mix) to the clean photo. The loop, checkpoints, resume, DDP, logging and plot
are those of ``distill.train.run_loop``. The results are
``RUN/teacher-{best,last}.safetensors`` written by ``save_teacher``.

Restormer works on RGB; the crops are BGR, so the channels are flipped on the way in and
out (:class:`RGBTeacher`), the same as ``distill.label.teacher_bgr`` does at label time.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.errors import KdcamError
from distill.train import LoopOptions, Task, distributed, make_patches, make_val_batch, prepare_data, run_loop


class RGBTeacher(nn.Module):
    """A Restormer seen as ``BGR [N,3,H,W] -> BGR`` (H, W multiples of 8)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        return self.model(bgr.flip(1)).flip(1)


class TeacherTask(Task):
    kind = "teacher"

    def __init__(self, *, model, criterion, dataset, val_batch, settings, card_base) -> None:
        self.model = model
        self.module = RGBTeacher(model)
        self.criterion = criterion
        self.dataset = dataset
        self.items = None
        self.val_batch = val_batch
        self.settings = settings
        self.card_base = card_base

    def loss(self, pred, batch):
        parts = self.criterion.parts(pred, batch["target"])
        total = self.criterion.combine(parts)
        logs = {k: float(v.detach()) for k, v in parts.items()}
        logs["loss"] = float(total.detach())
        return total, logs

    def finish(self, module, best_state, result):
        from distill.teacher import save_teacher

        out = Path(self.settings["out"])
        last = copy.deepcopy(module.model).cpu().eval()
        best = copy.deepcopy(module.model).cpu().eval()
        if best_state is not None:
            RGBTeacher(best).load_state_dict(best_state)
        card = {**self.card_base, "steps": result["steps"], "loss": result.get("final_loss"),
                "val_psnr": result.get("final_val_psnr"), "val_psnr_input": result.get("val_psnr_input"),
                "precision": result.get("precision")}
        paths = {"teacher_last": str(save_teacher(out / "teacher-last.safetensors", last, card={**card, "which": "last"}))}
        best_card = {**card, "which": "best" if best_state is not None else "last (no validation)",
                     "val_psnr": result.get("best_val_psnr"), "best_step": result.get("best_step")}
        paths["teacher_best"] = str(save_teacher(out / "teacher-best.safetensors", best, card=best_card))
        return paths


def build_teacher(*, size: str = "tiny", teacher_weights: str | Path | None = None, init: str | Path | None = None):
    """The starting Restormer and a description of where it came from."""
    from distill.restormer import Restormer, preset_config
    from distill.teacher import load_official_checkpoint, load_teacher

    if teacher_weights is not None and init is not None:
        raise KdcamError("pass at most one of --teacher-weights (official .pth) and --init (our teacher)")
    if teacher_weights is not None:
        return load_official_checkpoint(Path(teacher_weights).expanduser()).train(), {"init": Path(teacher_weights).name}
    if init is not None:
        return load_teacher(Path(init).expanduser()).train(), {"init": Path(init).name}
    model = Restormer(**preset_config(size))
    # Start as the identity map (the network adds its output to the image), so early
    # training never makes an image worse than its input.
    nn.init.zeros_(model.output.weight)
    if model.output.bias is not None:
        nn.init.zeros_(model.output.bias)
    return model.train(), {"init": "scratch", "size": size}


def fit_teacher(
    *,
    data: str | Path,
    out: str | Path,
    size: str = "tiny",
    teacher_weights: str | Path | None = None,
    init: str | Path | None = None,
    loss: str = "charbonnier",
    edge_weight: float = 0.0,
    freq_weight: float = 0.0,
    steps: int = 2000,
    batch_size: int = 8,
    crop: int = 128,
    lr: float = 3e-4,
    weight_decay: float = 1e-4,
    degradation: str = "webcam",
    val_every: int = 0,
    val_items: int = 16,
    val_fraction: float = 0.1,
    ckpt_every: int = 200,
    log_every: int = 10,
    seed: int = 0,
    threads: int | None = None,
    workers: int = 0,
    max_side: int | None = None,
    device: str = "auto",
    bf16: bool = False,
    amp: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a teacher; writes ``out/teacher-{best,last}.safetensors``; resumes from ``out``."""
    from distill.losses import RestorationLoss
    from distill.restormer import macs_per_pixel, num_parameters

    if crop % 8:
        raise KdcamError(f"--crop {crop} must be a multiple of 8 for the Restormer")
    if threads:
        torch.set_num_threads(int(threads))
    out = Path(out).expanduser()
    criterion = RestorationLoss(loss, edge_weight=edge_weight, freq_weight=freq_weight)
    with distributed(device) as info:
        split = prepare_data(data, val_fraction=val_fraction, seed=seed, max_side=max_side, load_val=val_every > 0)
        torch.manual_seed(seed)
        model, origin = build_teacher(size=size, teacher_weights=teacher_weights, init=init)
        if model.config.get("inp_channels") != 3 or model.config.get("out_channels") != 3 or model.config.get("dual_pixel_task"):
            raise KdcamError("the teacher must be a 3-channel image-to-image Restormer (not gray or dual-pixel)")
        dataset = make_patches(split, crop=crop, degradation=degradation, seed=seed, length=steps * batch_size)
        val_batch = make_val_batch(split, crop=crop, degradation=degradation, seed=seed, items=val_items) if val_every else None
        name = origin.get("size") or Path(origin["init"]).stem
        settings = {
            "name": f"restormer-{name}", "out": str(out), "config": model.config, "origin": origin, "loss": loss,
            "edge_weight": float(edge_weight), "freq_weight": float(freq_weight), "crop": crop,
            "degradation": degradation, "data": str(Path(data).expanduser().resolve()), "val_fraction": val_fraction,
            "val_items": val_items if val_every else 0, "max_side": max_side, "val_every": val_every,
            "ckpt_every": ckpt_every, "log_every": log_every, "threads": threads, "workers": workers,
            "progress": progress,
        }
        card_base = {
            "name": out.name, "size": origin.get("size"), "init": origin["init"], "config": model.config,
            "macs_per_pixel": macs_per_pixel(model.config)["total"], "parameters": num_parameters(model),
            "data": {"dir": str(split.root), "train_images": len(split.train_images), "val_images": len(split.val_images)},
            "degradation": degradation, "crop": crop, "loss_fn": loss, "edge_weight": float(edge_weight),
            "freq_weight": float(freq_weight), "batch_size": batch_size, "lr": lr, "seed": seed,
            "color_order": "RGB in/out (as the official Restormer)",
        }
        task = TeacherTask(model=model, criterion=criterion, dataset=dataset, val_batch=val_batch,
                           settings=settings, card_base=card_base)
        opts = LoopOptions(out=out, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           val_every=val_every, ckpt_every=ckpt_every, log_every=log_every, seed=seed,
                           workers=workers, bf16=bf16, amp=amp, progress=progress, desc=f"fit-teacher {name}")
        return run_loop(task, opts, info)
