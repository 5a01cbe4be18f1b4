"""Degradations: determinism, shape/range, and that each kind does its own kind of damage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from distill.degrade import CAMERA_SHARES, PRESETS, degrade, get_preset
from distill.degrade_ops import (
    JPEG,
    CameraDenoise,
    GaussianBlur,
    IspSharpen,
    MotionBlur,
    Noise,
    Resize,
    disk_kernel,
    motion_kernel,
)
from engines.errors import KdcamError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PHOTO = SHARED / "data" / "eval" / "skimage_astronaut.png"

RANDOM_PRESETS = [
    "camera",
    "dim",
    "isp-sharpened",
    "defocus",
    "motion",
    "stream",
    "stream-mpeg4",
    "webcam",
    "webcam-heavy",
]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    if not PHOTO.exists():
        pytest.skip(f"shared test photo missing: {PHOTO}")
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    return image[:192, 128:384].astype(np.float32) / 255.0  # the face and some texture


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.random((96, 128, 3), dtype=np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 1.0)


def _degrade_or_skip(image: np.ndarray, preset: str, seed: int) -> np.ndarray:
    try:
        return degrade(image, preset, seed=seed)
    except KdcamError as err:
        if preset == "stream-mpeg4":
            pytest.skip(f"OpenCV here has no mp4v writer: {err}")
        raise


def hf_energy(image: np.ndarray, axis: int | None = None) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if axis is None:
        return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))
    return float(np.mean(np.diff(grey, axis=axis) ** 2))


def test_registry_has_the_required_presets() -> None:
    for name in (
        "bicubic-x2",
        "defocus",
        "motion",
        "stream",
        "webcam",
        "gaussian-1.4",
        "camera",
        "dim",
        "isp-sharpened",
    ):
        assert name in PRESETS


def test_unknown_preset_lists_the_valid_names() -> None:
    with pytest.raises(KdcamError) as info:
        get_preset("blurry")
    message = str(info.value)
    assert "blurry" in message and "webcam" in message and "gaussian-1.4" in message
    assert "\n" not in message


@pytest.mark.parametrize("preset", list(PRESETS))
def test_same_seed_gives_identical_bytes(synthetic: np.ndarray, preset: str) -> None:
    a = _degrade_or_skip(synthetic, preset, 3)
    b = _degrade_or_skip(synthetic, preset, 3)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("preset", RANDOM_PRESETS)
def test_different_seeds_differ(synthetic: np.ndarray, preset: str) -> None:
    outputs = {_degrade_or_skip(synthetic, preset, seed).tobytes() for seed in range(3)}
    assert len(outputs) > 1


def test_clean_is_the_photo_untouched(photo: np.ndarray) -> None:
    assert np.array_equal(degrade(photo, "clean", seed=3), photo)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "clean"])
def test_preset_keeps_shape_dtype_range_and_degrades(photo: np.ndarray, preset: str) -> None:
    for seed in (0, 1):
        out = _degrade_or_skip(photo, preset, seed)
        assert out.shape == photo.shape
        assert out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        psnr = peak_signal_noise_ratio(photo, out, data_range=1.0)
        assert np.isfinite(psnr) and 15.0 < psnr < 40.0, (preset, seed, psnr)


def test_input_is_not_modified_and_uint8_is_accepted(photo: np.ndarray) -> None:
    before = photo.copy()
    out_float = degrade(photo, "webcam", seed=5)
    assert np.array_equal(photo, before)
    as_uint8 = np.clip(photo * 255 + 0.5, 0, 255).astype(np.uint8)
    out_uint8 = degrade(as_uint8, "gaussian-1.4", seed=0)
    assert out_uint8.dtype == np.float32 and out_float.dtype == np.float32
    assert np.abs(out_uint8 - degrade(photo, "gaussian-1.4", seed=0)).max() < 2.0 / 255


def test_gaussian_preset_is_sigma_1_4(photo: np.ndarray) -> None:
    # OpenCV's own kernel reaches 4 sigma, ours 3 sigma: they agree to well under 1/255
    expected = cv2.GaussianBlur(photo, (0, 0), 1.4, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(degrade(photo, "gaussian-1.4", seed=0), expected, atol=2e-4)


def test_bicubic_x2_is_down_then_up(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    small = cv2.resize(photo, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
    expected = np.clip(cv2.resize(np.clip(small, 0, 1), (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    np.testing.assert_allclose(degrade(photo, "bicubic-x2", seed=0), expected, atol=1e-6)


def test_blurs_remove_high_frequencies(photo: np.ndarray) -> None:
    clean = hf_energy(photo)
    for preset in ("defocus", "gaussian-1.4", "bicubic-x2"):
        assert hf_energy(degrade(photo, preset, seed=0)) < 0.5 * clean, preset


def test_motion_blur_is_directional(photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    horizontal = MotionBlur(length=9.0, angle=0.0)(photo, rng)
    # along the motion, neighbouring pixels become alike; across it, edges mostly stay
    along = hf_energy(horizontal, axis=1) / hf_energy(photo, axis=1)
    across = hf_energy(horizontal, axis=0) / hf_energy(photo, axis=0)
    assert along < 0.5 * across


def _blockiness(image: np.ndarray) -> float:
    """Mean |horizontal step| across 8-pixel block borders over the mean step elsewhere."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    steps = np.abs(np.diff(grey, axis=1)).mean(axis=0)  # steps[x] is between x and x+1
    at_border = steps[7::8].mean()
    inside = np.delete(steps, np.arange(7, steps.size, 8)).mean()
    return float(at_border / inside)


def test_jpeg_leaves_block_artifacts(photo: np.ndarray) -> None:
    compressed = JPEG(quality=20)(photo, np.random.default_rng(0))
    assert _blockiness(photo) < 1.1
    assert _blockiness(compressed) > 1.2


def test_stream_adds_compression_on_top_of_scaling(photo: np.ndarray) -> None:
    scale_only = Resize(factor=2.0, down="area", up="bilinear")(photo, np.random.default_rng(0))
    streamed = Resize(factor=2.0, down="area", up="bilinear", inner=JPEG(quality=20))(photo, np.random.default_rng(0))
    assert (
        peak_signal_noise_ratio(photo, streamed, data_range=1.0)
        < peak_signal_noise_ratio(photo, scale_only, data_range=1.0) - 0.5
    )


def test_noise_adds_energy_and_luma_fraction_one_is_grey(photo: np.ndarray) -> None:
    mid = np.full((64, 64, 3), 0.5, np.float32)
    out = Noise(read=0.02, shot=0.01, luma_fraction=1.0)(mid, np.random.default_rng(1))
    diff = out - mid
    assert diff.std() > 0.01
    np.testing.assert_allclose(diff[..., 0], diff[..., 1], atol=1e-6)
    np.testing.assert_allclose(diff[..., 1], diff[..., 2], atol=1e-6)
    coloured = Noise(read=0.02, shot=0.0, luma_fraction=0.0)(mid, np.random.default_rng(1)) - mid
    assert np.abs(coloured[..., 0] - coloured[..., 1]).mean() > 0.005
    assert hf_energy(Noise(read=0.02)(photo, np.random.default_rng(0))) > hf_energy(photo)


def test_kernels_are_normalised() -> None:
    for length, angle in ((3, 0), (4.5, 30), (9, 135)):
        k = motion_kernel(length, angle)
        assert abs(k.sum() - 1.0) < 1e-5 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    np.testing.assert_allclose(motion_kernel(3, 0)[motion_kernel(3, 0) > 0], [1 / 3] * 3, atol=1e-6)
    for radius in (1.0, 2.5):
        assert abs(disk_kernel(radius).sum() - 1.0) < 1e-5


def test_gaussian_zero_sigma_is_identity(synthetic: np.ndarray) -> None:
    out = GaussianBlur(sigma=0.0)(synthetic, np.random.default_rng(0))
    assert np.array_equal(out, synthetic)


def test_webcam_mix_spans_untouched_to_heavy(synthetic: np.ndarray) -> None:
    # a mix of heavy damage only teaches a model to sharpen frames that were already clean
    def psnrs(preset: str) -> np.ndarray:
        outs = [degrade(synthetic, preset, seed=s) for s in range(300)]
        return np.array(
            [
                np.inf if np.array_equal(o, synthetic) else peak_signal_noise_ratio(synthetic, o, data_range=1.0)
                for o in outs
            ]
        )

    mix, heavy = psnrs("webcam"), psnrs("webcam-heavy")
    assert 0.02 <= np.mean(np.isinf(mix)) <= 0.10  # no blur, no noise, no scaling or compression: about 1 in 20
    assert not np.isinf(heavy).any()
    assert np.mean(mix < 25.0) >= 0.2  # and still plenty of heavy damage
    assert np.median(mix) > np.median(heavy)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@pytest.mark.parametrize("kind", ["bilateral", "nlmeans", "blur"])
def test_each_camera_denoiser_removes_much_of_the_noise(photo: np.ndarray, kind: str) -> None:
    flat = np.full((96, 96, 3), 0.45, np.float32)
    noisy = Noise(read=6 / 255, shot=0.0, luma_fraction=0.9)(flat, np.random.default_rng(3))
    out = CameraDenoise(kinds=(kind,), strength=6 / 255, radius=1.5)(noisy, np.random.default_rng(4))
    assert out.shape == flat.shape and out.dtype == np.float32
    assert _grey(out - flat + 0.5).std() < 0.75 * _grey(noisy - flat + 0.5).std()
    if kind != "blur":  # the edge-preserving kinds also improve a real photo; a plain blur trades detail for noise
        noisy = Noise(read=6 / 255, shot=0.0, luma_fraction=0.9)(photo, np.random.default_rng(3))
        out = CameraDenoise(kinds=(kind,), strength=6 / 255, radius=1.5)(noisy, np.random.default_rng(4))
        assert peak_signal_noise_ratio(photo, out, data_range=1.0) > peak_signal_noise_ratio(
            photo, noisy, data_range=1.0
        )


def test_camera_denoise_draws_its_kind(photo: np.ndarray) -> None:
    denoise = CameraDenoise()
    outs = {degraded.tobytes() for degraded in (denoise(photo, np.random.default_rng(s)) for s in range(12))}
    assert len(outs) == 12
    with pytest.raises(ValueError, match="unknown kind"):
        CameraDenoise(kinds=("median",))(photo, np.random.default_rng(0))


def test_isp_sharpen_boosts_luma_edges_and_leaves_chroma(photo: np.ndarray) -> None:
    soft = GaussianBlur(sigma=1.0)(photo, np.random.default_rng(0))
    crisp = IspSharpen(sigma=1.0, amount=0.8)(soft, np.random.default_rng(0))
    halo = IspSharpen(sigma=2.5, amount=2.0)(soft, np.random.default_rng(0))
    assert hf_energy(soft) < hf_energy(crisp) < hf_energy(halo)
    # one correction added to all three channels: the chroma (B - G, R - G) stays where clipping allows
    inside = (crisp > 0.01).all(-1) & (crisp < 0.99).all(-1)
    np.testing.assert_allclose(
        (crisp[..., 0] - crisp[..., 1])[inside], (soft[..., 0] - soft[..., 1])[inside], atol=1e-5
    )
    # a halo overshoots the edge: the strong boost pushes further past the photo than the crisp one
    assert np.abs(halo - photo).mean() > np.abs(crisp - photo).mean()


def test_dim_is_noisy_and_denoised_not_blurred_away(photo: np.ndarray) -> None:
    for seed in range(6):
        dim = degrade(photo, "dim", seed=seed)
        residual = _grey(dim) - cv2.GaussianBlur(_grey(dim), (0, 0), 2.0)
        assert 22.0 < peak_signal_noise_ratio(photo, dim, data_range=1.0) < 40.0, seed
        assert residual.std() > 0.005, seed  # detail (and noise) is left: not a flat blur


def test_isp_sharpened_is_sharper_than_its_soft_optics(photo: np.ndarray) -> None:
    # on average the ISP has put more high-frequency energy back than the optics took away
    energies = [hf_energy(degrade(photo, "isp-sharpened", seed=s)) for s in range(8)]
    soft = [hf_energy(GaussianBlur(sigma=0.8)(photo, np.random.default_rng(0)))] * 8
    assert np.mean(energies) > np.mean(soft)


def test_camera_mix_holds_each_kind_in_its_share(synthetic: np.ndarray) -> None:
    """The `camera` mix is the five kinds of frame in the shares of CAMERA_SHARES: its
    RandomChoice draws them with those weights (checked by counting, over 400 seeds, the frames
    left untouched, a share that no other kind can produce)."""
    assert sum(CAMERA_SHARES.values()) == pytest.approx(1.0)
    assert set(CAMERA_SHARES) == {"untouched", "soft-camera", "missed-focus", "dim", "isp-sharpened"}
    untouched = np.mean([np.array_equal(degrade(synthetic, "camera", seed=s), synthetic) for s in range(400)])
    assert abs(untouched - CAMERA_SHARES["untouched"]) < 0.04
    description = get_preset("camera").describe()
    assert "camera denoise" in description and "ISP sharpen" in description


def test_missed_focus_blurs_strongly_and_keeps_noise_low(synthetic: np.ndarray) -> None:
    """A missed focus in good light takes away much more detail than it adds noise: its
    high-frequency energy falls well below the photo's, and the frame stays close to a plain
    blur of it (little noise, high-quality MJPEG)."""
    from distill.degrade import _missed_focus

    for seed in range(6):
        out = _missed_focus()(synthetic, np.random.default_rng(seed))
        assert hf_energy(out) < 0.5 * hf_energy(synthetic)
