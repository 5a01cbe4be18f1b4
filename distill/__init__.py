"""Models and training: the students, the Restormer teacher, checkpoints, distillation.

Names are loaded on first use (PEP 562), so importing ``distill.errors`` for the CLI's
error boundary does not pull in torch.
"""

from __future__ import annotations

from distill.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS)
