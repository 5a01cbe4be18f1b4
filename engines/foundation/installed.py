"""Whether a package is installed, answered without importing it."""

from __future__ import annotations

import importlib.util


def installed(name: str) -> bool:
    """Whether ``import name`` would find a package (nothing is imported; a package that an
    import hook refuses, or that is set to None in ``sys.modules``, counts as missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
