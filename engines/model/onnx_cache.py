"""Find or make the ONNX frame graph of a student checkpoint.

A checkpoint may ship its ONNX files beside it (``NAME.delta-fp32.onnx``, ...); each
file records the sha256 of the weights it was exported from, so a stale one is never
used. Otherwise the graph is exported once into the per-user cache, which needs PyTorch
(a one-line error naming the extra when it is not installed); a current shipped or cached
file is used without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engines.foundation.cache_dir import cache_dir
from engines.model.needs_torch import EXPORT_MODULES, require_torch
from engines.model.onnx_props import NotOnnx, metadata_props

if TYPE_CHECKING:
    from engines.model.checkpoint import ResolvedModel

WEIGHTS_KEY = "kdcam_weights_sha256"
GRAPH_KEY = "kdcam_graph"
#: bump when engines/model/graphs.py changes what the exported graphs compute or return,
#: so that shipped and cached ONNX files from before are re-exported, never reused
GRAPH_VERSION = "2"


def sibling_onnx(weights: Path, *, graph: str = "delta", precision: str = "fp32") -> Path:
    return weights.with_suffix(f".{graph}-{precision}.onnx")


def onnx_stamp(weights_sha: str, graph: str, precision: str) -> dict[str, str]:
    return {WEIGHTS_KEY: weights_sha, GRAPH_KEY: f"{graph}-{precision}-v{GRAPH_VERSION}"}


def is_current(onnx_path: Path, stamp: dict[str, str]) -> bool:
    """Whether ``onnx_path`` was exported from these weights by this graph version (read
    without the onnx package, so the CPU engines need neither it nor PyTorch)."""
    if not onnx_path.is_file():
        return False
    try:
        with open(onnx_path, "rb") as f:
            props = metadata_props(f)
    except (OSError, NotOnnx):  # a corrupt cache entry is simply re-exported
        return False
    return all(props.get(k) == v for k, v in stamp.items())


def write_onnx(model: ResolvedModel, onnx_path: Path, *, graph: str = "delta", precision: str = "fp32") -> Path:
    """Export the model's graph to ``onnx_path``, stamped with the weights' sha256 (needs PyTorch)."""
    sibling = sibling_onnx(model.path, graph=graph, precision=precision)
    beside = "its ONNX graph beside it is stale" if sibling.is_file() else "has no ONNX graph beside it"
    require_torch(f"{model.path}: this checkpoint {beside} ({sibling.name}); exporting one", modules=EXPORT_MODULES)
    from engines.model.onnx_export import export_onnx

    meta = onnx_stamp(model.sha256, graph, precision)
    return export_onnx(model.student, onnx_path, graph=graph, precision=precision, metadata=meta)


def onnx_for(model: ResolvedModel, *, graph: str = "delta", precision: str = "fp32") -> Path:
    """The ONNX file for a model: its shipped sibling if current, else a cached export."""
    stamp = onnx_stamp(model.sha256, graph, precision)
    sibling = sibling_onnx(model.path, graph=graph, precision=precision)
    if is_current(sibling, stamp):
        return sibling
    cached = cache_dir() / "onnx" / f"{model.sha256[:20]}.{graph}-{precision}-v{GRAPH_VERSION}.onnx"
    if is_current(cached, stamp):
        return cached
    return write_onnx(model, cached, graph=graph, precision=precision)
