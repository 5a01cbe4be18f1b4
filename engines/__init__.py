"""Inference runtimes behind one small protocol (see ``engines.base.Engine``).

Names are loaded on first use (PEP 562): ``kdcam --help`` and the commands that need no
engine do not import torch or any runtime.
"""

from __future__ import annotations

from engines.foundation.lazy import lazy_exports

_EXPORTS = {
    "Engine": "engines.base",
    "ENGINES": "engines.registry",
    "ENGINE_NAMES": "engines.registry",
    "create_engine": "engines.registry",
    "engine_status": "engines.registry",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
