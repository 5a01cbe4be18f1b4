"""Soft-label cache: teacher outputs per training item, resumable, used by the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engines.errors import KdcamError
from distill.config import LabelConfig, TrainConfig
from distill.label import label as _label
from distill.label import open_labels
from distill.teacher import teacher_bgr
from distill.train import train_student as _train_student


def label(**options):
    return _label(LabelConfig(**options))


def train_student(**options):
    return _train_student(TrainConfig(**options))


REPO = Path(__file__).resolve().parents[1]
OPTS = dict(crop=32, max_side=256, threads=1, progress=False, seed=1)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    from distill.restormer import Restormer, preset_config
    from distill.teacher import save_teacher

    torch.manual_seed(0)
    model = Restormer(**preset_config("tiny"))
    return save_teacher(tmp_path_factory.mktemp("teacher") / "tiny.safetensors", model, card={"size": "tiny"})


@pytest.fixture(scope="module")
def labels(photos, teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("labels")
    result = label(data=photos, out=out, teacher=teacher, items=4, batch_size=3, **OPTS)
    assert result["written"] == 4 and result["skipped"] == 0
    return out


def test_labels_are_the_teacher_outputs_of_the_training_items(labels, photos, teacher):
    from distill.split import make_patches, prepare_data
    from distill.teacher import load_any_teacher

    cache = open_labels(labels)
    manifest = json.loads((labels / "manifest.json").read_text())
    assert manifest["items"] == 4 and manifest["crop"] == 32 and manifest["seed"] == 1
    assert manifest["degradation"] == "webcam" and manifest["teacher"]["file"] == "tiny.safetensors"
    assert sorted(p.name for p in (labels / "items").iterdir()) == [f"{i:07d}.png" for i in range(4)]

    config = LabelConfig(data=photos, out=labels, seed=1, max_side=256, crop=32, degradation="webcam")
    split = prepare_data(config, load_val=False)
    dataset = make_patches(split, config, length=4)
    model, _ = load_any_teacher(teacher)
    for i in (0, 3):
        expected = teacher_bgr(model, dataset[i]["input"][None])[0]
        got = cache.read(i)
        assert got.shape == (3, 32, 32)
        assert float((got - expected).abs().max()) <= 1.0 / 65535  # 16-bit rounding only


def test_label_resume_skips_finished_items(labels, photos, teacher):
    items = labels / "items"
    (items / "0000002.png").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in items.iterdir()}
    result = label(data=photos, out=labels, teacher=teacher, items=4, **OPTS)
    assert result["written"] == 1 and result["skipped"] == 3
    after = {p.name: p.stat().st_mtime_ns for p in items.iterdir()}
    assert all(after[name] == t for name, t in before.items())  # finished labels untouched
    assert "0000002.png" in after
    assert not list(labels.glob("**/.*partial*"))  # no temporary files left behind


def test_label_refuses_a_cache_made_with_other_options(labels, photos, teacher):
    with pytest.raises(KdcamError, match="other settings"):
        label(data=photos, out=labels, teacher=teacher, items=4, **{**OPTS, "crop": 40})
    with pytest.raises(KdcamError, match="no teacher given"):
        label(data=photos, out=labels, items=4, **OPTS)


def test_training_uses_labels_and_checks_them(labels, photos, tmp_path):

    common = dict(data=photos, arch="kd-s4-c16", batch_size=2, crop=32, max_side=256, threads=1, progress=False, seed=1)
    result = train_student(out=tmp_path / "kd", alpha=0.5, labels=labels, steps=3, log_every=1, **common)
    assert result["steps"] == 3
    card = json.loads((tmp_path / "kd" / "student-last.json").read_text())["card"]
    assert card["alpha"] == 0.5 and card["teacher"]["file"] == "tiny.safetensors" and card["items"] == 4
    history = [json.loads(x) for x in (tmp_path / "kd" / "log.jsonl").read_text().splitlines()]
    assert all("kd" in e and "gt" in e for e in history)

    with pytest.raises(KdcamError, match="other options"):
        train_student(out=tmp_path / "x", alpha=0.5, labels=labels, steps=1, **{**common, "crop": 48})
    with pytest.raises(KdcamError, match="no label cache"):
        train_student(out=tmp_path / "x", alpha=0.5, labels=tmp_path, steps=1, **common)
    (labels / "items" / "0000001.png").rename(labels / "items" / "moved.bin")
    try:
        with pytest.raises(KdcamError, match="1 of 4 labels are missing"):
            train_student(out=tmp_path / "x", alpha=0.5, labels=labels, steps=1, **common)
    finally:
        (labels / "items" / "moved.bin").rename(labels / "items" / "0000001.png")


def test_footage_labels_have_no_ground_truth_and_train_with_the_photos(photos, teacher, tmp_path):
    """Crops of real footage, labelled by the teacher alone, mixed into training as their own targets."""
    from distill.footage import FootageMix

    clip = REPO / "samples" / "vtest_clip.avi"
    out = tmp_path / "footage"
    result = label(data=photos, out=out, teacher=teacher, items=3, footage=[clip], footage_every=100,
                   degradation="clean", **OPTS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["written"] == 3 and manifest["footage"] == [str(clip)] and manifest["footage_frames"] == 3
    assert "train_files" not in manifest
    run = train_student(data=photos, out=tmp_path / "kd", alpha=0.0, footage_labels=out, footage_share=0.5, steps=2,
                        batch_size=2, crop=32, max_side=256, threads=1, progress=False, seed=1)
    assert run["steps"] == 2
    card = json.loads((tmp_path / "kd" / "student-last.json").read_text())["card"]
    assert card["teacher"]["file"] == "tiny.safetensors"  # the footage's labels came from it
    mix = FootageMix(list(range(10)), [{"input": 0}] * 3, open_labels(out), share=0.5, with_teacher=False)
    footage = [i for i in range(10) if mix.is_footage(i)]
    assert 0 < len(footage) < 10 and all(set(mix[i]) == {"input", "target"} for i in footage)
    plain = tmp_path / "plain"
    label(data=photos, out=plain, teacher=teacher, items=2, **OPTS)
    with pytest.raises(KdcamError, match="not a footage label cache"):
        train_student(data=photos, out=tmp_path / "x", footage_labels=plain, steps=1, batch_size=2, **OPTS)


def test_a_cache_made_with_another_val_fraction_is_usable_with_the_same_one(photos, teacher, tmp_path):
    """label --val-fraction 0.2 used to make a cache train could never use (train had no such option)."""
    out = tmp_path / "vf"
    label(data=photos, out=out, teacher=teacher, items=2, val_fraction=0.2, **OPTS)
    common = dict(data=photos, batch_size=2, steps=1, alpha=0.5, labels=out, **OPTS)
    assert train_student(out=tmp_path / "ok", val_fraction=0.2, **common)["steps"] == 1
    with pytest.raises(KdcamError, match=r"--val-fraction 0.1 \(labels: 0.2\)"):
        train_student(out=tmp_path / "no", **common)
