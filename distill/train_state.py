"""Resumable training checkpoints: one safetensors file, nothing pickled.

A checkpoint holds everything a run needs to continue as if it had never stopped:

* tensors: the model (``model.*``), the best model so far (``best.*``), the optimizer's
  per-parameter state (``optim.<param>.<name>``), the torch CPU/CUDA RNG states;
* JSON in the safetensors header: the optimizer's param groups and scalar state, the LR
  scheduler and AMP grad-scaler state dicts, the step, the loss/validation history, the
  numpy and Python RNG states and the run settings.

It is written atomically (temporary file, then rename), so a run killed at any moment
(even ``kill -9`` mid-write) leaves the previous checkpoint intact. A ``.json`` sidecar
repeats the header for people; loading only ever reads the ``.safetensors`` file.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engines.atomic import atomic_path, atomic_write_text
from engines.errors import KdcamError
from engines.file_header import read_json_header

FORMAT = "kdcam-train-state"
FORMAT_VERSION = 1
_META_KEY = "kdcam_train_state"

#: file name of the latest checkpoint inside a run folder
STATE_NAME = "train_state.safetensors"


@dataclass
class TrainState:
    """What :func:`load_train_state` returns (state dicts ready for ``load_state_dict``)."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    best: dict[str, torch.Tensor] | None = None
    best_metric: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    rng_tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def _json_safe(value: Any) -> Any:
    """Plain JSON types: tuples become lists, numpy/torch scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def rng_snapshot() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The global RNG states: JSON-able (numpy, Python) and tensors (torch CPU, CUDA)."""
    np_state = np.random.get_state()
    json_part = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _json_safe(random.getstate()),
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return json_part, tensors


def rng_restore(json_part: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    if "numpy" in json_part:
        name, keys, pos, has_gauss, cached = json_part["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "python" in json_part:
        version, internal, gauss = json_part["python"]
        random.setstate((version, tuple(internal), gauss))
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])


def save_train_state(
    path: str | Path,
    *,
    step: int,
    model: dict[str, torch.Tensor],
    optimizer: dict[str, Any] | None = None,
    scheduler: dict[str, Any] | None = None,
    scaler: dict[str, Any] | None = None,
    best: dict[str, torch.Tensor] | None = None,
    best_metric: float | None = None,
    history: list[dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
    rng: bool = True,
) -> Path:
    """Write a training checkpoint to ``path`` (.safetensors) atomically, plus a .json sidecar.

    ``model``/``best`` are state dicts, ``optimizer``/``scheduler``/``scaler`` the objects'
    ``state_dict()``. With ``rng`` the current global RNG states are stored too.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": _cpu(v) for k, v in model.items()}
    if best is not None:
        tensors.update({f"best.{k}": _cpu(v) for k, v in best.items()})
    optim_json = None
    if optimizer is not None:
        scalars: dict[str, dict[str, Any]] = {}
        for pid, entry in optimizer["state"].items():
            for name, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{pid}.{name}"] = _cpu(value)
                else:
                    scalars.setdefault(str(pid), {})[name] = _json_safe(value)
        optim_json = {
            "param_groups": _json_safe(optimizer["param_groups"]),
            "scalars": scalars,
            "param_ids": [str(pid) for pid in optimizer["state"]],
        }
    rng_json: dict[str, Any] = {}
    if rng:
        rng_json, rng_tensors = rng_snapshot()
        tensors.update({k: _cpu(v) for k, v in rng_tensors.items()})
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "step": int(step),
        "optimizer": optim_json,
        "scheduler": _json_safe(scheduler) if scheduler is not None else None,
        "scaler": _json_safe(scaler) if scaler is not None else None,
        "best_metric": best_metric,
        "history": _json_safe(history or []),
        "settings": _json_safe(settings or {}),
        "rng": rng_json,
    }
    text = json.dumps(header)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: text})
    summary = {k: v for k, v in header.items() if k not in ("history", "rng", "optimizer")}
    summary["history_tail"] = header["history"][-5:]
    atomic_write_text(path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    return path


def read_train_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a training checkpoint (no tensors loaded)."""
    return read_json_header(
        path, key=_META_KEY, fmt=FORMAT, version=FORMAT_VERSION, what="training checkpoint",
        fix="delete it or pass another --out folder",
    )


def is_train_state(path: str | Path) -> bool:
    try:
        read_train_header(path)
    except KdcamError:
        return False
    return True


def load_train_state(path: str | Path) -> TrainState:
    """Read a checkpoint written by :func:`save_train_state` (CPU tensors)."""
    path = Path(path)
    header = read_train_header(path)
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            tensors[key] = f.get_tensor(key)

    def prefixed(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    optimizer = None
    if header.get("optimizer") is not None:
        info = header["optimizer"]
        state: dict[int, dict[str, Any]] = {}
        for pid in info["param_ids"]:
            entry: dict[str, Any] = dict(info["scalars"].get(pid, {}))
            entry.update(prefixed(f"optim.{pid}."))
            state[int(pid)] = entry
        optimizer = {"state": state, "param_groups": info["param_groups"]}
    best = prefixed("best.") or None
    return TrainState(
        step=int(header["step"]),
        model=prefixed("model."),
        optimizer=optimizer,
        scheduler=header.get("scheduler"),
        scaler=header.get("scaler"),
        best=best,
        best_metric=header.get("best_metric"),
        history=list(header.get("history") or []),
        settings=dict(header.get("settings") or {}),
        rng=dict(header.get("rng") or {}),
        rng_tensors={k: v for k, v in tensors.items() if k.startswith("rng.")},
    )
