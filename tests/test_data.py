"""Data loading: listing, loading (with corrupt files), splitting, patch pairs."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distill.data import PatchDataset, file_weight, file_weights, list_images, load_images, split_train_val
from engines.errors import KdcamError


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3), dtype=np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 1.5 - 0.25, 0, 1)


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_list_images_finds_nested_div2k_layout(tmp_path: Path) -> None:
    img = (np.zeros((8, 8, 3)) + 100).astype(np.uint8)
    _write(tmp_path / "DIV2K" / "DIV2K_train_HR" / "0002.png", img)
    _write(tmp_path / "DIV2K" / "DIV2K_train_HR" / "0001.png", img)
    _write(tmp_path / "photos" / "cat.JPG", img)
    _write(tmp_path / "photos" / "deep" / "dog.webp", img)
    _write(tmp_path / "a.bmp", img)
    _write(tmp_path / ".thumbs" / "hidden.png", img)
    (tmp_path / "notes.txt").write_text("not an image")
    found = list_images(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == sorted(rel)
    assert set(rel) == {
        "DIV2K/DIV2K_train_HR/0001.png",
        "DIV2K/DIV2K_train_HR/0002.png",
        "photos/cat.JPG",
        "photos/deep/dog.webp",
        "a.bmp",
    }
    assert list_images(tmp_path / "a.bmp") == [tmp_path / "a.bmp"]


def test_list_images_missing_folder_is_a_domain_error(tmp_path: Path) -> None:
    with pytest.raises(KdcamError, match="no such folder"):
        list_images(tmp_path / "nope")


def test_load_images_skips_corrupt_files_with_one_warning(tmp_path: Path) -> None:
    colour = _write(tmp_path / "colour.png", (_texture(20, 30, 0) * 255).astype(np.uint8))
    grey = _write(tmp_path / "grey.png", np.full((10, 12), 128, np.uint8))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a jpeg at all" * 10)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, skipped = load_images([colour, garbage, grey, empty, missing])
    assert skipped == [garbage, empty, missing]
    ours = [w for w in caught if "unreadable" in str(w.message)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert all(str(p) in message for p in skipped)
    assert [im.shape for im in images] == [(20, 30, 3), (10, 12, 3)]
    for im in images:
        assert im.dtype == np.float32 and im.min() >= 0 and im.max() <= 1
    np.testing.assert_allclose(images[1], 128 / 255, atol=1e-6)


def test_load_images_max_side_and_uint8(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.png", (_texture(60, 100, 1) * 255).astype(np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, so no warning
        (image,), skipped = load_images([path], max_side=50, dtype="uint8")
    assert skipped == [] and image.shape == (30, 50, 3) and image.dtype == np.uint8


def test_split_is_deterministic_disjoint_and_stable() -> None:
    paths = [Path(f"train/img_{i:04d}.png") for i in range(400)]
    train, val = split_train_val(paths, val_fraction=0.1, seed=0)
    assert (train, val) == split_train_val(list(paths), val_fraction=0.1, seed=0)
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(paths)
    assert 20 <= len(val) <= 60
    # adding files never moves the old ones
    more = paths + [Path(f"train/new_{i}.png") for i in range(50)]
    train2, val2 = split_train_val(more, val_fraction=0.1, seed=0)
    assert set(val) <= set(val2) and set(train) <= set(train2)
    # a different seed gives a different split
    assert split_train_val(paths, val_fraction=0.1, seed=1)[1] != val


def test_split_of_a_tiny_set_leaves_neither_side_empty() -> None:
    paths = [Path("a.png"), Path("b.png"), Path("c.png")]
    for fraction in (0.01, 0.5, 0.99):
        train, val = split_train_val(paths, val_fraction=fraction)
        assert train and val and len(train) + len(val) == 3
    assert split_train_val(paths, val_fraction=0.0) == (paths, [])


def test_people_photos_get_more_weight() -> None:
    assert file_weight("x/facerec_obama.jpg") == 3.0
    assert file_weight("Group_People.png") == 3.0
    assert file_weight("portrait-01.jpg") == 3.0
    assert file_weight("scipy_face.jpg") == 1.0
    assert file_weights(["a.png", "person.png"]) == [1.0, 3.0]


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [_texture(90, 120, 0), (_texture(70, 80, 1) * 255).astype(np.uint8), _texture(40, 30, 2)]


def test_patch_dataset_shapes_and_range(images: list[np.ndarray]) -> None:
    ds = PatchDataset(images, crop=48, degradation="webcam-heavy", seed=0)  # always damaged
    assert len(ds) == 3 * 8
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"input", "target", "index"} and item["index"] == i
        for key in ("input", "target"):
            t = item[key]
            assert t.shape == (3, 48, 48) and t.dtype == torch.float32
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
        assert not torch.equal(item["input"], item["target"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["input"].shape == (4, 3, 48, 48) and batch["index"].tolist() == [0, 1, 2, 3]


def test_patch_dataset_is_deterministic_per_seed_and_index(images: list[np.ndarray]) -> None:
    a = PatchDataset(images, crop=32, seed=5, length=6)
    b = PatchDataset(images, crop=32, seed=5, length=6)
    later = a[4]
    _ = a[1], a[2]
    for key in ("input", "target"):
        assert torch.equal(later[key], a[4][key])
        assert torch.equal(a[4][key], b[4][key])
    assert not torch.equal(a[3]["target"], a[4]["target"])
    c = PatchDataset(images, crop=32, seed=6, length=6)
    assert any(not torch.equal(a[i]["target"], c[i]["target"]) for i in range(6))
    with pytest.raises(IndexError):
        a[6]


def test_patch_dataset_crop_larger_than_image(images: list[np.ndarray]) -> None:
    tiny = [_texture(20, 14, 3)]
    ds = PatchDataset(tiny, crop=64, degradation="defocus", augment=False, length=2)
    assert ds[0]["target"].shape == (3, 64, 64)


def test_patch_dataset_target_is_the_clean_crop_without_augment() -> None:
    image = _texture(50, 60, 4)
    ds = PatchDataset([image], crop=24, degradation="gaussian-1.4", augment=False, margin=8, length=3)
    target = ds[0]["target"].permute(1, 2, 0).numpy()
    # the target is some 24x24 window of the image
    match = cv2.matchTemplate(image, target, cv2.TM_SQDIFF)
    assert match.min() < 1e-8


def test_patch_dataset_weights_oversample(images: list[np.ndarray]) -> None:
    ds = PatchDataset(images, crop=16, weights=[3.0, 1.0, 1.0], repeats=2)
    counts = np.bincount([ds.image_index(i) for i in range(len(ds))], minlength=3)
    assert counts.tolist() == [6, 2, 2]
    with pytest.raises(KdcamError):
        PatchDataset(images, weights=[1.0])
    with pytest.raises(KdcamError):
        PatchDataset([], crop=16)
