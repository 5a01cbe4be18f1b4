"""Student configs: the dataclasses saved in every checkpoint, and their checks.

Torch-free, so that a checkpoint's header is read and checked (``config_from_dict``) and its
grid known (``grid_multiple``) without building the network: the CPU engines run the
shipped ONNX graph and never need PyTorch. The networks are ``engines.model.s2d`` and
``engines.model.srcnn``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from engines.errors import KdcamError

#: gate option -> the FrameCode pooling it uses (none: no gate)
GATES = {"none": None, "learned": "mean", "attention": "attention"}


@dataclass
class S2DConfig:
    """A space-to-depth residual CNN: unshuffle, a stack of 3x3 convs, shuffle back.

    Each field's ``metadata`` holds the values a checkpoint may give it (``range``: lowest
    and highest, or ``choices``), checked by ``engines.model.students.config_from_dict``
    before anything is built; generous for real students (the largest registered one,
    kd-s4-c48, has 48 channels and 5 convs)."""

    # space-to-depth factor: the convs run at 1/scale of the frame size
    scale: int = field(default=4, metadata={"choices": (1, 2, 4, 8)})
    # width of the hidden 3x3 convs
    channels: int = field(default=32, metadata={"range": (1, 256)})
    # 3x3 convs in all
    num_convs: int = field(default=4, metadata={"range": (2, 16)})
    # 1: luma only, chroma passes through; 3: all BGR channels
    in_channels: int = field(default=1, metadata={"choices": (1, 3)})
    # train with parallel 1x1 and identity branches; collapse() folds them
    reparam: bool = False
    # between the convs: relu, or prelu (a learned slope per channel)
    act: str = field(default="relu", metadata={"choices": ("relu", "prelu")})
    # none, learned (mean pooling) or attention: a whole-frame code scales the hidden channels and the residual
    gate: str = field(default="none", metadata={"choices": tuple(GATES)})
    # width of the whole-frame code branch
    gate_channels: int = field(default=16, metadata={"range": (1, 256)})


@dataclass
class SRCNNConfig:
    """The seed project's 3-layer SRCNN-style network (9-5-5), kept as a speed reference.

    As in ``S2DConfig``, each field's ``metadata`` holds the values a checkpoint may give it
    (for a tuple: each item)."""

    # widths after the 9x9 and the 5x5 conv
    channels: tuple[int, int] = field(default=(64, 32), metadata={"range": (1, 256)})
    # kernel sizes of the three convs (odd: the padding keeps the size)
    kernels: tuple[int, int, int] = field(default=(9, 5, 5), metadata={"choices": (1, 3, 5, 7, 9, 11, 13, 15)})
    # 3: all BGR channels; 1: luma only
    in_channels: int = field(default=3, metadata={"choices": (1, 3)})


_CONFIG_TYPES: dict[str, type] = {"S2DConfig": S2DConfig, "SRCNNConfig": SRCNNConfig}


def grid_multiple(config: S2DConfig | SRCNNConfig) -> int:
    """What frame sides must be a multiple of for this network (``ResidualStudent.multiple``)."""
    return config.scale if isinstance(config, S2DConfig) else 1


def config_to_dict(config: S2DConfig | SRCNNConfig) -> dict:
    return {"type": type(config).__name__, **dataclasses.asdict(config)}


def _allowed(f: dataclasses.Field) -> str:
    """The values ``f``'s metadata allows, for people."""
    if "range" in f.metadata:
        low, high = f.metadata["range"]
        return f"from {low} to {high}"
    if "choices" in f.metadata:
        return "one of " + ", ".join(map(str, f.metadata["choices"]))
    return "true or false" if isinstance(f.default, bool) else "any value"


def _item_ok(value: object, like: object, metadata) -> bool:
    """Whether ``value`` has the exact JSON type of the default ``like`` (a bool is not an int,
    a string is not a number) and lies in ``metadata``'s range or choices."""
    if type(value) is not type(like):
        return False
    if "range" in metadata:
        low, high = metadata["range"]
        return low <= value <= high
    return "choices" not in metadata or value in metadata["choices"]


def _checked_field(f: dataclasses.Field, value: object) -> object:
    """``value`` for config field ``f`` (a JSON list becomes the tuple a tuple field holds), or a
    one-line KdcamError naming the field, what it may be and what it is."""
    if isinstance(f.default, tuple):
        ok = isinstance(value, list | tuple) and len(value) == len(f.default)
        ok = ok and all(_item_ok(v, d, f.metadata) for v, d in zip(value, f.default))
        what = f"a list of {len(f.default)} integers (each {_allowed(f)})"
    else:
        ok = _item_ok(value, f.default, f.metadata)
        noun = {int: "an integer", str: "a string"}.get(type(f.default))
        what = f"{noun} ({_allowed(f)})" if noun else _allowed(f)
    if not ok:
        raise KdcamError(f"config field '{f.name}' must be {what}, not {json.dumps(value, default=str)[:60]}")
    return tuple(value) if isinstance(f.default, tuple) else value


def config_from_dict(data: object) -> S2DConfig | SRCNNConfig:
    """The config a checkpoint's header describes, every field checked against the limits its
    dataclass declares before anything is built; a one-line KdcamError otherwise."""
    if not isinstance(data, dict):
        raise KdcamError(f"the student config must be a JSON object, not {json.dumps(data, default=str)[:60]}")
    data = dict(data)
    kind = data.pop("type", None)
    cls = _CONFIG_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise KdcamError(f"unknown student config type {json.dumps(kind, default=str)[:60]}; "
                         f"known: {', '.join(_CONFIG_TYPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise KdcamError(f"checkpoint config has unknown fields {sorted(unknown)[:8]}; upgrade kdcam")
    return cls(**{name: _checked_field(fields[name], value) for name, value in data.items()})
