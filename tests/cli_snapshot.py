"""Every option of every ``kdcam`` command, as plain JSON: names, default, type, help.

``tests/test_cli_snapshot.py`` compares it with ``tests/data/cli_snapshot.json``, taken
before the live side was reorganised, so a move never changes a flag, a default or a
help line. Regenerate it (only when a change is meant) with
``.venv/bin/python tests/cli_snapshot.py > tests/data/cli_snapshot.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(value):
        return f"<callable {getattr(value, '__name__', type(value).__name__)}>"
    return str(value)


def _type_name(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:  # typer >= 0.25 keeps the annotation
        return str(descriptor.annotation).replace("typing.", "")
    return str(getattr(param.type, "name", type(param.type).__name__))


def _param(param: Any) -> dict[str, Any]:
    return {
        "kind": type(param).__name__,
        "name": param.name,
        "opts": list(param.opts),
        "secondary_opts": list(param.secondary_opts),
        "type": _type_name(param),
        "flag": getattr(param, "is_flag", False),
        "required": param.required,
        "multiple": getattr(param, "multiple", False),
        "default": _plain(param.default),
        "show_default": _plain(getattr(param, "show_default", None)),
        "hidden": getattr(param, "hidden", False),
        "help": getattr(param, "help", None),
    }


def _walk(command: Any, path: str, out: dict[str, Any]) -> None:
    out[path] = {
        "help": command.help,
        "hidden": getattr(command, "hidden", False),
        "params": [_param(p) for p in command.params],
    }
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        _walk(sub, f"{path} {name}", out)


def snapshot() -> dict[str, Any]:
    import typer.main

    from distill.cli import app as distill_app
    from vcam.cli import app as kdcam_app

    out: dict[str, Any] = {}
    _walk(typer.main.get_command(kdcam_app), "kdcam", out)
    _walk(typer.main.get_command(distill_app), "kdcam distill", out)  # mounted as a pass-through
    return out


if __name__ == "__main__":
    print(json.dumps(snapshot(), indent=1, sort_keys=True))
