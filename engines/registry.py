"""The engine registry: names, availability checks and ``create_engine``.

Backends are imported lazily, only when asked for, so a missing or heavy runtime costs
nothing until it is used.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from distill.checkpoint import load_student
from distill.errors import KdcamError
from engines.base import Engine


@dataclass(frozen=True)
class EngineSpec:
    name: str
    module: str  # backend module, imported on first use
    check: str  # its function that returns None when usable, else why not
    factory: str  # its function that builds the engine
    why_fast: str  # the reason given when "auto" picks it


# In order of preference for "auto": fastest first (see README's benchmark table).
ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec("tensorrt", "engines.tensorrt_engine", "availability", "create", "TensorRT engine on a CUDA GPU (fp16 graph, one upload and one download per frame)"),
    EngineSpec("torch-cuda", "engines.torch_engine", "cuda_availability", "create_cuda", "fp16 on a CUDA GPU"),
    EngineSpec("openvino", "engines.openvino_engine", "availability", "create", "the fastest CPU runtime available"),
    EngineSpec("onnxruntime", "engines.onnxruntime_engine", "availability", "create", "the portable CPU default"),
    EngineSpec("torch", "engines.torch_engine", "availability", "create", "the PyTorch reference"),
)
ENGINE_NAMES = ("auto",) + tuple(spec.name for spec in ENGINES)


def _spec(name: str) -> EngineSpec | None:
    return next((s for s in ENGINES if s.name == name), None)


def engine_status() -> dict[str, str | None]:
    """Every engine name -> None if usable here, else the reason it is out."""
    status: dict[str, str | None] = {}
    for spec in ENGINES:
        try:
            status[spec.name] = getattr(importlib.import_module(spec.module), spec.check)()
        except ImportError as err:
            status[spec.name] = f"cannot import its backend ({err})"
    return status


def _all_engines_line(status: dict[str, str | None]) -> str:
    return "; ".join(f"{name}: {'available' if why is None else why}" for name, why in status.items())


def create_engine(name: str = "auto", *, model: str | Path | None = None, quiet: bool = False, **options) -> Engine:
    """Build an engine running the student ``model`` (None: the shipped default).

    ``auto`` picks the first usable engine in preference order and says which, and why,
    in one line on stderr (unless ``quiet``). Backend options (``threads``,
    ``precision``) pass through to the backend that understands them.
    """
    student, _meta = load_student(model)  # a bad model file fails here, before any runtime loads
    status = engine_status()
    if name == "auto":
        chosen = next((s for s in ENGINES if status[s.name] is None), None)
        if chosen is None:
            raise KdcamError(f"no engine can run here: {_all_engines_line(status)}")
        ahead = [s for s in ENGINES[: ENGINES.index(chosen)]]
        reason = chosen.why_fast + "".join(f"; {s.name} is out: {status[s.name]}" for s in ahead)
        spec = chosen
    else:
        spec = _spec(name)
        if spec is None or status[name] is not None:
            what = f"unknown engine '{name}'" if spec is None else f"engine '{name}' is not available"
            raise KdcamError(f"{what}; engines: auto; {_all_engines_line(status)}")
    factory = getattr(importlib.import_module(spec.module), spec.factory)
    engine = factory(model=model, student=student, **options)
    if name == "auto" and not quiet:
        print(f"kdcam: engine {spec.name} [{engine.describe()}]: {reason}", file=sys.stderr)
    return engine
