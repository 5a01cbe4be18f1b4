"""TensorRT engine files: their metadata, where they live, and when to rebuild them.

A serialized TensorRT engine only runs on the GPU model (compute capability) and the
TensorRT version that built it, and only for the ONNX graph, precision and shape range
(optimization profile) it was built from. Every engine file ``X`` therefore has a JSON
sidecar ``X.json`` that records all of that, plus the sha256 of the engine bytes, so a
sidecar that belongs to another engine is caught too.

Everything here except ``current_device_info`` is a pure function of plain dicts and
strings, so the decisions are unit-tested without a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engines.atomic import atomic_path, atomic_write_text
from engines.errors import KdcamError
from engines.foundation import values
from engines.foundation.cache_dir import cache_dir

FORMAT = "kdcam-tensorrt-engine"
FORMAT_VERSION = 1
PRECISIONS = ("fp16", "fp32")
DEFAULT_PRECISION = "fp16"
#: the fields of the device that an engine is tied to
DEVICE_FIELDS = ("gpu_name", "compute_capability", "tensorrt_version")
#: the fields that decide which engine a build produces (the cache key)
KEY_FIELDS = DEVICE_FIELDS + ("onnx_sha256", "precision", "profile")


# --- sizes and profiles -------------------------------------------------------------


def parse_size(text: str, *, what: str = "size") -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)`` (width, height); any side from 1 to 16384."""
    return values.parse_size(text, what=what, min_side=1, max_side=16384, even=False)


format_size = values.size_text


def check_precision(precision: str) -> str:
    """The one check of a TensorRT precision."""
    if precision not in PRECISIONS:
        raise KdcamError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    return precision


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Profile:
    """A TensorRT optimization profile for the frame input, as (width, height) pairs.

    Every side is a multiple of the student's grid: the engines pad frames up to that
    grid before they reach the network, so a frame of any size up to ``max`` fits.
    """

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def covers(self, width: int, height: int) -> bool:
        return self.min[0] <= width <= self.max[0] and self.min[1] <= height <= self.max[1]

    def to_dict(self) -> dict[str, str]:
        return {"min": format_size(self.min), "opt": format_size(self.opt), "max": format_size(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Profile:
        return cls(parse_size(data["min"]), parse_size(data["opt"]), parse_size(data["max"]))

    def input_shapes(self) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
        """(min, opt, max) shapes of the ``frame`` input, HxWx3."""
        return tuple((h, w, 3) for (w, h) in (self.min, self.opt, self.max))  # type: ignore[return-value]


def _as_size(value: str | tuple[int, int], what: str) -> tuple[int, int]:
    if isinstance(value, str):
        return parse_size(value, what=what)
    w, h = (int(v) for v in value)
    return parse_size(f"{w}x{h}", what=what)


#: the default shape range around ``--size``: down to this (any frame: sides are rounded
#: up to the grid), and up to at least this
DEFAULT_MIN = (1, 1)
DEFAULT_MAX = values.FULL_HD


def make_profile(
    size: str | tuple[int, int] = values.DEFAULT_SIZE,
    min_size: str | tuple[int, int] | None = None,
    max_size: str | tuple[int, int] | None = None,
    *,
    multiple: int = 1,
) -> Profile:
    """The profile for ``--size`` (the optimum) and the optional ``--min-size/--max-size``.

    Defaults: min is the smallest frame (one grid cell), max is 1920x1080 (or the size,
    if larger). Sides are rounded up to ``multiple``.
    """
    opt = _as_size(size, "--size")
    lo = (
        _as_size(min_size, "--min-size")
        if min_size is not None
        else (min(DEFAULT_MIN[0], opt[0]), min(DEFAULT_MIN[1], opt[1]))
    )
    hi = (
        _as_size(max_size, "--max-size")
        if max_size is not None
        else (max(DEFAULT_MAX[0], opt[0]), max(DEFAULT_MAX[1], opt[1]))
    )
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise KdcamError(
            f"need --min-size <= --size <= --max-size in both width and height; "
            f"got {format_size(lo)} <= {format_size(opt)} <= {format_size(hi)}"
        )
    r = lambda wh: (_round_up(wh[0], multiple), _round_up(wh[1], multiple))  # noqa: E731
    return Profile(r(lo), r(opt), r(hi))


# --- metadata, key and paths ----------------------------------------------------------


def device_key(current: Mapping[str, str]) -> str:
    """A short id of (GPU, compute capability, TensorRT version): what timing caches and
    engines are tied to."""
    text = json.dumps({k: str(current[k]) for k in DEVICE_FIELDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_meta(
    current: Mapping[str, str],
    *,
    onnx_sha256: str,
    precision: str,
    profile: Profile,
    model: str | None = None,
) -> dict:
    """The metadata of an engine about to be built (``engine_sha256`` is added on write)."""
    check_precision(precision)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        **{k: str(current[k]) for k in DEVICE_FIELDS},
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "profile": profile.to_dict(),
    }
    if model is not None:
        meta["model"] = model
    return meta


def cache_key(meta: Mapping) -> str:
    """A short hash of everything that decides the engine's contents (see ``KEY_FIELDS``)."""
    text = json.dumps({k: meta[k] for k in KEY_FIELDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def engine_dir() -> Path:
    """The per-user engine cache (``$KDCAM_CACHE_DIR/tensorrt`` or ``~/.cache/kdcam/tensorrt``)."""
    return cache_dir() / "tensorrt"


def default_engine_path(meta: Mapping) -> Path:
    return engine_dir() / f"{cache_key(meta)}.engine"


def meta_path_for(engine_path: str | os.PathLike) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def timing_cache_path(current: Mapping[str, str]) -> Path:
    """One timing cache per GPU model and TensorRT version, shared by every build there."""
    return engine_dir() / f"timing-{device_key(current)}.cache"


def write_engine(path: str | os.PathLike, engine_bytes, meta: Mapping) -> Path:
    """Write the engine and then its sidecar, each atomically.

    A failure mid-write leaves no partial engine file. The sidecar records the engine's
    sha256, so an interruption between the two writes is caught on load as a mismatch.
    """
    path = Path(path)
    view = memoryview(engine_bytes)
    full = dict(
        meta, engine_sha256=hashlib.sha256(view).hexdigest(), engine_bytes=view.nbytes, created=int(time.time())
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(view)
            f.flush()
            os.fsync(f.fileno())
    atomic_write_text(meta_path_for(path), json.dumps(full, indent=2) + "\n")
    return path


def read_meta(engine_path: str | os.PathLike) -> dict | None:
    """The sidecar of ``engine_path``, or None if missing or unreadable."""
    try:
        data = json.loads(meta_path_for(engine_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- the decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """``use`` the engine file, or ``rebuild`` it, and why."""

    action: str  # "use" | "rebuild"
    reasons: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.action == "use"

    def why(self) -> str:
        return "; ".join(self.reasons)


def check_engine(
    meta: Mapping | None,
    current: Mapping[str, str],
    *,
    onnx_sha256: str | None = None,
    precision: str | None = None,
    frame_size: tuple[int, int] | None = None,
    engine_sha256: str | None = None,
) -> Decision:
    """Can an engine with sidecar ``meta`` run here, for this model and frame size?

    ``current`` is the device info (``current_device_info()``); the keyword arguments are
    what the caller wants (None: don't care). ``frame_size`` is (width, height) as the
    network sees it (padded to the grid). Returns ``rebuild`` with every reason found.
    """
    if meta is None:
        return Decision("rebuild", ("no readable metadata beside the engine",))
    if meta.get("format") != FORMAT:
        return Decision("rebuild", ("metadata is not a kdcam TensorRT engine sidecar",))
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        return Decision("rebuild", (f"metadata format {meta.get('version')} is newer than this kdcam",))
    reasons: list[str] = []
    labels = {"gpu_name": "GPU", "compute_capability": "compute capability", "tensorrt_version": "TensorRT version"}
    for field in DEVICE_FIELDS:
        built, here = str(meta.get(field)), str(current.get(field))
        if built != here:
            reasons.append(f"built for {labels[field]} {built}, this machine has {here}")
    if onnx_sha256 is not None and meta.get("onnx_sha256") != onnx_sha256:
        reasons.append("built from a different model (ONNX sha256 differs)")
    if precision is not None and meta.get("precision") != precision:
        reasons.append(f"built for {meta.get('precision')}, {precision} requested")
    if engine_sha256 is not None and meta.get("engine_sha256") != engine_sha256:
        reasons.append("engine file does not match its metadata (sha256 differs)")
    if frame_size is not None:
        try:
            profile = Profile.from_dict(meta["profile"])
        except (KeyError, TypeError, KdcamError):
            reasons.append("metadata has no valid optimization profile")
        else:
            if not profile.covers(*frame_size):
                p = profile.to_dict()
                reasons.append(f"frame {format_size(frame_size)} is outside the engine's range {p['min']}..{p['max']}")
    return Decision("rebuild" if reasons else "use", tuple(reasons))


def widened_profile(profile: Profile, frame_size: tuple[int, int]) -> Profile:
    """The smallest change of ``profile`` that covers ``frame_size`` (opt moves to it)."""
    w, h = frame_size
    lo = (min(profile.min[0], w), min(profile.min[1], h))
    hi = (max(profile.max[0], w), max(profile.max[1], h))
    return Profile(lo, (w, h), hi)


def rebuild_command(
    *, model: str | None, profile: Profile, precision: str, output: str | os.PathLike | None = None
) -> str:
    """The exact ``kdcam build-engine`` command line that builds this engine."""
    p = profile.to_dict()
    parts = ["kdcam build-engine"]
    if model:
        parts.append(f"--model {_quote(str(model))}")
    parts += [f"--size {p['opt']}", f"--min-size {p['min']}", f"--max-size {p['max']}", f"--precision {precision}"]
    if output is not None:
        parts.append(f"--output {_quote(str(output))}")
    return " ".join(parts)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --- the one impure helper -------------------------------------------------------------


def current_device_info(trt_version: str, device: int = 0) -> dict[str, str]:
    """GPU name, compute capability ("9.0") and TensorRT version of this machine."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return {
        "gpu_name": torch.cuda.get_device_name(device),
        "compute_capability": f"{major}.{minor}",
        "tensorrt_version": str(trt_version),
    }
