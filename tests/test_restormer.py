"""Restormer teacher: layout vs released manifests, numerical parity, loading, tiling, saving."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from engines.errors import KdcamError
from distill.restormer import RESTORMER_PRESETS, Restormer, num_parameters, restormer_macs_per_pixel
from distill.official_weights import infer_config, load_official_checkpoint
from distill.teacher import load_teacher, read_teacher_metadata, restore, save_teacher

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "restormer"
MANIFESTS = sorted((SHARED / "manifests").glob("*.json")) if SHARED.is_dir() else []
PARITY = sorted((SHARED / "parity").glob("*.pt")) if SHARED.is_dir() else []
NO_SHARED = f"reference data not found at {SHARED} (needs the shared Restormer manifests/parity vectors)"

RELEASED = [
    "motion_deblurring",
    "single_image_defocus_deblurring",
    "dual_pixel_defocus_deblurring",
    "deraining",
    "real_denoising",
    "gaussian_color_denoising",
    "gaussian_gray_denoising",
]

TINY_CFG = dict(RESTORMER_PRESETS["tiny"], dim=8, num_blocks=[1, 1, 1, 1], heads=[1, 2, 2, 4])


def _manifest_params() -> list:
    if not MANIFESTS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))]
    return [pytest.param(p, id=p.stem) for p in MANIFESTS]


def _parity_params() -> list:
    if not PARITY:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))]
    return [pytest.param(p, id=p.stem) for p in PARITY]


def _small_model(seed: int = 0, **overrides) -> Restormer:
    torch.manual_seed(seed)
    model = Restormer(**{**TINY_CFG, **overrides}).eval()
    with torch.no_grad():  # non-default values everywhere so every tensor matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize("manifest", _manifest_params())
def test_state_dict_matches_manifest(manifest: Path) -> None:
    info = json.loads(manifest.read_text())
    assert RESTORMER_PRESETS[manifest.stem] == info["config"]
    with torch.device("meta"):
        model = Restormer(**info["config"])
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert got == info["keys"]
    assert num_parameters(model) == info["num_parameters"]
    assert len(got) == info["num_tensors"]
    assert len(list(model.buffers())) == info["num_buffers"] == 0
    macs = restormer_macs_per_pixel(info["config"])
    assert macs["conv"] == pytest.approx(info["macs_per_pixel"]["conv"], abs=0.5)
    assert macs["attention_matmuls"] == pytest.approx(info["macs_per_pixel"]["attention_matmuls"], abs=0.5)
    # Config inference from names and shapes alone (meta tensors).
    state = {name: torch.empty(shape, device="meta") for name, shape, _ in info["keys"]}
    assert infer_config(state) == info["config"]


def test_released_presets_present() -> None:
    assert set(RELEASED) <= set(RESTORMER_PRESETS)
    for name in ("tiny", "small"):
        with torch.device("meta"):
            Restormer(**RESTORMER_PRESETS[name])


def test_bad_config_is_refused() -> None:
    with pytest.raises(KdcamError, match="heads"):
        Restormer(dim=48, heads=[5, 2, 4, 8])
    with pytest.raises(KdcamError, match="LayerNorm_type"):
        Restormer(LayerNorm_type="RMS")


# --------------------------------------------------------------------------- numerical parity


@pytest.mark.parametrize("vector", _parity_params())
def test_parity_float64(vector: Path) -> None:
    data = torch.load(vector, weights_only=True)
    model = Restormer(**data["config"])
    model.load_state_dict(data["state_dict"], strict=True)
    model = model.double().eval()
    with torch.no_grad():
        out = model(data["input"])
    assert out.dtype == torch.float64
    assert (out - data["output"]).abs().max().item() < 1e-8
    assert infer_config(data["state_dict"]) == data["config"]

    if "pad_check" in data:
        pc = data["pad_check"]
        x = pc["input"]
        h, w = x.shape[-2:]
        assert (-h % 8, -w % 8) == (pc["pad_bottom"], pc["pad_right"])
        with torch.no_grad():
            padded = torch.nn.functional.pad(x, (0, pc["pad_right"], 0, pc["pad_bottom"]), mode="reflect")
            cropped = model(padded)[..., :h, :w]
        assert (cropped - pc["output"]).abs().max().item() < 1e-8
        # restore() uses the same convention, plus the clamp.
        restored = restore(model, x)
        assert (restored - pc["output"].clamp(0, 1)).abs().max().item() < 1e-8


@pytest.mark.parametrize("vector", _parity_params())
def test_parity_float32(vector: Path) -> None:
    data = torch.load(vector, weights_only=True)
    model = Restormer(**data["config"])
    model.load_state_dict(data["state_dict"], strict=True)
    with torch.no_grad():
        out = model(data["input"].float())
    assert (out.double() - data["output"]).abs().max().item() < 5e-6


def test_forward_rejects_unpadded_sizes() -> None:
    with pytest.raises(KdcamError, match="divisible by 8"):
        _small_model()(torch.rand(1, 3, 20, 24))


# --------------------------------------------------------------------------- official checkpoints


@pytest.mark.parametrize(
    "layout",
    ["params", "bare", "module_prefix"],
)
def test_official_checkpoint_roundtrip(tmp_path: Path, layout: str) -> None:
    cfg = dict(TINY_CFG, ffn_expansion_factor=2.66, LayerNorm_type="BiasFree", bias=True)
    model = _small_model(1, **cfg)
    state = model.state_dict()
    if layout == "params":
        obj = {"params": state}
    elif layout == "bare":
        obj = state
    else:
        obj = {"params": {f"module.{k}": v for k, v in state.items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)

    loaded = load_official_checkpoint(path)
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_official_checkpoint_dual_pixel_inference(tmp_path: Path) -> None:
    model = _small_model(2, inp_channels=6, dual_pixel_task=True, LayerNorm_type="WithBias")
    torch.save({"params": model.state_dict()}, tmp_path / "dp.pth")
    assert load_official_checkpoint(tmp_path / "dp.pth").config == model.config


def test_official_checkpoint_explicit_config(tmp_path: Path) -> None:
    model = _small_model(3)
    torch.save({"params": model.state_dict()}, tmp_path / "c.pth")
    assert load_official_checkpoint(tmp_path / "c.pth", config=TINY_CFG).config == model.config
    # A config that does not fit the weights.
    with pytest.raises(KdcamError, match="c.pth"):
        load_official_checkpoint(tmp_path / "c.pth", config=dict(TINY_CFG, dim=16))
    with pytest.raises(KdcamError, match="c.pth"):
        load_official_checkpoint(tmp_path / "c.pth", config="tiny")


class _Trap:
    """Unpickling this would create a directory: proves the loader never unpickles."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    state = _small_model().state_dict()
    torch.save({"params": state, "extra": _Trap(marker)}, tmp_path / "evil.pth")
    with pytest.raises(KdcamError, match="evil.pth") as err:
        load_official_checkpoint(tmp_path / "evil.pth")
    assert "\n" not in str(err.value)
    with open(tmp_path / "plain.pth", "wb") as f:
        pickle.dump({"params": _Trap(marker)}, f)
    with pytest.raises(KdcamError, match="plain.pth"):
        load_official_checkpoint(tmp_path / "plain.pth")
    assert not marker.exists()


def test_bad_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(KdcamError, match="does not exist"):
        load_official_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(KdcamError, match="junk.pth"):
        load_official_checkpoint(tmp_path / "junk.pth")
    torch.save({"params": {"foo.weight": torch.zeros(3)}}, tmp_path / "wrong.pth")
    with pytest.raises(KdcamError, match="wrong.pth.*config="):
        load_official_checkpoint(tmp_path / "wrong.pth")
    state = _small_model().state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save({"params": state}, tmp_path / "extra.pth")
    with pytest.raises(KdcamError, match="unexpected"):
        load_official_checkpoint(tmp_path / "extra.pth")


# --------------------------------------------------------------------------- restore / tiling


def test_restore_pads_crops_and_clamps() -> None:
    model = _small_model()
    x = torch.rand(2, 3, 27, 45)
    out = restore(model, x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not out.is_inference()


def test_tiled_vs_full() -> None:
    model = _small_model()
    x = torch.rand(1, 3, 50, 70)  # padded to 56x72
    full = restore(model, x)
    # Tiles that cover the whole padded frame: identical to the full pass.
    assert torch.equal(restore(model, x, tile=72), full)
    assert torch.equal(restore(model, x, tile=128, overlap=8), full)
    # Real tiling: same shape, close but not equal (global attention statistics).
    tiled = restore(model, x, tile=32, overlap=8)
    assert tiled.shape == full.shape
    assert 0 < (tiled - full).abs().max() < 0.5
    # Tiles in one direction only.
    assert restore(model, x, tile=56, overlap=16).shape == full.shape


def test_tile_arguments_checked() -> None:
    model = _small_model()
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(KdcamError, match="multiple of 8"):
        restore(model, x, tile=20)
    with pytest.raises(KdcamError, match="overlap"):
        restore(model, x, tile=16, overlap=16)
    with pytest.raises(KdcamError, match="NCHW"):
        restore(model, x[0])
    with pytest.raises(KdcamError, match="too small"):
        restore(model, torch.rand(1, 3, 4, 32))


# --------------------------------------------------------------------------- our own teachers


def test_teacher_save_load_roundtrip(tmp_path: Path) -> None:
    model = _small_model(4, LayerNorm_type="BiasFree", bias=True)
    card = {"data": "eval set", "steps": 12, "psnr": 31.5}
    path = save_teacher(tmp_path / "teacher.safetensors", model, card=card)
    assert [p.name for p in tmp_path.iterdir()] == ["teacher.safetensors"]  # no partial files left

    meta = read_teacher_metadata(path)
    assert meta == {"config": model.config, "card": card}
    loaded = load_teacher(path)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_teacher_load_refuses_foreign_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(KdcamError, match="not a kdcam teacher"):
        load_teacher(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(KdcamError, match="not a kdcam teacher"):
        load_teacher(tmp_path / "junk.safetensors")
    with pytest.raises(KdcamError, match="does not exist"):
        load_teacher(tmp_path / "nope.safetensors")
    with pytest.raises(KdcamError, match="JSON"):
        save_teacher(tmp_path / "t.safetensors", _small_model(), card={"x": object()})
