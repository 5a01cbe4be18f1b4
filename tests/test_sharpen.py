"""`kdcam sharpen` on real photos and video, through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from vcam.cli import app

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "vtest_clip.avi"


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result


def test_sharpen_blurred_photos_raises_psnr(shared_dir, tmp_path):
    """The shipped default improves Gaussian-blurred (sigma 1.4) real photos."""
    src = tmp_path / "blurred"
    src.mkdir()
    clean = {}
    for path in sorted((shared_dir / "data" / "eval").glob("*.png"))[:3]:
        image = cv2.imread(str(path))
        clean[path.name] = image
        cv2.imwrite(str(src / path.name), cv2.GaussianBlur(image, (0, 0), 1.4))
    out = tmp_path / "out"
    result = _run(["sharpen", *map(str, sorted(src.iterdir())), "--output", str(out), "--engine", "onnxruntime"])
    assert result.exit_code == 0, result.output
    for name, gt in clean.items():
        blurred = cv2.imread(str(src / name))
        sharp = cv2.imread(str(out / name))
        assert sharp.shape == gt.shape and (out / name).suffix == ".png"
        assert peak_signal_noise_ratio(gt, sharp) > peak_signal_noise_ratio(gt, blurred) + 0.3, name


def test_corrupt_input_is_named_and_others_still_processed(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    result = _run(["sharpen", str(bad), str(good), str(bad_video), "--output", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("kdcam: error:")]
    assert len(errors) == 2
    assert str(bad) in errors[0] and str(bad_video) in errors[1]
    assert cv2.imread(str(out / "good.png")).shape == (37, 53, 3)
    assert not (out / "bad.png").exists() and not list(out.glob(".*partial*"))


def test_greyscale_png_stays_grey(tmp_path):
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.random.default_rng(1).integers(0, 256, (40, 60), dtype=np.uint8))
    result = _run(["sharpen", str(grey), "--output", str(tmp_path / "out"), "--strength", "0.5"])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "out" / "grey.png"), cv2.IMREAD_UNCHANGED).ndim == 2


def test_bad_strength_is_one_line_error(tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    result = _run(["sharpen", str(img), "--output", str(tmp_path / "o"), "--strength", "5"])
    # raised before any engine loads; the CLI boundary (run_cli) prints it as one line, exit 1
    assert result.exit_code == 1 and "bad --strength 5.0: give a number from 0 (off) to 2" in str(result.exception)


@pytest.mark.slow
def test_sharpen_video_keeps_frames_size_and_fps(tmp_path):
    if not SAMPLE.is_file():
        pytest.skip(f"sample clip missing: {SAMPLE}")
    clip = tmp_path / SAMPLE.name
    shutil.copyfile(SAMPLE, clip)
    out = tmp_path / "out"
    result = _run(["sharpen", str(clip), "--output", str(out)])
    assert result.exit_code == 0, result.output
    src, dst = cv2.VideoCapture(str(clip)), cv2.VideoCapture(str(out / clip.name))
    assert dst.get(cv2.CAP_PROP_FPS) == pytest.approx(src.get(cv2.CAP_PROP_FPS))
    n = 0
    while True:
        ok_a, a = src.read()
        ok_b, b = dst.read()
        assert ok_a == ok_b
        if not ok_a:
            break
        assert a.shape == b.shape
        n += 1
    assert n == 300
