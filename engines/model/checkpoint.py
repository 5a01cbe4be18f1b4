"""Student checkpoints: safetensors weights with the config embedded, plus a JSON sidecar.

A checkpoint is ``NAME.safetensors``; its metadata holds the architecture, the config and
the model card as JSON, so the model is rebuilt from that file alone. Beside it,
``NAME.json`` repeats that JSON for people and tools, and ``NAME.onnx`` (when exported)
holds the frame graph for the ONNX-based engines. Nothing is ever unpickled.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engines.atomic import atomic_path, atomic_write_text, file_sha256, why
from engines.errors import KdcamError
from engines.file_header import read_json_header
from engines.model.zoo import DEFAULT_NAME, ORDER, model_file, zoo_path
from engines.model.residual import ResidualStudent
from engines.model.students import build_from_config, config_from_dict, config_to_dict

FORMAT = "kdcam-student"
FORMAT_VERSION = 1
_META_KEY = "kdcam"
#: the largest safetensors header of a student checkpoint (the shipped ones are under 9 KB)
MAX_HEADER_BYTES = 1024 * 1024
_FIX = "expected a .safetensors file written by `kdcam distill export`"

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
        raise KdcamError(
            f"empty --model: give an installed model's name ({', '.join(ORDER)}) or a .safetensors student checkpoint"
        )
    if str(model) in ORDER and not Path(model).expanduser().exists():  # a name, not a file of that name
        return zoo_path(str(model))
    path = Path(model).expanduser()
    if stat.S_ISDIR(_file_mode(path)):
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise KdcamError(f"{path}: expected one .safetensors student checkpoint in this folder, found {len(found)}")
        path = found[0]
    _check_model_file(path)
    return path


def _file_mode(path: Path) -> int:
    """``path``'s mode (links followed); a one-line KdcamError when it cannot be found or read."""
    try:
        return os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise KdcamError(f"{path}: is a symbolic link loop; pass a .safetensors checkpoint") from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise KdcamError(
                f"{path}: model file not found; pass a .safetensors checkpoint written by `kdcam distill export`"
            ) from None
        raise KdcamError(f"{path}: the model file cannot be read ({why(err)})") from None


#: what a file that is not a regular one is, by its mode
_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _check_model_file(path: Path) -> None:
    """A one-line KdcamError unless ``path`` is a regular file; never opens it (a FIFO would block)."""
    mode = _file_mode(path)
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        raise KdcamError(f"{path}: is {kind}, not a model file; pass a .safetensors checkpoint")


def read_metadata(path: Path) -> dict:
    """The checkpoint's JSON metadata, its header bounded (``MAX_HEADER_BYTES``) and checked
    (``check_metadata``); raises a one-line KdcamError for anything that is not ours."""
    meta = read_json_header(
        path,
        key=_META_KEY,
        fmt=FORMAT,
        version=FORMAT_VERSION,
        what="student checkpoint",
        fix=_FIX,
        max_bytes=MAX_HEADER_BYTES,
    )
    check_metadata(meta, path)
    return meta


def check_metadata(meta: dict, path: Path) -> None:
    """Every field of a student header before anything is built: ``version`` is FORMAT_VERSION,
    ``arch`` a name, ``config`` within the limits its dataclass declares, ``card`` an object."""
    if type(meta.get("version")) is not int or meta["version"] != FORMAT_VERSION:
        raise KdcamError(f"{path}: bad student checkpoint header ('version' must be {FORMAT_VERSION}); {_FIX}")
    arch = meta.get("arch")
    if not isinstance(arch, str) or not 0 < len(arch) <= 100:
        raise KdcamError(f"{path}: bad student checkpoint header ('arch' must be an architecture's name); {_FIX}")
    if not isinstance(meta.get("card", {}), dict):
        raise KdcamError(f"{path}: bad student checkpoint header ('card' must be a JSON object); {_FIX}")
    try:
        config_from_dict(meta.get("config"))
    except KdcamError as err:
        raise KdcamError(f"{path}: bad student checkpoint header ({err}); {_FIX}") from None


def _finite_weights(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``tensors``, or a one-line KdcamError when one holds NaN or infinity (every output would too)."""
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise KdcamError(
            f"{path}: the weights {', '.join(bad[:3])} hold NaN or infinite values (a diverged "
            "training run?); train or export the model again"
        )
    return tensors


def load_student(model: str | Path | None = None) -> tuple[ResidualStudent, dict]:
    """Load a student (in eval mode) and its metadata (``arch``, ``config``, ``card``)."""
    path = resolve_model_path(model)
    meta = read_metadata(path)
    student = build_from_config(meta["arch"], config_from_dict(meta["config"]))
    try:
        tensors = load_file(str(path))
    except (RuntimeError, SafetensorError, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise KdcamError(f"{path}: the weights cannot be read ({first}); re-export it") from None
    try:
        student.load_state_dict(_finite_weights(tensors, path), strict=True)
    except RuntimeError as err:
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
