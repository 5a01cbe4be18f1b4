"""Classical sharpeners and the evaluation report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from engines.classical import laplacian_kernel, laplacian_sharpen, unsharp_mask
from distill.data import list_images, load_images
from distill.degrade import degrade
from engines.errors import KdcamError
from distill.evaluate import evaluate, image_seed

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EVAL_DIR = SHARED / "data" / "eval"


def _hf(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))


@pytest.fixture(scope="module")
def soft() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.random((64, 80, 3), dtype=np.float32), (0, 0), 2.0)
    image = (image - image.min()) / (image.max() - image.min())
    return image.astype(np.float32)


@pytest.mark.parametrize("sharpen", [unsharp_mask, laplacian_sharpen])
def test_sharpeners_add_detail_and_keep_range(soft: np.ndarray, sharpen) -> None:
    out = sharpen(soft)
    assert out.dtype == np.float32 and out.shape == soft.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert _hf(out) > 1.2 * _hf(soft)
    as_uint8 = (soft * 255 + 0.5).astype(np.uint8)
    out8 = sharpen(as_uint8)
    assert out8.dtype == np.uint8 and out8.shape == as_uint8.shape
    assert _hf(out8.astype(np.float32)) > 1.2 * _hf(as_uint8.astype(np.float32))
    # strong settings clamp rather than overflow
    extreme = (
        unsharp_mask(as_uint8, amount=20.0) if sharpen is unsharp_mask else laplacian_sharpen(as_uint8, strength=5.0)
    )
    assert extreme.min() == 0 and extreme.max() == 255


def test_unsharp_amount_zero_is_the_input(soft: np.ndarray) -> None:
    assert np.array_equal(unsharp_mask(soft, amount=0.0), soft)
    as_uint8 = (soft * 255).astype(np.uint8)
    assert np.array_equal(unsharp_mask(as_uint8, sigma=2.0, amount=0.0), as_uint8)


def test_laplacian_matches_obs_kernel_and_leaves_flat_areas(soft: np.ndarray) -> None:
    k = laplacian_kernel(0.08)
    assert abs(k.sum() - 1.0) < 1e-6 and k[1, 1] == pytest.approx(1.64) and k[0, 0] == pytest.approx(-0.08)
    flat = np.full((16, 16, 3), 0.4, np.float32)
    assert np.array_equal(laplacian_sharpen(flat), flat)
    # away from the border and clamping, it is the plain 3x3 convolution
    expected = cv2.filter2D(soft, -1, k)
    np.testing.assert_allclose(laplacian_sharpen(soft)[1:-1, 1:-1], np.clip(expected, 0, 1)[1:-1, 1:-1], atol=1e-6)


@pytest.fixture()
def eval_dir(tmp_path: Path) -> Path:
    if not EVAL_DIR.is_dir():
        pytest.skip(f"shared eval images missing: {EVAL_DIR}")
    chosen = list_images(EVAL_DIR)[:2]
    folder = tmp_path / "eval"
    folder.mkdir()
    for path in chosen:
        shutil.copy(path, folder / path.name)
    return folder


def test_evaluate_writes_reports_and_scores_match_skimage(eval_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    student = lambda bgr: unsharp_mask(bgr, sigma=0.8, amount=0.5)  # noqa: E731
    presets = ["gaussian-1.4", "stream"]
    results = evaluate(
        images_dir=eval_dir,
        presets=presets,
        methods={"student": student},
        out_dir=out_dir,
        max_side=128,
        runs=1,
        grid_rows=2,
        quiet=True,
    )
    assert json.loads((out_dir / "results.json").read_text()) == results
    assert results["methods"] == ["input", "unsharp", "laplacian", "student"]
    assert results["num_images"] == 2
    markdown = (out_dir / "results.md").read_text()
    assert markdown.count("| method | PSNR | SSIM | fps@720p | fps@1080p |") == 2
    for preset in presets:
        assert f"## {preset}" in markdown
        grid = cv2.imread(str(out_dir / f"grid_{preset}.png"))
        assert grid is not None and grid.shape[0] > 2 * 128 and grid.shape[1] > 4 * 128  # input|unsharp|student|truth
    assert not [p for p in out_dir.iterdir() if ".partial-" in p.name]

    clean, _ = load_images(list_images(eval_dir), max_side=128)
    for preset in presets:
        rows = results["presets"][preset]["methods"]
        for i, image in enumerate(clean):
            degraded = degrade(image, preset, seed=image_seed(0, i))
            expected_psnr = peak_signal_noise_ratio(image, degraded, data_range=1.0)
            expected_ssim = structural_similarity(image, degraded, data_range=1.0, channel_axis=-1)
            assert rows["input"]["per_image"][i]["psnr"] == pytest.approx(expected_psnr, abs=1e-9)
            assert rows["input"]["per_image"][i]["ssim"] == pytest.approx(expected_ssim, abs=1e-9)
        assert rows["input"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows["input"]["per_image"]]))
        for row in rows.values():
            assert row["fps_720p"] is None or row["fps_720p"] > 0
            assert row["fps_1080p"] is None or row["fps_1080p"] > 0
            assert row["total_s"] >= 0 and np.isfinite(row["psnr"]) and 0 < row["ssim"] <= 1
    # unsharp helps on a pure blur
    blur_rows = results["presets"]["gaussian-1.4"]["methods"]
    assert blur_rows["unsharp"]["psnr"] > blur_rows["input"]["psnr"]


def test_evaluate_rejects_bad_input_before_writing(eval_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(KdcamError, match="gaussian-1.4"):
        evaluate(images_dir=eval_dir, presets=["nope"], out_dir=out_dir, quiet=True)
    assert not out_dir.exists()
    with pytest.raises(KdcamError, match="shrinker"):
        evaluate(
            images_dir=eval_dir,
            presets=["gaussian-1.4"],
            methods={"shrinker": lambda bgr: bgr[::2, ::2]},
            out_dir=out_dir,
            max_side=64,
            timing=False,
            crop_grid=False,
            quiet=True,
        )


def test_evaluate_without_timing(eval_dir: Path, tmp_path: Path) -> None:
    results = evaluate(
        images_dir=eval_dir,
        presets=["bicubic-x2"],
        max_images=1,
        out_dir=tmp_path / "o",
        max_side=64,
        timing=False,
        crop_grid=False,
        quiet=True,
    )
    assert results["num_images"] == 1
    assert all(row["fps_720p"] is None for row in results["presets"]["bicubic-x2"]["methods"].values())
    assert not (tmp_path / "o" / "grid_bicubic-x2.png").exists()
    assert "| input |" in (tmp_path / "o" / "results.md").read_text()
