"""Student checkpoints: safetensors weights with the config embedded, plus a JSON sidecar.

A checkpoint is ``NAME.safetensors``; its metadata holds the architecture, the config and
the model card as JSON, so the model is rebuilt from that file alone. Beside it,
``NAME.json`` repeats that JSON for people and tools, and ``NAME.delta-fp32.onnx`` (when
exported) holds the frame graph for the ONNX-based engines. Nothing is ever unpickled.

``open_model`` reads, checks and hashes a checkpoint without PyTorch
(``engines.model.checkpoint_file``); the PyTorch student (``ResolvedModel.student``,
``load_student``) is built only when something asks for it: the torch engines, an ONNX or
TensorRT export, training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from engines.atomic import atomic_path, atomic_write_text, file_sha256
from engines.errors import KdcamError
from engines.model.checkpoint_file import (
    DEFAULT_MODEL,
    FORMAT,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    META_KEY,
    check_finite_weights,
    check_metadata,
    non_finite_error,
    read_metadata,
    resolve_model_path,
    unreadable_weights_error,
)
from engines.model.configs import config_from_dict, config_to_dict, grid_multiple
from engines.model.needs_torch import require_torch

if TYPE_CHECKING:
    import torch

    from engines.model.configs import S2DConfig, SRCNNConfig
    from engines.model.residual import ResidualStudent

__all__ = ["DEFAULT_MODEL", "FORMAT", "FORMAT_VERSION", "MAX_HEADER_BYTES", "ResolvedModel", "check_metadata",
           "load_student", "open_model", "read_metadata", "resolve_model_path", "save_student"]


def build_from_config(arch: str, config: S2DConfig | SRCNNConfig) -> ResidualStudent:
    """The PyTorch network of ``config`` (``engines.model.students.build_from_config``)."""
    from engines.model import students

    return students.build_from_config(arch, config)


def save_file(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file``, imported when a checkpoint is written."""
    from safetensors import torch as safetensors_torch

    safetensors_torch.save_file(tensors, filename, metadata=metadata)


def _finite_weights(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``tensors``, or a one-line KdcamError when one holds NaN or infinity (every output would too)."""
    import torch

    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise non_finite_error(bad, path)
    return tensors


def load_student(model: str | Path | None = None) -> tuple[ResidualStudent, dict]:
    """Load a student (in eval mode) and its metadata (``arch``, ``config``, ``card``); needs PyTorch."""
    from safetensors import SafetensorError

    path = resolve_model_path(model)
    meta = read_metadata(path)
    require_torch(f"{path}: loading this model in PyTorch")
    from safetensors.torch import load_file

    student = build_from_config(meta["arch"], config_from_dict(meta["config"]))
    try:
        tensors = load_file(str(path))
    except (RuntimeError, SafetensorError, OSError) as err:
        raise unreadable_weights_error(err, path) from None
    try:
        student.load_state_dict(_finite_weights(tensors, path), strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise KdcamError(f"{path}: weights do not match its config ({first}); re-export it") from None
    return student.eval(), meta


@dataclass(frozen=True)
class ResolvedModel:
    """A student checkpoint found, checked and hashed once: what every engine factory takes.

    Its header is read and checked and its weights checked finite without PyTorch; the
    PyTorch student is built on first use of ``student`` (the CPU engines never ask)."""

    path: Path
    sha256: str  # of the .safetensors file: keys the ONNX and TensorRT caches
    meta: dict = field(repr=False)  # the checkpoint's header: arch, config, card

    @property
    def name(self) -> str:
        """The model's name for people: its card's name, else the file's stem."""
        return str((self.meta.get("card") or {}).get("name") or self.path.stem)

    @property
    def config(self) -> S2DConfig | SRCNNConfig:
        return config_from_dict(self.meta["config"])

    @property
    def multiple(self) -> int:
        """Frame sides the network takes are multiples of this (``ResidualStudent.multiple``)."""
        return grid_multiple(self.config)

    @property
    def in_channels(self) -> int:
        """1: a luma student; 3: all BGR channels."""
        return self.config.in_channels

    @cached_property
    def student(self) -> ResidualStudent:
        """The PyTorch student, in eval mode, loaded on first use (needs PyTorch)."""
        return load_student(self.path)[0]


def open_model(model: str | Path | ResolvedModel | None = None) -> ResolvedModel:
    """Resolve ``--model`` (None: the shipped default), read and hash it; a ResolvedModel is
    returned as it is."""
    if isinstance(model, ResolvedModel):
        return model
    path = resolve_model_path(model)
    meta = read_metadata(path)
    check_finite_weights(path)
    return ResolvedModel(path=path, sha256=file_sha256(path), meta=meta)


def save_student(student: ResidualStudent, path: str | Path, *, card: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar atomically."""
    import torch

    path = Path(path)
    if path.suffix != ".safetensors":
        raise KdcamError(f"{path}: student checkpoints are .safetensors files")
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "arch": student.arch,
        "config": config_to_dict(student.config),
        "card": card or {},
    }
    text = json.dumps(meta, indent=2, sort_keys=False)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in student.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    atomic_write_text(path.with_suffix(".json"), text + "\n")
    return path
