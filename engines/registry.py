"""The engine registry: names, availability checks and ``create_engine``.

Backends are imported lazily, only when asked for, so a missing or heavy runtime costs
nothing until it is used; importing this module imports no runtime and no torch.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engines.errors import KdcamError, shown

if TYPE_CHECKING:
    from engines.base import Engine
    from engines.model.checkpoint import ResolvedModel


@dataclass(frozen=True)
class EngineSpec:
    name: str
    check: str  # "module:function" returning None when usable here, else why not (imported on first use)
    factory: str  # "module:function" building the engine from a ResolvedModel and its own keyword options
    why_fast: str  # the reason given when "auto" picks it
    summary: str  # a few words for --help

    def load(self, which: str):
        module, _, function = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), function)


# In order of preference for "auto": fastest first (see README's benchmark table).
ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec("tensorrt", "engines.tensorrt_common:availability", "engines.tensorrt_build:create",
               "TensorRT engine on a CUDA GPU (fp16 graph, one upload and one download per frame)", "NVIDIA GPU"),
    EngineSpec("torch-cuda", "engines.torch_check:cuda_availability", "engines.torch_engine:create_cuda",
               "fp16 on a CUDA GPU", "NVIDIA GPU without TensorRT"),
    EngineSpec("openvino", "engines.openvino_engine:availability", "engines.openvino_engine:create",
               "the fastest CPU runtime available", "fastest on a CPU"),
    EngineSpec("onnxruntime", "engines.onnxruntime_engine:availability", "engines.onnxruntime_engine:create",
               "the portable CPU default", "portable CPU"),
    EngineSpec("torch", "engines.torch_check:availability", "engines.torch_engine:create",
               "the PyTorch reference", "CPU reference"),
)
ENGINE_NAMES = ("auto",) + tuple(spec.name for spec in ENGINES)


def engine_help() -> str:
    """The ``--engine`` help text, listing every registered engine."""
    listed = ", ".join(f"{s.name} ({s.summary})" for s in ENGINES)
    return f"Inference engine: auto (the first usable, in this order), {listed}."


def _spec(name: str) -> EngineSpec | None:
    return next((s for s in ENGINES if s.name == name), None)


def engine_status() -> dict[str, str | None]:
    """Every engine name -> None if usable here, else the reason it is out."""
    status: dict[str, str | None] = {}
    for spec in ENGINES:
        try:
            status[spec.name] = spec.load("check")()
        except ImportError as err:
            status[spec.name] = f"cannot import its backend ({err})"
    return status


def _all_engines_line(status: dict[str, str | None]) -> str:
    return "; ".join(f"{name}: {'available' if why is None else why}" for name, why in status.items())


def pick_engine(name: str = "auto") -> tuple[EngineSpec, str | None]:
    """The spec ``name`` stands for here, and (for ``auto``) why it was chosen."""
    status = engine_status()
    if name == "auto":
        chosen = next((s for s in ENGINES if status[s.name] is None), None)
        if chosen is None:
            raise KdcamError(f"no engine can run here: {_all_engines_line(status)}")
        ahead = ENGINES[: ENGINES.index(chosen)]
        return chosen, chosen.why_fast + "".join(f"; {s.name} is out: {status[s.name]}" for s in ahead)
    spec = _spec(name)
    if spec is None or status[name] is not None:
        what = f"unknown engine {shown(name)}" if spec is None else f"engine '{name}' is not available"
        raise KdcamError(f"{what}; engines: auto; {_all_engines_line(status)}")
    return spec, None


def engine_options(name: str, **options) -> dict:
    """The ``options`` (not None) that engine ``name`` (or what ``auto`` picks) takes: for callers
    that want, say, fp32 where an engine has a choice of precision and nothing elsewhere."""
    spec, _ = pick_engine(name)
    accepted = inspect.signature(spec.load("factory")).parameters
    return {k: v for k, v in options.items() if v is not None and k in accepted}


def create_engine(
    name: str = "auto", *, model: str | Path | ResolvedModel | None = None, quiet: bool = False, **options
) -> Engine:
    """Build an engine running the student ``model`` (a path, a ``ResolvedModel``, or None
    for the shipped default).

    ``auto`` picks the first usable engine in preference order and says which, and why,
    in one line on stderr (unless ``quiet``). ``options`` (``threads``, ``precision``, ...)
    go to the backend's factory; one it does not take is an error, never dropped.
    """
    from engines.model.checkpoint import open_model

    resolved = open_model(model)  # a bad model file fails here, before any runtime loads
    spec, reason = pick_engine(name)
    factory = spec.load("factory")
    accepted = [p for p in inspect.signature(factory).parameters if p not in ("model", "quiet")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(f"--{p.replace('_', '-')}" for p in accepted) or "none"
        raise KdcamError(f"engine '{spec.name}' has no option --{unknown[0].replace('_', '-')} (its options: {takes})")
    if "quiet" in inspect.signature(factory).parameters:
        options["quiet"] = quiet
    engine = factory(resolved, **options)
    if reason is not None and not quiet:
        print(f"kdcam: engine {spec.name} [{engine.describe()}]: {reason}", file=sys.stderr)
    return engine
