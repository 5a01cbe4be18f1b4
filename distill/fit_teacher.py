"""Train or fine-tune a Restormer teacher on our degradations, with the shared training loop.

A teacher is a ``Restormer`` of a preset size (``--size tiny|small|medium|...`` from
``RESTORMER_PRESETS``) trained from scratch, or one initialised from a released ``.pth``
(``--teacher-weights``, loaded safely) or from one of our teacher files (``--init``), then
fine-tuned. It learns to map degraded crops to the clean photo. The loop, checkpoints,
resume, DDP, logging and plot are those of ``distill.loop.run_loop``; the results are
``RUN/teacher-{best,last}.safetensors``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.cards import model_card
from distill.config import TeacherConfig
from distill.distributed import distributed
from distill.loop import Run, Task, run_loop
from distill.split import make_patches, make_val_batch, prepare_data
from distill.teacher import RGBTeacher, save_teacher
from engines.errors import KdcamError


class TeacherTask(Task):
    kind = "teacher"

    def __init__(self, *, name, model, criterion, dataset, val_batch, facts) -> None:
        self.name = name
        self.module = RGBTeacher(model)
        self.criterion = criterion
        self.dataset = dataset
        self.items = None
        self.val_batch = val_batch
        self.facts = facts

    def loss(self, pred, batch):
        parts = self.criterion.parts(pred, batch["target"])
        total = self.criterion.combine(parts)
        logs = {k: float(v.detach()) for k, v in parts.items()}
        logs["loss"] = float(total.detach())
        return total, logs

    def finish(self, run: Run, result: dict[str, Any]) -> dict[str, Any]:
        last = copy.deepcopy(run.module.model).cpu().eval()
        best = copy.deepcopy(last)
        if run.best_state is not None:
            RGBTeacher(best).load_state_dict(run.best_state)
        paths = {}
        for which, model in (("last", last), ("best", best)):
            card = model_card(run.settings, run.history, steps=run.step, which=which, best=which == "best")
            paths[f"teacher_{which}"] = str(save_teacher(run.out / f"teacher-{which}.safetensors", model, card=card))
        return paths


def build_teacher(config: TeacherConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The starting Restormer and where it came from."""
    from distill.official_weights import load_official_checkpoint
    from distill.restormer import Restormer, preset_config
    from distill.teacher import load_teacher

    if config.teacher_weights is not None and config.init is not None:
        raise KdcamError("pass at most one of --teacher-weights (official .pth) and --init (our teacher)")
    if config.teacher_weights is not None:
        path = Path(config.teacher_weights).expanduser()
        return load_official_checkpoint(path).train(), {"init": path.name}
    if config.init is not None:
        path = Path(config.init).expanduser()
        return load_teacher(path).train(), {"init": path.name}
    model = Restormer(**preset_config(config.size))
    # Start as the identity map (the network adds its output to the image), so early
    # training never makes an image worse than its input.
    nn.init.zeros_(model.output.weight)
    if model.output.bias is not None:
        nn.init.zeros_(model.output.bias)
    return model.train(), {"init": "scratch", "size": config.size}


def fit_teacher(config: TeacherConfig) -> dict[str, Any]:
    """Train a teacher; writes ``out/teacher-{best,last}.safetensors``; resumes from ``out``."""
    from distill.losses import RestorationLoss
    from distill.restormer import num_parameters, restormer_macs_per_pixel

    if config.crop % 8:
        raise KdcamError(f"--crop {config.crop} must be a multiple of 8 for the Restormer")
    if config.threads:
        torch.set_num_threads(int(config.threads))
    criterion = RestorationLoss(config.loss, edge_weight=config.edge_weight, freq_weight=config.freq_weight)
    with distributed(config.device) as info:
        split = prepare_data(config, load_val=config.val_every > 0)
        torch.manual_seed(config.seed)
        model, origin = build_teacher(config)
        if (
            model.config.get("inp_channels") != 3
            or model.config.get("out_channels") != 3
            or model.config.get("dual_pixel_task")
        ):
            raise KdcamError("the teacher must be a 3-channel image-to-image Restormer (not gray or dual-pixel)")
        dataset = make_patches(split, config, length=config.steps * config.batch_size)
        val_batch = make_val_batch(split, config, items=config.val_items) if config.val_every else None
        name = f"restormer-{origin.get('size') or Path(origin['init']).stem}"
        facts = {
            "config": model.config,
            "origin": origin,
            "size": origin.get("size"),
            "init": origin["init"],
            "parameters": num_parameters(model),
            "macs_per_pixel": restormer_macs_per_pixel(model.config)["total"],
            "data": str(Path(config.data).expanduser().resolve()),
            "data_split": split.describe(),
            "color_order": "RGB in/out (as the official Restormer)",
        }
        task = TeacherTask(
            name=name, model=model, criterion=criterion, dataset=dataset, val_batch=val_batch, facts=facts
        )
        return run_loop(task, config, info)
