"""The one resumable training loop, shared by the student trainer (``distill.train``) and the
teacher trainer (``distill.fit_teacher``).

A :class:`Task` says what is trained and how; :func:`run_loop` does the rest:

* AdamW with linear warm-up and cosine decay; CUDA autocast (bf16, or fp16 with a grad
  scaler) on a GPU, CPU bf16 autocast on request;
* the deterministic data order of ``distill.sampler``, so a resumed run sees exactly the
  batches it would have seen;
* a checkpoint (``train_state.safetensors``: model, optimizer, scheduler, scaler, step,
  RNG states, history, best model) every ``ckpt_every`` steps and at the end, written
  atomically; starting the same command again resumes from it;
* DistributedDataParallel under ``torchrun`` (``distill.distributed``): every rank takes
  its slice of the global batch; only rank 0 validates and writes files;
* a tqdm bar, a JSON-lines log (``log.jsonl``) and a loss-curve PNG (``loss.png``);
* a memory bound before the first step: a batch of crops whose estimated training memory
  (``training_bytes``) is over ``MEMORY_SHARE`` of the memory available is refused in one
  line, before anything large is allocated.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from distill.config import LoopConfig
from distill.distributed import DistInfo, barrier, broadcast_error, reduce_means
from distill.sampler import StepBatches
from engines.atomic import atomic_write_text, check_writable, remove_stale_partials
from engines.errors import KdcamError
from engines.foundation.options import as_settings, resumable_names

LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
SUMMARY_NAME = "summary.json"
SETTINGS_NAME = "settings.json"
#: settings that may change on resume besides the config's resumable options
ALWAYS_RESUMABLE = frozenset({"out", "world_size"})
#: share of the available memory (RAM, or the GPU's free memory) a run's estimate may take
MEMORY_SHARE = 0.8
#: bytes per crop pixel of one batch of data: input, target and teacher output, 3 channels of float32
DATA_BYTES_PER_PIXEL = 3 * 3 * 4
#: side of the crop whose forward pass measures the activation memory per pixel
_PROBE_SIDE = 64


class Task:
    """What the loop trains. Subclasses set the attributes and override the methods.

    ``module`` is what DDP wraps: ``module(batch["input"])`` is the prediction.
    ``dataset[i]`` returns item ``i`` (a dict of tensors); ``items`` is the number of
    distinct items (None: fresh items every step). ``facts`` are settings the task derived
    (the teacher it learns from, the data it saw): they are saved with the config.
    """

    kind: str = "model"
    name: str = "model"
    module: nn.Module
    dataset: Dataset
    items: int | None = None
    facts: dict[str, Any]
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

    def finish(self, run: Run, result: dict[str, Any]) -> dict[str, Any]:
        """Write the final models (rank 0 only); return what to add to the summary."""
        return {}


def lr_lambda(steps: int, warmup: int, min_ratio: float):
    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def autocast_factory(device: torch.device, *, amp: bool, bf16: bool):
    """(context factory, grad scaler or None, name of the precision)."""
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, f"cuda-amp-{str(dtype).split('.')[-1]}"
    if device.type == "cpu" and bf16:
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None, "cpu-bf16"
    return contextlib.nullcontext, None, "fp32"


def check_config(config: LoopConfig, info: DistInfo) -> None:
    checks = [
        (config.steps >= 1, f"--steps must be at least 1, not {config.steps}"),
        (config.batch_size >= 1, f"--batch-size must be at least 1, not {config.batch_size}"),
        (config.lr > 0, f"--lr must be positive, not {config.lr}"),
        (config.ckpt_every >= 1, f"--ckpt-every must be at least 1, not {config.ckpt_every}"),
        (config.val_every >= 0, f"--val-every must be >= 0 (0 = no validation), not {config.val_every}"),
        (config.log_every >= 1, f"--log-every must be at least 1, not {config.log_every}"),
        (config.workers >= 0, f"--workers must be >= 0, not {config.workers}"),
        (config.batch_size % info.world == 0,
         f"--batch-size {config.batch_size} must be divisible by the number of processes ({info.world})"),
    ]
    for ok, message in checks:
        if not ok:
            raise KdcamError(message)


def activation_bytes_per_pixel(module: nn.Module) -> float:
    """Bytes that autograd keeps for the backward pass, per pixel of an input crop: measured on
    one forward pass of a 64x64 crop (on the module's device; no random number drawn, no
    gradient computed), every saved tensor that is not a parameter counted once."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    device = next(module.parameters()).device
    probe = torch.full((1, 3, _PROBE_SIDE, _PROBE_SIDE), 0.5, device=device)
    with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(probe)
    return sum(saved.values()) / _PROBE_SIDE**2


def training_bytes(module: nn.Module, *, batch: int, crop: int, workers: int = 0) -> int:
    """A rough, conservative estimate of the memory one training step of ``batch`` crops of
    ``crop`` px takes: per crop pixel, twice the activations kept for the backward pass (the
    gradients of the backward pass are as large again), plus the data of the batches held at
    once (the one trained, the one collated, two prefetched per loader worker); plus four
    copies of the parameters (weights, gradients, AdamW's two moments)."""
    per_pixel = 2 * activation_bytes_per_pixel(module) + (2 + 2 * workers) * DATA_BYTES_PER_PIXEL
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    return int(batch * crop * crop * per_pixel + 4 * weights)


def available_memory(device: torch.device) -> int:
    """Bytes free for a training run: the GPU's free memory, or the RAM available."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(task: Task, config: LoopConfig, info: DistInfo) -> None:
    """Refuse a batch of crops whose estimated memory (``training_bytes``) is over
    ``MEMORY_SHARE`` of the memory available: in one line, naming the flags to lower. On a
    GPU each process holds its own slice of the batch; on the CPU all of them share the RAM."""
    batch = config.batch_size // info.world if info.device.type == "cuda" else config.batch_size
    need = training_bytes(task.module, batch=batch, crop=config.crop, workers=config.workers)
    free = available_memory(info.device)
    if need > MEMORY_SHARE * free:
        where = "GPU memory free" if info.device.type == "cuda" else "memory available"
        raise KdcamError(f"--batch-size {config.batch_size} of --crop {config.crop} px crops needs about "
                         f"{need / 2**30:.1f} GiB to train {task.name} (an estimate), over {MEMORY_SHARE:.0%} of the "
                         f"{free / 2**30:.1f} GiB of {where}; lower --batch-size or --crop")


def _state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def _json_line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, allow_nan=False, default=str) + "\n"


class Run:
    """The state of one training run: model, optimizer, scheduler, history, best model."""

    def __init__(self, task: Task, config: LoopConfig, info: DistInfo) -> None:
        from distill.train_state import STATE_NAME

        check_config(config, info)
        check_memory(task, config, info)  # before the module moves to the device or a batch is made
        self.task, self.config, self.info = task, config, info
        self.out = Path(config.out).expanduser()
        self.state_path = self.out / STATE_NAME
        self.settings = {**as_settings(config), **task.facts, "out": str(self.out), "kind": task.kind,
                         "name": task.name, "world_size": info.world}
        self.module = task.module.to(info.device)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay
        )
        warmup = config.warmup if config.warmup is not None else min(500, config.steps // 50)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config.steps, warmup, config.min_lr_ratio)
        )
        self.autocast, self.scaler, self.precision = autocast_factory(info.device, amp=config.amp, bf16=config.bf16)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metric: float | None = None
        self.resumed_from: int | None = None

    def resume(self) -> None:
        """Continue from the run folder's checkpoint, if there is one with the same settings."""
        from distill.train_state import load_train_state, rng_restore

        problem, state = None, None
        if self.info.is_main:
            try:
                check_writable(self.state_path, what="training run")  # makes the folder
                remove_stale_partials(self.out)
            except KdcamError as err:
                problem = str(err)
        if problem is None and self.state_path.is_file():
            try:
                state = load_train_state(self.state_path)
                self._check_resume(state.settings)
            except KdcamError as err:
                problem = str(err)
        broadcast_error(self.info, problem)
        if state is not None:
            self.module.load_state_dict({k: v.to(self.info.device) for k, v in state.model.items()})
            if state.optimizer is not None:
                self.optimizer.load_state_dict(state.optimizer)
            if state.scheduler is not None:
                self.scheduler.load_state_dict(state.scheduler)
            if self.scaler is not None and state.scaler:
                self.scaler.load_state_dict(state.scaler)
            rng_restore(state.rng, state.rng_tensors)
            self.step, self.history = state.step, state.history
            self.best_state, self.best_metric = state.best, state.best_metric
            self.resumed_from = self.step
        if self.info.is_main:
            # the log holds exactly the history of the checkpoint we continue from
            atomic_write_text(self.out / LOG_NAME, "".join(_json_line(e) for e in self.history))
            atomic_write_text(self.out / SETTINGS_NAME, json.dumps(self.settings, indent=2) + "\n")
        barrier(self.info)

    def _check_resume(self, saved: dict[str, Any]) -> None:
        free = resumable_names(type(self.config)) | ALWAYS_RESUMABLE
        current = self.settings
        changed = sorted(k for k in set(saved) | set(current) if k not in free and saved.get(k) != current.get(k))
        if changed:
            diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed[:4])
            raise KdcamError(
                f"{self.out} holds a run with other settings ({diffs}); resume with the same options or pass "
                "a new --out folder"
            )

    def train_step(self, train_module: nn.Module, batch: dict[str, Any]) -> dict[str, float]:
        batch = self.task.prepare(batch, self.info.device)
        with self.autocast():
            pred = train_module(batch["input"])
        loss, logs = self.task.loss(pred.float(), batch)
        if not torch.isfinite(loss):
            raise KdcamError(f"the loss became {float(loss)} at step {self.step + 1}; lower --lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return logs

    def validate(self) -> dict[str, Any]:
        result = self.task.validate(self.module, self.info.device, self.autocast)
        if not result:
            return result
        if result.get("output_is_input"):
            print(
                f"warning: step {self.step}: the model's output equals its input on every validation crop "
                "(dead ReLUs, it will learn nothing more); rerun with a lower --lr",
                file=sys.stderr,
                flush=True,
            )
        if self.best_metric is None or result["val_psnr"] > self.best_metric:
            self.best_metric = result["val_psnr"]
            self.best_state = _state_dict_cpu(self.module)
        return result

    def checkpoint(self) -> None:
        from distill.plots import plot_history
        from distill.train_state import save_train_state

        save_train_state(
            self.state_path,
            step=self.step,
            model=_state_dict_cpu(self.module),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler else None,
            best=self.best_state,
            best_metric=self.best_metric,
            history=self.history,
            settings=self.settings,
        )
        plot_history(self.history, self.out / PLOT_NAME, title=f"{self.task.kind} ({self.task.name})")

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "steps": self.step,
            "resumed_from": self.resumed_from,
            "precision": self.precision,
            "world_size": self.info.world,
            "best_val_psnr": self.best_metric,
        }
        train_entries = [e for e in self.history if "loss" in e]
        val_entries = [e for e in self.history if "val_psnr" in e]
        if train_entries:
            result["final_loss"] = train_entries[-1]["loss"]
        if val_entries:
            result["final_val_psnr"] = val_entries[-1]["val_psnr"]
            result["val_psnr_input"] = val_entries[-1].get("val_psnr_input")
            result["best_step"] = max(val_entries, key=lambda e: e["val_psnr"])["step"]
        return result


def _loader(run: Run) -> DataLoader:
    cfg, info, task = run.config, run.info, run.task
    sampler = StepBatches(
        start=run.step,
        stop=cfg.steps,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        items=task.items,
        rank=info.rank,
        world=info.world,
    )
    return DataLoader(
        task.dataset,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=info.device.type == "cuda",
        persistent_workers=False,
    )


def _wrap(run: Run) -> nn.Module:
    if not run.info.distributed:
        return run.module
    from torch.nn.parallel import DistributedDataParallel as DDP

    device = run.info.device
    return DDP(run.module, device_ids=[device.index] if device.type == "cuda" else None)


def run_loop(task: Task, config: LoopConfig, info: DistInfo) -> dict[str, Any]:
    """Train ``task.module`` for ``config.steps`` steps, resuming from ``config.out`` if it holds a run."""
    from tqdm import tqdm

    from distill.plots import plot_history

    run = Run(task, config, info)
    run.resume()
    train_module = _wrap(run)
    log_file = open(run.out / LOG_NAME, "a", encoding="utf-8") if info.is_main else None
    bar = tqdm(
        total=config.steps,
        initial=run.step,
        desc=f"{task.kind} {task.name}",
        dynamic_ncols=True,
        disable=not (info.is_main and config.progress),
        smoothing=0.05,
    )
    sums: dict[str, float] = {}
    count = 0
    started = time.perf_counter()
    run.module.train()
    try:
        for batch in _loader(run):
            for k, v in run.train_step(train_module, batch).items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            entries = []
            if run.step % config.log_every == 0 or run.step == config.steps:
                means = reduce_means(sums, count, info)
                sums, count = {}, 0
                entries.append(
                    {
                        "step": run.step,
                        "lr": run.scheduler.get_last_lr()[0],
                        **means,
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )
                bar.set_postfix(loss=f"{means.get('loss', float('nan')):.4f}")
            if info.is_main and config.val_every and (run.step % config.val_every == 0 or run.step == config.steps):
                result = run.validate()
                if result:
                    entries.append({"step": run.step, **result})
                    bar.set_postfix(val_psnr=f"{result['val_psnr']:.2f}")
            run.history.extend(entries)
            if log_file:
                log_file.writelines(_json_line(e) for e in entries)
                log_file.flush()
            if info.is_main and (run.step % config.ckpt_every == 0 or run.step == config.steps):
                run.checkpoint()
            bar.update(1)
    finally:
        bar.close()
        if log_file:
            log_file.close()
    result = run.summary()
    if info.is_main:
        if not (run.out / PLOT_NAME).is_file():
            plot_history(run.history, run.out / PLOT_NAME, title=f"{task.kind} ({task.name})")
        result.update(task.finish(run, result))
        result["run_dir"] = str(run.out)
        atomic_write_text(run.out / SUMMARY_NAME, json.dumps(result, indent=2, default=str) + "\n")
    barrier(info)
    return result
