"""Inference runtimes behind one small protocol (see ``engines.base.Engine``)."""

from engines.base import Engine
from engines.registry import ENGINE_NAMES, ENGINES, create_engine, engine_status

__all__ = ["ENGINES", "ENGINE_NAMES", "Engine", "create_engine", "engine_status"]
