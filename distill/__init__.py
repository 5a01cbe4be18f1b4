"""Models and training: the students, the Restormer teacher, checkpoints, distillation.

Names are loaded on first use (PEP 562), so importing ``distill.errors`` for the CLI's
error boundary does not pull in torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DEFAULT_MODEL": "distill.checkpoint",
    "load_student": "distill.checkpoint",
    "save_student": "distill.checkpoint",
    "KdcamError": "distill.errors",
    "Restormer": "distill.restormer",
    "STUDENTS": "distill.students",
    "create_student": "distill.students",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
