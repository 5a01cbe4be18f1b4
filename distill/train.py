"""Student training by knowledge distillation, on the shared loop (``distill.loop``).

The student minimises ``alpha * L(student, teacher) + (1 - alpha) * L(student, gt)``
(``distill.losses.DistillLoss``). Teacher outputs come from a label cache written by
``kdcam distill label`` (matched by item index), or from a teacher run on the fly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from distill.cards import model_card
from distill.config import TrainConfig
from distill.distributed import distributed
from distill.loop import Run, Task, run_loop
from distill.split import make_patches, make_val_batch, prepare_data
from engines.atomic import file_sha256
from engines.errors import KdcamError
from engines.model.checkpoint import load_student, resolve_model_path, save_student
from engines.model.students import DEFAULT_STUDENT, STUDENTS, create_student, student_macs_per_pixel


class BGRStudent(nn.Module):
    """A student seen as ``BGR [N,3,H,W] -> restored BGR`` (what DDP wraps and the loss sees)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        return self.student.restore_bgr(bgr)


class LabeledItems(Dataset):
    """Patch items with the cached teacher output of the same index added as ``"teacher"``."""

    def __init__(self, base: Dataset, labels: Any) -> None:
        self.base, self.labels = base, labels

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        item["teacher"] = self.labels.read(index)
        return item


class StudentTask(Task):
    kind = "student"

    def __init__(self, *, student, criterion, dataset, items, val_batch, facts, teacher_model=None, tile=None) -> None:
        self.name = student.arch
        self.module = BGRStudent(student)
        self.criterion = criterion
        self.dataset = dataset
        self.items = items
        self.val_batch = val_batch
        self.facts = facts
        self.teacher_model = teacher_model  # only when the teacher runs on the fly
        self.tile = tile

    def prepare(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        batch = super().prepare(batch, device)
        if self.teacher_model is not None:
            from distill.teacher import teacher_bgr

            batch["teacher"] = teacher_bgr(self.teacher_model, batch["input"], tile=self.tile)
        return batch

    def loss(self, pred, batch):
        return self.criterion(
            pred, batch["target"], batch.get("teacher") if self.criterion.needs_teacher else None, batch["input"]
        )

    def finish(self, run: Run, result: dict[str, Any]) -> dict[str, Any]:
        last = copy.deepcopy(run.module.student).cpu().eval()
        best = copy.deepcopy(last)
        if run.best_state is not None:
            BGRStudent(best).load_state_dict(run.best_state)
        plain = last.collapse()
        settings = {
            **run.settings,
            "macs_per_pixel": student_macs_per_pixel(plain),
            "parameters": sum(p.numel() for p in plain.parameters()),
        }
        paths = {}
        for which, model in (("last", last), ("best", best)):
            card = model_card(settings, run.history, steps=run.step, which=which, best=which == "best")
            paths[f"student_{which}"] = str(save_student(model, run.out / f"student-{which}.safetensors", card=card))
        return paths


def _labels_for(config: TrainConfig, criterion):
    """The label cache of ``config.labels``, checked against this run's options (or None)."""
    from distill.label import open_labels

    if config.labels is None:
        return None
    cache = open_labels(config.labels)
    cache.check_matches(config)
    if config.items is not None and config.items != cache.items:
        raise KdcamError(
            f"--items {config.items} differs from the label cache ({cache.items} items); leave --items out"
        )
    if criterion.needs_teacher:
        cache.check_complete()
    return cache


def _with_footage(dataset: Dataset, config: TrainConfig, *, with_teacher: bool) -> Dataset:
    """Mix crops of real footage, labelled by the teacher only, into ``dataset`` (``distill.footage``)."""
    from distill.footage import FootageMix, footage_frames, footage_patches
    from distill.label import open_labels

    cache = open_labels(config.footage_labels)
    m = cache.manifest
    if "footage" not in m:
        raise KdcamError(
            f"{config.footage_labels}: not a footage label cache (made without --footage); pass it as --labels"
        )
    if m["crop"] != config.crop:
        raise KdcamError(
            f"{config.footage_labels}: footage crops are {m['crop']} px, training crops {config.crop}; relabel"
        )
    cache.check_complete()
    frames = footage_frames(m["footage"], every=m["footage_every"])
    footage = footage_patches(frames, crop=m["crop"], degradation=m["degradation"], seed=m["seed"], length=cache.items)
    return FootageMix(dataset, footage, cache, share=config.footage_share, with_teacher=with_teacher)


#: --train-only choices -> the parameters (of a student) that train
TRAIN_ONLY = ("all", "gate")


def _initial_student(config: TrainConfig):
    """The student to train (fresh weights of ``--arch``, or ``--init``'s checkpoint, with
    everything but ``--train-only``'s part frozen) and the card of the stage it continues."""
    if config.train_only not in TRAIN_ONLY:
        raise KdcamError(f"--train-only {config.train_only!r}: choose one of {', '.join(TRAIN_ONLY)}")
    previous = None
    if config.init is None:
        arch = config.arch or DEFAULT_STUDENT
        if arch not in STUDENTS:
            raise KdcamError(f"unknown student '{arch}'; choose one of: {', '.join(STUDENTS)}")
        torch.manual_seed(config.seed)
        student = create_student(arch)
    else:
        student, meta = load_student(config.init)
        previous = meta["card"]
        if config.arch is not None and config.arch != meta["arch"]:
            raise KdcamError(
                f"--arch {config.arch} differs from --init's architecture ({meta['arch']}); leave --arch out"
            )
        student.train()
    if config.train_only == "gate":
        if getattr(student, "code", None) is None:
            raise KdcamError(f"--train-only gate: {student.arch} has no whole-frame gate; pick a -pg or -pa student")
        gate = {id(p) for p in student.code.parameters()}
        for p in student.parameters():
            p.requires_grad_(id(p) in gate)
    return student, previous


def train_student(config: TrainConfig) -> dict[str, Any]:
    """Train a student; writes ``out/student-{best,last}.safetensors`` and returns a summary.

    ``alpha`` weighs the teacher term: 0 is plain supervised training (no teacher needed);
    for ``alpha > 0`` pass ``labels`` (a cache from ``kdcam distill label``, whose data
    options must match) or ``teacher`` (a teacher run on every batch: slow). Starting
    again with the same ``out`` resumes the run from its last checkpoint.
    """
    from distill.losses import DistillLoss

    student, previous_card = _initial_student(config)
    arch = student.arch
    criterion = DistillLoss(
        alpha=config.alpha,
        loss=config.loss,
        edge_weight=config.edge_weight,
        freq_weight=config.freq_weight,
        decision_weight=config.decision_weight,
    )
    if criterion.needs_teacher and config.labels is None and config.teacher is None:
        what = f"--alpha {config.alpha}" if config.alpha > 0 else f"--decision-weight {config.decision_weight}"
        raise KdcamError(
            f"{what} needs teacher outputs: pass --labels DIR (from `kdcam distill label`) or "
            "--teacher FILE; use --alpha 0 (and no --decision-weight) for supervised training"
        )
    if config.items is not None and config.items < 1:
        raise KdcamError(f"--items must be at least 1, not {config.items}")
    if config.threads:
        torch.set_num_threads(int(config.threads))
    cache = _labels_for(config, criterion)
    items = cache.items if cache is not None else config.items

    with distributed(config.device) as info:
        split = prepare_data(config, load_val=config.val_every > 0)
        if cache is not None:
            cache.check_files([p.name for p in split.train_paths])
        torch.manual_seed(config.seed)
        if config.crop % student.multiple:
            raise KdcamError(f"--crop {config.crop} must be a multiple of {student.multiple} for {arch}")
        dataset = make_patches(split, config, length=items if items is not None else config.steps * config.batch_size)
        if cache is not None and criterion.needs_teacher:
            dataset = LabeledItems(dataset, cache)
        if config.footage_labels is not None:
            dataset = _with_footage(dataset, config, with_teacher=criterion.needs_teacher)
        teacher_model, teacher_desc = None, cache.manifest.get("teacher") if cache is not None else None
        if criterion.needs_teacher and cache is None:
            from distill.teacher import load_any_teacher

            teacher_model, teacher_desc = load_any_teacher(config.teacher)
            teacher_model = teacher_model.to(info.device).eval()
        if config.footage_labels is not None and teacher_desc is None:
            teacher_desc = json.loads((Path(config.footage_labels) / "manifest.json").read_text())["teacher"]
        facts = {
            "arch": arch,
            "items": items,
            "teacher": teacher_desc if criterion.needs_teacher or config.footage_labels else None,
            "labels": str(Path(config.labels).resolve()) if config.labels is not None else None,
            "data": str(Path(config.data).expanduser().resolve()),
            "data_split": split.describe(),
            "trained_macs_per_pixel": student_macs_per_pixel(student),
            "init_sha256": file_sha256(resolve_model_path(config.init)) if config.init is not None else None,
            "previous_stage": previous_card,
        }
        val_batch = make_val_batch(split, config, items=config.val_items) if config.val_every else None
        task = StudentTask(
            student=student,
            criterion=criterion,
            dataset=dataset,
            items=items,
            val_batch=val_batch,
            facts=facts,
            teacher_model=teacher_model,
            tile=config.teacher_tile,
        )
        return run_loop(task, config, info)
