"""The installed students' model cards and the README report agree with a fresh evaluation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distill.shipping import PRESETS, TITLES, distilled_alpha, title
from engines.model.checkpoint import load_student
from engines.model.zoo import installed, zoo_path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "distill"
MEMBERS = installed()


@pytest.fixture(scope="module")
def cards() -> dict[str, dict]:
    return {name: load_student(zoo_path(name))[1]["card"] for name in MEMBERS}


@pytest.mark.slow
def test_cards_match_a_fresh_evaluation(shared_dir, cards, tmp_path):
    """Re-score every installed student (as it ships: on an engine, fp32) on every preset of its card."""
    from distill.config import EvaluateConfig
    from distill.evaluate import evaluate_models

    presets = list(next(iter(cards.values()))["eval"])
    fresh = evaluate_models(EvaluateConfig(data=shared_dir / "data" / "eval", out=tmp_path, presets=",".join(presets),
                                           student=[f"{name}={zoo_path(name)}" for name in MEMBERS], timing=False,
                                           crop_grid=False))
    for name, card in cards.items():
        for preset in presets:
            for method in ("input", "unsharp", "laplacian", name):
                got, want = fresh["presets"][preset]["methods"][method], card["eval"][preset][method]
                if want["psnr"] is None:  # an untouched input: infinite PSNR
                    assert got["psnr"] is None, (name, preset, method)
                    continue
                # engines may differ by a rounding step on a few pixels; a different model moves whole dB
                assert got["psnr"] == pytest.approx(want["psnr"], abs=0.02), (name, preset, method)
                assert got["ssim"] == pytest.approx(want["ssim"], abs=5e-4), (name, preset, method)


def _readme_rows(text: str) -> dict[tuple[str, str], float]:
    """(preset, row title) -> PSNR from the README's distillation report tables."""
    body = text.split("<!-- distill-report:start -->", 1)[1].split("<!-- distill-report:end -->", 1)[0]
    rows, preset = {}, None
    for line in body.splitlines():
        heading = re.fullmatch(r"\*\*([\w.-]+)\*\*", line.strip())
        if heading:
            preset = heading.group(1)
        elif preset and line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 6 and re.fullmatch(r"[\d.]+|inf", cells[1]):
                rows[(preset, cells[0])] = float(cells[1])  # inf: the output equals the reference
    return rows


def test_readme_report_matches_the_model_cards(cards):
    """The README tables are the cards' numbers: every preset, every installed student, same PSNR."""
    rows = _readme_rows((REPO / "README.md").read_text())
    for name, card in cards.items():
        assert distilled_alpha(card) > 0 and (REPO / card["teacher"]["file"]).is_file(), "a distilled student"
        for preset in PRESETS:
            for key in ("unsharp", "laplacian", name):
                want = card["eval"][preset][key]["psnr"]
                assert rows[(preset, title(key, MEMBERS))] == (float("inf") if want is None else pytest.approx(want, abs=0.006)), \
                    (name, preset, key)
    for preset in PRESETS:
        assert (preset, TITLES["teacher"]) in rows and (preset, TITLES["alpha0"]) in rows
        assert (REPORT / f"grid_{preset}.png").is_file(), preset
    for name in ("teacher.safetensors", "teacher-settings.json", "student-alpha0.safetensors", "REPORT.md", "results.md"):
        assert (REPORT / name).is_file(), name
