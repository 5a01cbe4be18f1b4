"""Student checkpoints: safetensors weights with the config embedded, plus a JSON sidecar.

A checkpoint is ``NAME.safetensors``; its metadata holds the architecture, the config and
the model card as JSON, so the model is rebuilt from that file alone. Beside it,
``NAME.json`` repeats that JSON for people and tools, and ``NAME.onnx`` (when exported)
holds the frame graph for the ONNX-based engines. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engines.atomic import atomic_path, atomic_write_text, file_sha256
from engines.errors import KdcamError
from engines.file_header import read_json_header
from engines.model.zoo import DEFAULT_NAME, ORDER, model_file, zoo_path
from engines.model.residual import ResidualStudent
from engines.model.students import build_from_config, config_from_dict, config_to_dict

FORMAT = "kdcam-student"
FORMAT_VERSION = 1
_META_KEY = "kdcam"

#: the shipped default student, inside the package
DEFAULT_MODEL = model_file(DEFAULT_NAME)


def resolve_model_path(model: str | Path | None) -> Path:
    """The checkpoint file for ``--model``: None means the shipped default, the name of an
    installed model (``engines.model.zoo``) that model; a folder means the single
    ``*.safetensors`` inside it."""
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise KdcamError(f"the shipped default model is missing ({DEFAULT_MODEL}); reinstall kdcam or pass --model")
        return DEFAULT_MODEL
    if not str(model).strip():
        raise KdcamError(f"empty --model: give an installed model's name ({', '.join(ORDER)}) or a .safetensors student checkpoint")
    if str(model) in ORDER and not Path(model).expanduser().exists():  # a name, not a file of that name
        return zoo_path(str(model))
    path = Path(model).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise KdcamError(f"{path}: expected one .safetensors student checkpoint in this folder, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise KdcamError(f"{path}: model file not found; pass a .safetensors checkpoint written by `kdcam distill export`")
    return path


def read_metadata(path: Path) -> dict:
    """The checkpoint's JSON metadata; raises KdcamError for anything that is not ours."""
    return read_json_header(
        path, key=_META_KEY, fmt=FORMAT, version=FORMAT_VERSION, what="student checkpoint",
        fix="expected a .safetensors file written by `kdcam distill export`",
    )


def load_student(model: str | Path | None = None) -> tuple[ResidualStudent, dict]:
    """Load a student (in eval mode) and its metadata (``arch``, ``config``, ``card``)."""
    path = resolve_model_path(model)
    meta = read_metadata(path)
    student = build_from_config(meta["arch"], config_from_dict(meta["config"]))
    try:
        student.load_state_dict(load_file(str(path)), strict=True)
    except (RuntimeError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0]
        raise KdcamError(f"{path}: weights do not match its config ({first}); re-export it") from None
    return student.eval(), meta


@dataclass(frozen=True)
class ResolvedModel:
    """A student checkpoint found, hashed and loaded once: what every engine factory takes."""

    path: Path
    sha256: str  # of the .safetensors file: keys the ONNX and TensorRT caches
    student: ResidualStudent = field(repr=False)  # in eval mode
    meta: dict = field(repr=False)  # the checkpoint's header: arch, config, card

    @property
    def name(self) -> str:
        """The model's name for people: its card's name, else the file's stem."""
        return str((self.meta.get("card") or {}).get("name") or self.path.stem)


def open_model(model: str | Path | ResolvedModel | None = None) -> ResolvedModel:
    """Resolve ``--model`` (None: the shipped default), read and hash it; a ResolvedModel is
    returned as it is."""
    if isinstance(model, ResolvedModel):
        return model
    path = resolve_model_path(model)
    student, meta = load_student(path)
    return ResolvedModel(path=path, sha256=file_sha256(path), student=student, meta=meta)


def save_student(student: ResidualStudent, path: str | Path, *, card: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar atomically."""
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
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(meta)})
    atomic_write_text(path.with_suffix(".json"), text + "\n")
    return path
