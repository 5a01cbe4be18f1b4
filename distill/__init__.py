"""The training side: the Restormer teacher, degradations, soft labels, student training by
knowledge distillation, evaluation and export. It stands on ``engines`` (the student
registry, checkpoints, graphs and ONNX export) and never imports ``vcam``.

Names are loaded on first use (PEP 562), so ``import distill`` does not pull in torch.
"""

from __future__ import annotations

from engines.foundation.lazy import lazy_exports

_EXPORTS = {
    "Restormer": "distill.restormer",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
