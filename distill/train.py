"""Training: the one resumable loop, and student knowledge-distillation training on top of it.

The loop (:func:`run_loop`) is shared by the student trainer (:func:`train_student`) and
the teacher trainer (``distill.fit_teacher``). A :class:`Task` says what is trained and
how; the loop does the rest:

* AdamW with linear warm-up and cosine decay; CUDA autocast (bf16, or fp16 with a grad
  scaler) when a GPU is used, CPU bf16 autocast on request;
* a deterministic data order: the items of step ``s`` are a function of ``(seed, s)``
  only, so a resumed run sees exactly the batches it would have seen;
* a checkpoint (``train_state.safetensors``: model, optimizer, scheduler, scaler, step,
  RNG states, history, best model) every ``ckpt_every`` steps and at the end, written
  atomically; starting the same command again resumes from it;
* DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on CUDA): every rank
  takes its slice of the global batch; only rank 0 validates and writes files;
* a tqdm bar, a JSON-lines log (``log.jsonl``) and a loss-curve PNG (``loss.png``).

Student training minimises ``alpha * L(student, teacher) + (1 - alpha) * L(student, gt)``
(see ``distill.losses``); teacher outputs come from a label cache written by
``kdcam distill label`` (matched by item index), or from a teacher run on the fly.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from distill.atomic import atomic_write_text
from distill.errors import KdcamError

LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
SUMMARY_NAME = "summary.json"

#: settings that may change between a run and its resumption (they do not change the math)
RESUMABLE_CHANGES = frozenset(
    {"steps", "val_every", "val_items", "ckpt_every", "log_every", "threads", "workers", "progress", "world_size",
     "device", "out", "name"}
)


# --------------------------------------------------------------------------- distributed


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def pick_device(device: str = "auto", *, local_rank: int = 0) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise KdcamError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        return torch.device("cuda", local_rank)
    if device == "cpu":
        return torch.device("cpu")
    raise KdcamError(f"unknown device '{device}'; choose auto, cpu or cuda")


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistInfo]:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA).

    Yields the rank, world size and the device this process trains on; leaves the group
    on exit (if it joined it).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank=local_rank)
    info = DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        info.initialized_here = True
    try:
        yield info
    finally:
        if info.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def _barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def _broadcast_error(info: DistInfo, message: str | None) -> None:
    """Raise KdcamError on every rank if rank 0 found a problem (so no rank hangs)."""
    if not info.distributed:
        if message:
            raise KdcamError(message)
        return
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0)
    if box[0]:
        raise KdcamError(box[0])


# --------------------------------------------------------------------------- data


@dataclass
class DataSplit:
    """Training photos split into train and validation sides (images as uint8 BGR)."""

    root: Path
    train_paths: list[Path]
    val_paths: list[Path]
    train_images: list[np.ndarray]
    val_images: list[np.ndarray]

    def describe(self) -> dict[str, Any]:
        return {
            "dir": str(self.root),
            "train_images": len(self.train_images),
            "val_images": len(self.val_images),
            "train_files": [p.name for p in self.train_paths],
        }


def _looks_like_eval_set(root: Path) -> bool:
    parts = root.resolve().parts
    return len(parts) >= 3 and parts[-3:] == ("shared", "data", "eval")


def prepare_data(
    data: str | Path, *, val_fraction: float = 0.1, seed: int = 0, max_side: int | None = None, load_val: bool = True
) -> DataSplit:
    """List, split (by file name and seed) and load the photos under ``data``."""
    from distill.data import list_images, load_images, split_train_val

    if data is None:
        raise KdcamError("no training data; pass --data DIR (a folder of photos)")
    root = Path(data).expanduser()
    if not root.is_dir():
        raise KdcamError(f"{root}: no such folder; pass --data DIR, a folder of training photos")
    if _looks_like_eval_set(root):
        raise KdcamError(f"{root} is the evaluation set and must never be trained on; use data/train")
    paths = list_images(root)
    if not paths:
        raise KdcamError(f"{root}: no images found (jpg, png, webp, bmp); pass a folder of training photos")
    train_paths, val_paths = split_train_val(paths, val_fraction=val_fraction, seed=seed)
    train_images, skipped = load_images(train_paths, max_side=max_side, dtype="uint8")
    train_paths = [p for p in train_paths if p not in set(skipped)]
    if not train_images:
        raise KdcamError(f"{root}: none of the training images could be read; check the files")
    val_images: list[np.ndarray] = []
    if load_val and val_paths:
        val_images, skipped = load_images(val_paths, max_side=max_side, dtype="uint8")
        val_paths = [p for p in val_paths if p not in set(skipped)]
    return DataSplit(root, train_paths, val_paths, train_images, val_images)


def make_patches(split: DataSplit, *, crop: int, degradation: str, seed: int, length: int):
    """The training PatchDataset (people photos oversampled by ``distill.data.file_weights``)."""
    from distill.data import PatchDataset, file_weights

    return PatchDataset(
        split.train_images,
        crop=crop,
        degradation=degradation,
        seed=seed,
        length=length,
        augment=True,
        weights=file_weights(split.train_paths),
    )


def make_val_batch(split: DataSplit, *, crop: int, degradation: str, seed: int, items: int) -> dict[str, torch.Tensor] | None:
    """A fixed validation batch cut from the held-out photos (None if there are none)."""
    from distill.data import PatchDataset

    if not split.val_images or items <= 0:
        return None
    ds = PatchDataset(split.val_images, crop=crop, degradation=degradation, seed=seed + 7919, length=items, augment=False)
    rows = [ds[i] for i in range(items)]
    return {
        "input": torch.stack([r["input"] for r in rows]),
        "target": torch.stack([r["target"] for r in rows]),
    }


@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed: int, epoch: int, items: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, 0xDA7A])).permutation(items)


def global_batch_indices(step: int, batch_size: int, *, seed: int, items: int | None = None) -> list[int]:
    """Dataset indices of the global batch of ``step`` (0-based).

    With ``items=None`` every step gets fresh items (``step * batch_size + j``); otherwise
    the ``items`` distinct items are visited in a new seeded permutation every epoch.
    """
    start = step * batch_size
    if items is None:
        return list(range(start, start + batch_size))
    out = []
    for pos in range(start, start + batch_size):
        epoch, offset = divmod(pos, items)
        out.append(int(_epoch_permutation(seed, epoch, items)[offset]))
    return out


class StepBatches:
    """Batch sampler: this rank's slice of each global batch, from ``start`` to ``stop``."""

    def __init__(self, *, start: int, stop: int, batch_size: int, seed: int, items: int | None, rank: int, world: int) -> None:
        self.start, self.stop = start, stop
        self.batch_size, self.seed, self.items = batch_size, seed, items
        self.rank, self.world = rank, world
        self.per_rank = batch_size // world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            idx = global_batch_indices(step, self.batch_size, seed=self.seed, items=self.items)
            yield idx[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]


# --------------------------------------------------------------------------- the loop


@dataclass
class LoopOptions:
    out: Path
    steps: int
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int | None = None  # default: 2% of the steps, at most 500
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 1.0
    val_every: int = 0
    ckpt_every: int = 500
    log_every: int = 10
    seed: int = 0
    workers: int = 0
    bf16: bool = False
    amp: bool = True
    progress: bool = True
    desc: str = "train"

    def check(self) -> None:
        if self.steps < 1:
            raise KdcamError(f"--steps must be at least 1, not {self.steps}")
        if self.batch_size < 1:
            raise KdcamError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.lr <= 0:
            raise KdcamError(f"--lr must be positive, not {self.lr}")
        if self.ckpt_every < 1:
            raise KdcamError(f"--ckpt-every must be at least 1, not {self.ckpt_every}")
        if self.val_every < 0:
            raise KdcamError(f"--val-every must be >= 0 (0 = no validation), not {self.val_every}")
        if self.workers < 0:
            raise KdcamError(f"--workers must be >= 0, not {self.workers}")


class Task:
    """What the loop trains. Subclasses set the attributes and override the methods.

    ``module`` is what DDP wraps: ``module(batch["input"])`` is the prediction.
    ``dataset[i]`` returns item ``i`` (a dict of tensors); ``items`` is the number of
    distinct items (None: fresh items every step).
    """

    kind: str = "model"
    module: nn.Module
    dataset: Dataset
    items: int | None = None
    settings: dict[str, Any]
    val_batch: dict[str, torch.Tensor] | None = None

    def prepare(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """Move a collated batch to ``device`` (and add anything computed on the fly)."""
        return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def loss(self, pred: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def validate(self, module: nn.Module, device: torch.device, autocast: Any) -> dict[str, Any]:
        """PSNR of ``module`` on the fixed validation batch (keys ``val_psnr``, ``val_psnr_input``),
        pooled over the crops: the training mix leaves some crops untouched. Adds
        ``output_is_input: True`` when the prediction equals the input on every crop: a residual
        network whose ReLUs have all died, which no later step revives."""
        from distill.losses import mse_per_image, pooled_psnr

        if self.val_batch is None:
            return {}
        was_training = module.training
        module.eval()
        scores, base = [], []
        changed = False
        with torch.no_grad():
            for i in range(0, self.val_batch["input"].shape[0], 8):
                x = self.val_batch["input"][i : i + 8].to(device)
                y = self.val_batch["target"][i : i + 8].to(device)
                with autocast():
                    pred = module(x)
                scores.append(mse_per_image(pred, y))
                base.append(mse_per_image(x, y))
                changed = changed or bool((pred.float() - x.float()).abs().max() > 1e-6)
        module.train(was_training)
        result = {"val_psnr": pooled_psnr(torch.cat(scores)), "val_psnr_input": pooled_psnr(torch.cat(base))}
        return result if changed else {**result, "output_is_input": True}

    def finish(self, module: nn.Module, best_state: dict[str, torch.Tensor] | None, result: dict[str, Any]) -> dict[str, Any]:
        """Write the final models (rank 0 only); return what to add to the summary."""
        return {}


def lr_lambda(steps: int, warmup: int, min_ratio: float):
    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _autocast_factory(device: torch.device, *, amp: bool, bf16: bool):
    """(context factory, grad scaler or None, name of the precision)."""
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, f"cuda-amp-{str(dtype).split('.')[-1]}"
    if device.type == "cpu" and bf16:
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None, "cpu-bf16"
    return contextlib.nullcontext, None, "fp32"


def _state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def _check_resume(out: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    changed = sorted(
        k for k in set(saved) | set(current) if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
    )
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed[:4])
        raise KdcamError(
            f"{out} holds a run with other settings ({diffs}); resume with the same options or pass a new --out folder"
        )


def _reduce_means(sums: dict[str, float], count: int, info: DistInfo) -> dict[str, float]:
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
    if info.distributed:
        import torch.distributed as dist

        dist.all_reduce(values)
    total = float(values[-1]) or 1.0
    return {k: float(v) / total for k, v in zip(keys, values[:-1].tolist())}


def remove_stale_partials(folder: Path) -> int:
    """Delete temporary files that a killed writer left in ``folder``; returns how many.

    Call it only while no other process writes there (rank 0, before the others start).
    """
    removed = 0
    for tmp in folder.glob(".*.partial-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def _json_line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, allow_nan=False, default=str) + "\n"


def run_loop(task: Task, opts: LoopOptions, info: DistInfo) -> dict[str, Any]:
    """Train ``task.module`` for ``opts.steps`` steps, resuming from ``opts.out`` if it holds a run."""
    from tqdm import tqdm

    from distill.plots import plot_history
    from distill.train_state import STATE_NAME, load_train_state, rng_restore, save_train_state

    opts.check()
    if opts.batch_size % info.world:
        raise KdcamError(f"--batch-size {opts.batch_size} must be divisible by the number of processes ({info.world})")
    out = Path(opts.out)
    device = info.device
    state_path = out / STATE_NAME
    log_path = out / LOG_NAME
    settings = {**task.settings, "kind": task.kind, "batch_size": opts.batch_size, "lr": opts.lr,
                "weight_decay": opts.weight_decay, "warmup": opts.warmup, "min_lr_ratio": opts.min_lr_ratio,
                "grad_clip": opts.grad_clip, "seed": opts.seed, "bf16": opts.bf16, "amp": opts.amp,
                "steps": opts.steps, "world_size": info.world, "device": device.type}

    module = task.module.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, betas=(0.9, 0.99), weight_decay=opts.weight_decay)
    warmup = opts.warmup if opts.warmup is not None else min(500, opts.steps // 50)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(opts.steps, warmup, opts.min_lr_ratio))
    autocast, scaler, precision = _autocast_factory(device, amp=opts.amp, bf16=opts.bf16)

    step = 0
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_metric: float | None = None
    problem = None
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(out)
    if state_path.is_file():
        try:
            st = load_train_state(state_path)
            _check_resume(out, st.settings, settings)
        except KdcamError as err:
            problem = str(err)
    _broadcast_error(info, problem)
    resumed_from = None
    if state_path.is_file():
        module.load_state_dict({k: v.to(device) for k, v in st.model.items()})
        if st.optimizer is not None:
            optimizer.load_state_dict(st.optimizer)
        if st.scheduler is not None:
            scheduler.load_state_dict(st.scheduler)
        if scaler is not None and st.scaler:
            scaler.load_state_dict(st.scaler)
        rng_restore(st.rng, st.rng_tensors)
        step, history = st.step, st.history
        best_state, best_metric = st.best, st.best_metric
        resumed_from = step
    if info.is_main:
        # the log holds exactly the history of the checkpoint we continue from
        atomic_write_text(log_path, "".join(_json_line(e) for e in history))
        atomic_write_text(out / "settings.json", json.dumps(settings, indent=2) + "\n")
    _barrier(info)

    train_module: nn.Module = module
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_module = DDP(module, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = StepBatches(start=step, stop=opts.steps, batch_size=opts.batch_size, seed=opts.seed,
                          items=task.items, rank=info.rank, world=info.world)
    loader = DataLoader(task.dataset, batch_sampler=sampler, num_workers=opts.workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)

    def checkpoint() -> None:
        save_train_state(state_path, step=step, model=_state_dict_cpu(module), optimizer=optimizer.state_dict(),
                         scheduler=scheduler.state_dict(), scaler=scaler.state_dict() if scaler else None,
                         best=best_state, best_metric=best_metric, history=history, settings=settings)
        plot_history(history, out / PLOT_NAME, title=f"{opts.desc} ({task.settings.get('name', task.kind)})")

    log_file = open(log_path, "a", encoding="utf-8") if info.is_main else None
    bar = tqdm(total=opts.steps, initial=step, desc=opts.desc, disable=not (info.is_main and opts.progress),
               dynamic_ncols=True, smoothing=0.05)
    sums: dict[str, float] = {}
    count = 0
    last_val: dict[str, float] = {}
    started = time.perf_counter()
    module.train()
    try:
        for batch in loader:
            batch = task.prepare(batch, device)
            with autocast():
                pred = train_module(batch["input"])
            loss, logs = task.loss(pred.float(), batch)
            if not torch.isfinite(loss):
                raise KdcamError(f"the loss became {float(loss)} at step {step + 1}; lower --lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if opts.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, opts.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1

            if step % opts.log_every == 0 or step == opts.steps:
                means = _reduce_means(sums, count, info)
                sums, count = {}, 0
                entry = {"step": step, "lr": scheduler.get_last_lr()[0], **means,
                         "seconds": round(time.perf_counter() - started, 3)}
                history.append(entry)
                if log_file:
                    log_file.write(_json_line(entry))
                    log_file.flush()
                bar.set_postfix(loss=f"{means.get('loss', float('nan')):.4f}", **{k: f"{v:.2f}" for k, v in last_val.items() if k == "val_psnr"})
            if info.is_main and opts.val_every and (step % opts.val_every == 0 or step == opts.steps):
                last_val = task.validate(module, device, autocast)
                if last_val:
                    entry = {"step": step, **last_val}
                    history.append(entry)
                    log_file.write(_json_line(entry))
                    log_file.flush()
                    if last_val.get("output_is_input"):
                        print(f"warning: step {step}: the model's output equals its input on every validation crop "
                              "(dead ReLUs, it will learn nothing more); rerun with a lower --lr", file=sys.stderr, flush=True)
                    if best_metric is None or last_val["val_psnr"] > best_metric:
                        best_metric = last_val["val_psnr"]
                        best_state = _state_dict_cpu(module)
                    bar.set_postfix(loss=f"{history[-2].get('loss', float('nan')):.4f}" if len(history) > 1 else "-",
                                    val_psnr=f"{last_val['val_psnr']:.2f}")
            if info.is_main and (step % opts.ckpt_every == 0 or step == opts.steps):
                checkpoint()
            bar.update(1)
    finally:
        bar.close()
        if log_file:
            log_file.close()

    result: dict[str, Any] = {"steps": step, "resumed_from": resumed_from, "precision": precision,
                              "world_size": info.world, "best_val_psnr": best_metric}
    train_entries = [e for e in history if "loss" in e]
    val_entries = [e for e in history if "val_psnr" in e]
    if train_entries:
        result["final_loss"] = train_entries[-1]["loss"]
    if val_entries:
        result["final_val_psnr"] = val_entries[-1]["val_psnr"]
        result["val_psnr_input"] = val_entries[-1].get("val_psnr_input")
        result["best_step"] = max(val_entries, key=lambda e: e["val_psnr"])["step"]
    if info.is_main:
        if not (out / PLOT_NAME).is_file():
            plot_history(history, out / PLOT_NAME, title=opts.desc)
        result.update(task.finish(module, best_state, result))
        result["run_dir"] = str(out)
        atomic_write_text(out / SUMMARY_NAME, json.dumps(result, indent=2, default=str) + "\n")
    _barrier(info)
    return result


# --------------------------------------------------------------------------- student KD


class BGRStudent(nn.Module):
    """A student seen as ``BGR [N,3,H,W] -> restored BGR`` (what DDP wraps and the loss sees)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        return self.student.restore_bgr(bgr)


class _LabeledItems(Dataset):
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

    def __init__(self, *, student, criterion, dataset, items, val_batch, settings, card_base,
                 teacher_model=None, use_labels=False, tile=None) -> None:
        self.student = student
        self.module = BGRStudent(student)
        self.criterion = criterion
        self.dataset = dataset
        self.items = items
        self.val_batch = val_batch
        self.settings = settings
        self.card_base = card_base
        self.teacher_model = teacher_model
        self.use_labels = use_labels
        self.tile = tile

    def prepare(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        batch = super().prepare(batch, device)
        if self.criterion.needs_teacher and not self.use_labels:
            from distill.label import teacher_bgr

            batch["teacher"] = teacher_bgr(self.teacher_model, batch["input"], tile=self.tile)
        return batch

    def loss(self, pred, batch):
        teacher = batch.get("teacher") if self.criterion.needs_teacher else None
        return self.criterion(pred, batch["target"], teacher)

    def finish(self, module, best_state, result):
        from distill.checkpoint import save_student
        from distill.students import macs_per_pixel

        out = Path(self.settings["out"])
        student = module.student
        last = copy.deepcopy(student).cpu().eval()
        best = copy.deepcopy(student).cpu().eval()
        if best_state is not None:
            best_wrapper = BGRStudent(best)
            best_wrapper.load_state_dict(best_state)
        card = {
            **self.card_base,
            "macs_per_pixel": macs_per_pixel(last.collapse()),
            "parameters": sum(p.numel() for p in last.collapse().parameters()),
            "steps": result["steps"],
            "loss": result.get("final_loss"),
            "val_psnr": result.get("final_val_psnr"),
            "val_psnr_input": result.get("val_psnr_input"),
            "precision": result.get("precision"),
        }
        paths = {}
        last_path = save_student(last, out / "student-last.safetensors", card={**card, "which": "last"})
        paths["student_last"] = str(last_path)
        best_card = {**card, "which": "best" if best_state is not None else "last (no validation)",
                     "val_psnr": result.get("best_val_psnr"), "best_step": result.get("best_step")}
        paths["student_best"] = str(save_student(best, out / "student-best.safetensors", card=best_card))
        return paths


def train_student(
    *,
    data: str | Path,
    out: str | Path,
    arch: str | None = None,
    alpha: float = 0.0,
    labels: str | Path | None = None,
    teacher: str | Path | None = None,
    loss: str = "charbonnier",
    edge_weight: float = 0.0,
    freq_weight: float = 0.0,
    steps: int = 2000,
    batch_size: int = 16,
    crop: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    degradation: str = "webcam",
    items: int | None = None,
    val_every: int = 0,
    val_items: int = 32,
    val_fraction: float = 0.1,
    ckpt_every: int = 500,
    log_every: int = 10,
    seed: int = 0,
    threads: int | None = None,
    workers: int = 0,
    max_side: int | None = None,
    device: str = "auto",
    bf16: bool = False,
    amp: bool = True,
    teacher_tile: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a student; writes ``out/student-{best,last}.safetensors`` and returns a summary.

    ``alpha`` weighs the teacher term: 0 is plain supervised training (no teacher needed);
    for ``alpha > 0`` pass ``labels`` (a cache from ``kdcam distill label``, whose crop,
    degradation and seed must match) or ``teacher`` (a teacher run on every batch: slow).
    Starting again with the same ``out`` resumes the run from its last checkpoint.
    """
    from distill.label import load_any_teacher, open_labels
    from distill.losses import DistillLoss
    from distill.students import DEFAULT_STUDENT, STUDENTS, create_student, macs_per_pixel

    arch = arch or DEFAULT_STUDENT
    if arch not in STUDENTS:
        raise KdcamError(f"unknown student '{arch}'; choose one of: {', '.join(STUDENTS)}")
    criterion = DistillLoss(alpha=alpha, loss=loss, edge_weight=edge_weight, freq_weight=freq_weight)
    if criterion.needs_teacher and labels is None and teacher is None:
        raise KdcamError(
            f"--alpha {alpha} needs teacher outputs: pass --labels DIR (from `kdcam distill label`) or --teacher FILE; "
            "use --alpha 0 for supervised training"
        )
    if items is not None and items < 1:
        raise KdcamError(f"--items must be at least 1, not {items}")
    if threads:
        torch.set_num_threads(int(threads))
    out = Path(out).expanduser()

    label_cache = None
    if labels is not None:
        label_cache = open_labels(labels)
        label_cache.check_matches(crop=crop, degradation=degradation, seed=seed, val_fraction=val_fraction, data=data)
        if items is not None and items != label_cache.items:
            raise KdcamError(f"--items {items} differs from the label cache ({label_cache.items} items); leave --items out")
        items = label_cache.items
        if criterion.needs_teacher:
            label_cache.check_complete()

    with distributed(device) as info:
        split = prepare_data(data, val_fraction=val_fraction, seed=seed, max_side=max_side, load_val=val_every > 0)
        if label_cache is not None:
            label_cache.check_files([p.name for p in split.train_paths])
        torch.manual_seed(seed)
        student = create_student(arch)
        multiple = student.multiple
        if crop % multiple:
            raise KdcamError(f"--crop {crop} must be a multiple of {multiple} for {arch}")
        length = items if items is not None else steps * batch_size
        dataset = make_patches(split, crop=crop, degradation=degradation, seed=seed, length=length)
        if label_cache is not None and criterion.needs_teacher:
            dataset = _LabeledItems(dataset, label_cache)
        val_batch = make_val_batch(split, crop=crop, degradation=degradation, seed=seed, items=val_items) if val_every else None

        teacher_model = None
        teacher_desc = label_cache.manifest.get("teacher") if label_cache is not None else None
        if criterion.needs_teacher and label_cache is None:
            teacher_model, teacher_desc = load_any_teacher(teacher)
            teacher_model = teacher_model.to(info.device).eval()

        settings = {
            "name": arch, "out": str(out), "arch": arch, "alpha": float(alpha), "loss": loss,
            "edge_weight": float(edge_weight), "freq_weight": float(freq_weight), "crop": crop,
            "degradation": degradation, "items": items, "data": str(Path(data).expanduser().resolve()),
            "val_fraction": val_fraction, "val_items": val_items if val_every else 0,
            "labels": str(Path(labels).resolve()) if labels is not None else None,
            "teacher": teacher_desc if criterion.needs_teacher else None, "max_side": max_side,
            "val_every": val_every, "ckpt_every": ckpt_every, "log_every": log_every,
            "threads": threads, "workers": workers, "progress": progress,
        }
        card_base = {
            "name": out.name,
            "arch": arch,
            "trained_macs_per_pixel": macs_per_pixel(student),
            "data": split.describe() | {"train_files": len(split.train_paths)},
            "degradation": degradation,
            "crop": crop,
            "teacher": teacher_desc if criterion.needs_teacher else None,
            "labels": settings["labels"],
            "alpha": float(alpha),
            "loss_fn": loss,
            "edge_weight": float(edge_weight),
            "freq_weight": float(freq_weight),
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "items": items,
        }
        task = StudentTask(student=student, criterion=criterion, dataset=dataset, items=items, val_batch=val_batch,
                           settings=settings, card_base=card_base, teacher_model=teacher_model,
                           use_labels=label_cache is not None, tile=teacher_tile)
        opts = LoopOptions(out=out, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           val_every=val_every, ckpt_every=ckpt_every, log_every=log_every, seed=seed,
                           workers=workers, bf16=bf16, amp=amp, progress=progress, desc=f"train {arch}")
        return run_loop(task, opts, info)
