"""The installed students (the model zoo): the shipped checkpoints, by name, best first.

Each entry is a folder ``engines/model/zoo/<name>/`` with ``student.safetensors`` (its
``.json`` sidecar, the ONNX delta graph and ``MODEL_CARD.md`` beside it). ``ORDER`` lists
the names best first. ``--model NAME`` picks one, and the live controls (the ``m`` key,
``kdcam ctl model NAME``) switch among them: by name only, never a file path.
"""

from __future__ import annotations

from pathlib import Path

from engines.errors import KdcamError

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
#: the installed models, best first: `quality` (the default where it keeps up), `fast` (about 1.4x its
#: speed, for smaller CPUs and 1080p); ``--model auto`` picks the best one that fits the frame budget
#: (vcam.live.model_choice), else the fastest
ORDER = ("quality", "fast")
DEFAULT_NAME = ORDER[0]


def model_file(name: str) -> Path:
    return ZOO_DIR / name / "student.safetensors"


def installed() -> list[str]:
    """The names of the models that are installed, best first."""
    return [name for name in ORDER if model_file(name).is_file()]


def zoo_path(name: str) -> Path:
    """The checkpoint of the installed model ``name``; a one-line error naming the installed ones."""
    if name not in ORDER or not model_file(name).is_file():
        raise KdcamError(
            f"no installed model '{name}'; installed: {', '.join(installed()) or 'none (reinstall kdcam)'}"
        )
    return model_file(name)
