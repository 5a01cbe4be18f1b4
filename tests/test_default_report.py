"""The installed students' model cards and the README report agree with a fresh evaluation."""

from __future__ import annotations

import json
import math
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


FRESH_PHOTOS = 3  # re-scored per photo; the means of all 12 are checked against the shipped report


def _same_psnr(got: float | None, want: float | None) -> bool:
    """None (and inf) is an untouched input: infinite PSNR."""
    if want is None or got is None or math.isinf(got) or math.isinf(want):
        return (want is None or math.isinf(want)) and (got is None or math.isinf(got))
    return got == pytest.approx(want, abs=0.02)  # engines may differ by a rounding step on a few pixels


def test_cards_are_the_shipped_evaluation(cards):
    """Every number on a card is the shipped evaluation's (docs/distill/results.json)."""
    report = json.loads((REPORT / "results.json").read_text())["presets"]
    for name, card in cards.items():
        for preset, methods in card["eval"].items():
            for method in ("input", "unsharp", "laplacian", name):
                got, want = methods[method], report[preset]["methods"][method]
                assert _same_psnr(got["psnr"], want["psnr"]) and got["ssim"] == want["ssim"], (name, preset, method)


@pytest.mark.slow
def test_the_shipped_evaluation_is_reproduced(shared_dir, cards, tmp_path):
    """Re-score the first photos on every preset of the cards, the students as they ship (on an
    engine, fp32): each photo scores what the shipped evaluation recorded for it."""
    from distill.config import EvaluateConfig
    from distill.evaluate import evaluate_models

    report = json.loads((REPORT / "results.json").read_text())
    presets = list(next(iter(cards.values()))["eval"])
    fresh = evaluate_models(EvaluateConfig(data=shared_dir / "data" / "eval", out=tmp_path, presets=",".join(presets),
                                           student=[f"{name}={zoo_path(name)}" for name in MEMBERS], timing=False,
                                           crop_grid=False, max_images=FRESH_PHOTOS))
    for preset in presets:
        for method in ("input", "unsharp", "laplacian", *MEMBERS):
            got_rows = fresh["presets"][preset]["methods"][method]["per_image"]
            want_rows = report["presets"][preset]["methods"][method]["per_image"][:FRESH_PHOTOS]
            assert [r["image"] for r in got_rows] == [r["image"] for r in want_rows]
            for got, want in zip(got_rows, want_rows):
                # a different model moves whole dB
                assert _same_psnr(got["psnr"], want["psnr"]), (preset, method, got, want)
                assert got["ssim"] == pytest.approx(want["ssim"], abs=5e-4), (preset, method, got, want)


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
                assert rows[(preset, title(key, MEMBERS))] == (
                    float("inf") if want is None else pytest.approx(want, abs=0.006)
                ), (name, preset, key)
    for preset in PRESETS:
        assert (preset, TITLES["teacher"]) in rows and (preset, TITLES["alpha0"]) in rows
        assert (REPORT / f"grid_{preset}.png").is_file(), preset
    for name in (
        "teacher.safetensors",
        "teacher-settings.json",
        "student-alpha0.safetensors",
        "REPORT.md",
        "results.md",
    ):
        assert (REPORT / name).is_file(), name
