"""scripts/choose_alpha.py: each member's candidate is chosen on validation among the runs that add no flicker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(folder: Path, name: str, val: float, ratio: float | None = 1.0) -> None:
    run = folder / name
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"best_val_psnr": val, "val_psnr_input": 28.0}))
    if ratio is not None:
        (run / "stability.json").write_text(json.dumps({"models": {"m": {"ratio": ratio}}}))


def test_the_best_stable_candidate_of_each_member_is_chosen(tmp_path):
    _run(tmp_path, "quality-alpha1.0", 29.0)
    _run(tmp_path, "quality-alpha1.0-decision", 29.2)
    _run(tmp_path, "quality-alpha0.5", 29.5, ratio=1.3)  # best on validation, but it flickers
    _run(tmp_path, "quality-alpha0", 28.5, ratio=None)  # the ablation is never a candidate
    _run(tmp_path, "quality-alpha1.0-decision-gate", 30.0)  # nor a second stage
    _run(tmp_path, "fast-alpha1.0-decision", 28.8)
    _run(tmp_path, "wide-alpha1.0-decision", 29.4)
    notes = tmp_path / "notes.md"
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "choose_alpha.py"), "--runs", str(tmp_path),
                          "--notes", str(notes)], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["quality-alpha1.0-decision", "fast-alpha1.0-decision"]
    text = notes.read_text()
    assert "Ablation" in text and "+0.700 dB from distillation" in text and "wide-alpha1.0-decision" in text
