"""Every command's options, defaults, types and help stay as they were before the live side moved.

The snapshot (``tests/data/cli_snapshot.json``) was taken before the reorganisation; a
change that is meant regenerates it with ``.venv/bin/python tests/cli_snapshot.py >
tests/data/cli_snapshot.json`` (and says so in review).
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_snapshot import snapshot

SNAPSHOT = Path(__file__).parent / "data" / "cli_snapshot.json"


def _differences(before: dict, now: dict) -> list[str]:
    found = [f"{c}: {'gone' if c in before else 'new'}" for c in sorted(set(before) ^ set(now))]
    for command in sorted(set(before) & set(now)):
        old, new = before[command], now[command]
        found += [
            f"{command}: {key} {old[key]!r} -> {new[key]!r}" for key in old if key != "params" and old[key] != new[key]
        ]
        old_params = {p["name"]: p for p in old["params"]}
        new_params = {p["name"]: p for p in new["params"]}
        if list(old_params) != list(new_params):
            found.append(f"{command}: options {list(old_params)} -> {list(new_params)}")
        for name in old_params.keys() & new_params.keys():
            found += [
                f"{command} {name}: {key} {old_params[name][key]!r} -> {new_params[name].get(key)!r}"
                for key in old_params[name]
                if old_params[name][key] != new_params[name].get(key)
            ]
    return found


def test_every_command_keeps_its_options_defaults_and_help():
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(snapshot(), sort_keys=True))
    assert _differences(before, now) == []


def test_the_snapshot_covers_every_command():
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    for command in (
        "kdcam start",
        "kdcam ctl",
        "kdcam ctl strength",
        "kdcam sharpen",
        "kdcam bench",
        "kdcam build-engine",
        "kdcam distill train",
        "kdcam distill fit-teacher",
    ):
        assert command in before
    assert any(p["opts"] == ["--fps"] for p in before["kdcam start"]["params"])


def test_the_comparison_sees_a_changed_default():
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(before))
    now["kdcam start"]["params"][2]["show_default"] = "25"
    assert _differences(before, now) == ["kdcam start fps: show_default '30' -> '25'"]
