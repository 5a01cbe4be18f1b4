"""A student checkpoint as a file, read without PyTorch: where it is, its checked header, its weights' finiteness.

``engines.model.checkpoint`` builds on this; the CPU engines need nothing more (they run the
ONNX graph shipped beside the checkpoint), so ``kdcam start`` on a CPU never imports torch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from engines.atomic import special_kind, why
from engines.errors import KdcamError
from engines.file_header import read_json_header
from engines.model.configs import config_from_dict
from engines.model.zoo import DEFAULT_NAME, ORDER, model_file, zoo_path

FORMAT = "kdcam-student"
FORMAT_VERSION = 1
META_KEY = "kdcam"
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


def _check_model_file(path: Path) -> None:
    """A one-line KdcamError unless ``path`` is a regular file; never opens it (a FIFO would block)."""
    kind = special_kind(_file_mode(path))
    if kind is not None:
        raise KdcamError(f"{path}: is {kind}, not a model file; pass a .safetensors checkpoint")


def read_metadata(path: Path) -> dict:
    """The checkpoint's JSON metadata, its header bounded (``MAX_HEADER_BYTES``) and checked
    (``check_metadata``); raises a one-line KdcamError for anything that is not ours."""
    meta = read_json_header(
        path,
        key=META_KEY,
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


def non_finite_error(bad: list[str], path: Path) -> KdcamError:
    """The one line for weights ``bad`` that hold NaN or infinity (every output would too)."""
    return KdcamError(
        f"{path}: the weights {', '.join(bad[:3])} hold NaN or infinite values (a diverged "
        "training run?); train or export the model again"
    )


def unreadable_weights_error(err: BaseException, path: Path) -> KdcamError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return KdcamError(f"{path}: the weights cannot be read ({first}); re-export it")


def check_finite_weights(path: Path) -> None:
    """A one-line KdcamError unless every floating-point tensor in ``path`` is finite (read
    with numpy: no torch)."""
    bad = []
    try:
        with safe_open(str(path), framework="numpy") as f:
            for name in sorted(f.keys()):
                tensor = f.get_tensor(name)
                if np.issubdtype(tensor.dtype, np.floating) and not np.isfinite(tensor).all():
                    bad.append(name)
    except (RuntimeError, SafetensorError, OSError, TypeError, ValueError) as err:
        raise unreadable_weights_error(err, path) from None
    if bad:
        raise non_finite_error(bad, path)
