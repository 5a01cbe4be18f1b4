"""Every line of the code meets the line-length setting (``[tool.ruff] line-length`` in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> list[str] | None:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    return [found] if found else None


def test_no_line_is_over_the_limit():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' brings it)")
    out = subprocess.run([*ruff, "check", "--no-cache", "--select", "E501", "--output-format", "concise",
                          "vcam", "distill", "engines", "scripts", "tests"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
