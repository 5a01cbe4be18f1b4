"""Export a student's frame graph to ONNX with dynamic height and width."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from engines.atomic import atomic_path
from engines.errors import KdcamError
from engines.model.graphs import DeltaGraph, FrameGraph
from engines.model.residual import ResidualStudent

OPSET = 18  # >= 17; torch's exporter builds opset 18 natively (17 is converted down with a warning)
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}
#: graph kind -> (module, input names, output names); see engines.model.graphs
GRAPHS = {
    "delta": (DeltaGraph, ("planes", "strength"), ("delta_pos", "delta_neg")),
    "frame": (FrameGraph, ("frame", "strength"), ("sharpened",)),
}


def export_onnx(
    student: ResidualStudent,
    path: str | Path,
    *,
    graph: str = "delta",
    precision: str = "fp32",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the frame graph of ``student`` to ``path`` (atomically) and check it.

    ``metadata`` is stored in the model's ``metadata_props``.
    """
    import onnx

    if precision not in PRECISIONS:
        raise KdcamError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if graph not in GRAPHS:
        raise KdcamError(f"unknown graph '{graph}'; choose one of: {', '.join(GRAPHS)}")
    module_cls, input_names, output_names = GRAPHS[graph]
    module = module_cls(student.eval(), dtype=PRECISIONS[precision]).eval()
    m = student.multiple
    planes_shape = (8 * m, 12 * m) if (graph == "delta" and student.in_channels == 1) else (8 * m, 12 * m, 3)
    example = (torch.zeros(planes_shape, dtype=torch.uint8), torch.ones(1, dtype=torch.float32))
    # Height and width are multiples of the student's grid; stating that lets the
    # exporter keep the pixel (un)shuffle reshapes symbolic.
    dynamic = {input_names[0]: {0: m * torch.export.Dim("h_blocks", min=1, max=8192 // m),
                         1: m * torch.export.Dim("w_blocks", min=1, max=8192 // m)}, "strength": None}
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("torch.onnx", "torch.export", "onnxscript"):
            logging.getLogger(name).setLevel(logging.ERROR)
        torch.onnx.export(
            module,
            example,
            str(tmp),
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=OPSET,
            dynamic_shapes=dynamic,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        model = onnx.load(str(tmp))
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
    return path
