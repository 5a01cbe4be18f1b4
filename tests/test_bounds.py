"""Bounds on what a file or a flag may ask for: every one trips before anything large is
allocated, as one ``kdcam: error:`` line and exit code 1, and never stops the good inputs of
the same batch.

* images and video frames: at most ``vcam.media.MAX_PIXELS`` (``kdcam sharpen --max-pixels``),
  read from the header before decoding;
* student checkpoints: a bounded header (``engines.model.checkpoint.MAX_HEADER_BYTES``), every
  config field within the limits its dataclass declares, finite weights; a FIFO or a symlink
  loop as ``--model`` named as such;
* training: a batch of crops whose estimated memory is over what the machine has is refused
  before the first batch is made (``distill.loop.check_memory``).

The files are tiny crafted ones; the tests never need more than a few MB.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from live_fixtures import error_line, run_kdcam

from engines.errors import KdcamError

REPO = Path(__file__).resolve().parents[1]
FAST = REPO / "engines" / "model" / "zoo" / "fast" / "student.safetensors"
CLIP = REPO / "samples" / "vtest_clip.avi"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A valid PNG header that declares ``width`` x ``height`` (8-bit RGB) with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + _chunk(b"IEND", b""))
    return path


def _good(path: Path) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8))
    return path


def _sharpen(capsys, monkeypatch, *args) -> tuple[int, str]:
    code, _, err = run_kdcam(["sharpen", *map(str, args), "--engine", "onnxruntime"], capsys, monkeypatch)
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def no_decode_of(monkeypatch):
    """``no_decode_of(path)``: decoding ``path``'s bytes with OpenCV fails the test (before any allocation)."""
    real = cv2.imdecode
    banned: list[bytes] = []

    def imdecode(buf, flags):
        assert bytes(buf) not in banned, "the image was decoded before its size was checked"
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    return lambda path: banned.append(Path(path).read_bytes())


# --- images and video frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [100_000, 32_000])
def test_an_image_declaring_a_huge_size_is_refused_and_the_others_are_sharpened(side, tmp_path, capsys, monkeypatch,
                                                                                no_decode_of):
    huge = _png_declaring(tmp_path / "huge.png", side, side)
    assert huge.stat().st_size < 100
    if side < 100_000:  # OpenCV itself refuses 10^10 pixels; 32000x32000 it would allocate (3 GB)
        no_decode_of(huge)
    good, out = _good(tmp_path / "good.png"), tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, huge, good, "--output", out)
    assert code == 1, err
    line = error_line(err)
    assert f"huge.png: {side}x{side} is {side * side:,} pixels, over the limit of 50,000,000" in line
    assert "--max-pixels" in line
    assert "1 of 2 inputs failed" in err
    assert cv2.imread(str(out / "good.png")).shape == (33, 47, 3)
    assert not (out / "huge.png").exists()


def test_max_pixels_sets_the_bound(tmp_path, capsys, monkeypatch):
    good, out = _good(tmp_path / "good.png"), tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, good, "--output", out, "--max-pixels", "1000")
    assert code == 1 and "47x33 is 1,551 pixels, over the limit of 1,000" in error_line(err)
    code, err = _sharpen(capsys, monkeypatch, good, "--output", out, "--max-pixels", "1551")
    assert code == 0, err
    code, err = _sharpen(capsys, monkeypatch, good, "--output", out, "--max-pixels", "0")
    assert code == 1 and "--max-pixels must be at least 1" in error_line(err)


def test_an_image_opencv_refuses_to_decode_is_one_line(tmp_path, capsys, monkeypatch):
    """Above our bound (raised) OpenCV's own limit answers: one line, not its traceback."""
    huge = _png_declaring(tmp_path / "huge.png", 100_000, 100_000)
    good, out = _good(tmp_path / "good.png"), tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, huge, good, "--output", out, "--max-pixels", str(10**11))
    assert code == 1, err
    assert "huge.png: a damaged or unsupported PNG file (OpenCV cannot decode it" in error_line(err)
    assert (out / "good.png").is_file()


def test_a_video_over_the_bound_is_refused_from_its_container_before_a_frame_is_decoded(tmp_path, capsys,
                                                                                         monkeypatch):
    real = cv2.VideoCapture
    reads: list[str] = []

    class Counting:
        def __init__(self, *args):
            self._cap = real(*args)
            self._name = str(args[0])

        def read(self):
            reads.append(self._name)
            return self._cap.read()

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", Counting)
    good, out = _good(tmp_path / "good.png"), tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, CLIP, good, "--output", out, "--max-pixels", "400000")
    assert code == 1, err
    assert "vtest_clip.avi: 768x576 is 442,368 pixels, over the limit of 400,000" in error_line(err)
    assert not [name for name in reads if name.endswith("vtest_clip.avi")], "a frame was decoded"
    assert (out / "good.png").is_file() and not (out / "vtest_clip.avi").exists()


# --- student checkpoints --------------------------------------------------------------------------------------


def _fast_meta() -> dict:
    with safe_open(str(FAST), framework="pt") as f:
        return json.loads(f.metadata()["kdcam"])


def _student_with(path: Path, meta: dict | str, tensors: dict | None = None) -> Path:
    """The shipped `fast` student's weights (or ``tensors``) under the header ``meta``."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors if tensors is not None else load_file(str(FAST)), str(path), metadata={"kdcam": text})
    return path


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def _hostile_headers() -> dict[str, dict]:
    meta = _fast_meta()
    config = meta["config"]
    cases = {
        "num_convs 10^7": {**meta, "config": {**config, "num_convs": 10**7}},
        "version '1'": {**meta, "version": "1"},
        "version null": {**meta, "version": None},
        "version true": {**meta, "version": True},
        "no version": _without(meta, "version"),
        "no arch": _without(meta, "arch"),
        "arch 5": {**meta, "arch": 5},
        "no config": _without(meta, "config"),
        "config a list": {**meta, "config": [1, 2]},
        "an unknown config type": {**meta, "config": {**config, "type": "EvilConfig"}},
        "card a string": {**meta, "card": "x"},
        "scale 3": {**meta, "config": {**config, "scale": 3}},
        "num_convs 4.0": {**meta, "config": {**config, "num_convs": 4.0}},
        "reparam 1": {**meta, "config": {**config, "reparam": 1}},
        "act tanh": {**meta, "config": {**config, "act": "tanh"}},
        "gate null": {**meta, "config": {**config, "gate": None}},
    }
    for value in ("abc", -4, 200000, True):
        cases[f"channels {value!r}"] = {**meta, "config": {**config, "channels": value}}
    return cases


@pytest.fixture
def nothing_built(monkeypatch):
    """Building a student from a checkpoint fails the test: the header is refused before."""
    import engines.model.checkpoint as checkpoint

    def build(*args, **kwargs):
        raise AssertionError("a student was built from a hostile header")

    monkeypatch.setattr(checkpoint, "build_from_config", build)


@pytest.mark.parametrize("case", list(_hostile_headers()))
def test_a_hostile_model_header_is_refused_before_anything_is_built(case, tmp_path, nothing_built):
    from engines.model.checkpoint import load_student

    path = _student_with(tmp_path / "evil.safetensors", _hostile_headers()[case])
    with pytest.raises(KdcamError, match="bad student checkpoint header") as err:
        load_student(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_hostile_model_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch, nothing_built):
    evil = _student_with(tmp_path / "evil.safetensors", _hostile_headers()["num_convs 10^7"])
    out = tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, _good(tmp_path / "good.png"), "--output", out, "--model", evil)
    assert code == 1
    assert "config field 'num_convs' must be an integer (from 2 to 16), not 10000000" in error_line(err)
    assert not (out / "good.png").exists()


def test_every_registered_student_is_within_the_limits():
    from engines.model.students import STUDENTS, config_from_dict, config_to_dict

    for name, factory in STUDENTS.items():
        config = factory()
        assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config, name


def test_a_header_over_the_size_bound_is_refused_before_it_is_read(tmp_path):
    from engines.model.checkpoint import MAX_HEADER_BYTES, load_student

    meta = {**_fast_meta(), "card": {"note": "x" * (MAX_HEADER_BYTES + 1)}}
    path = _student_with(tmp_path / "big.safetensors", meta)
    with pytest.raises(KdcamError, match="over the limit of 1,048,576"):
        load_student(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_an_error_not_a_success(value, tmp_path, capsys, monkeypatch):
    tensors = load_file(str(FAST))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    bad = _student_with(tmp_path / "bad.safetensors", _fast_meta(), tensors)
    out = tmp_path / "out"
    code, err = _sharpen(capsys, monkeypatch, _good(tmp_path / "good.png"), "--output", out, "--model", bad)
    assert code == 1
    assert f"the weights {name} hold NaN or infinite values" in error_line(err)
    assert not (out / "good.png").exists()


def test_a_fifo_or_a_symlink_loop_as_model_says_what_it_is(tmp_path, capsys, monkeypatch):
    from engines.model.checkpoint import resolve_model_path

    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    folder = tmp_path / "folder"
    folder.mkdir()
    os.mkfifo(folder / "student.safetensors")
    for model, phrase in ((fifo, "is a FIFO (named pipe), not a model file"),
                          (folder, "is a FIFO (named pipe), not a model file"),
                          (tmp_path / "loop-a", "is a symbolic link loop")):
        with pytest.raises(KdcamError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
            resolve_model_path(model)
        code, err = _sharpen(capsys, monkeypatch, _good(tmp_path / "good.png"), "--output", tmp_path / "out",
                             "--model", model)
        assert code == 1 and phrase in error_line(err), err
    with pytest.raises(KdcamError, match="model file not found"):
        resolve_model_path(tmp_path / "missing.safetensors")


# --- training memory ------------------------------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def eight_gib(monkeypatch):
    """The machine has 8 GiB free, and no batch is ever made (a batch of 100000 crops would
    fill any machine): the bound must trip before."""
    import distill.loop as loop

    def loader(run):
        raise AssertionError("a batch was made before the memory was checked")

    monkeypatch.setattr(loop, "available_memory", lambda device: 8 << 30, raising=False)
    monkeypatch.setattr(loop, "_loader", loader)


@pytest.mark.parametrize("command", ["train", "fit-teacher"])
def test_a_batch_too_large_for_the_memory_is_refused_before_training(command, photos, tmp_path, capsys, monkeypatch,
                                                                      eight_gib):
    out = tmp_path / "run"
    code, _, err = run_kdcam(["distill", command, "--data", str(photos), "--out", str(out), "--steps", "1",
                              "--batch-size", "100000", "--no-progress", "--threads", "1"], capsys, monkeypatch)
    assert code == 1, err
    line = error_line(err)
    assert "--batch-size 100000 of --crop 128 px crops needs about" in line
    assert "of the 8.0 GiB of memory available; lower --batch-size or --crop" in line
    assert not out.exists()


def test_the_shipped_training_runs_fit_the_memory_estimate():
    """The estimate is conservative but never refuses what the shipped runs did on a 24 GB machine
    (scripts/distill_default.sh: students at 16 x 160 px and 2 x 512 px, the teacher at 8 x 96 px)."""
    from distill.loop import training_bytes
    from distill.restormer import Restormer, preset_config
    from distill.teacher import RGBTeacher
    from distill.train import BGRStudent
    from engines.model.students import create_student

    students = {arch: BGRStudent(create_student(arch)).train() for arch in ("kd-s4-c24-pa", "kd-s4-c16-pa")}
    teacher = RGBTeacher(Restormer(**preset_config("tiny"))).train()
    rng_before = torch.get_rng_state()
    for arch, student in students.items():
        for batch, crop in ((16, 160), (2, 512)):
            assert training_bytes(student, batch=batch, crop=crop) < 1 << 30, (arch, batch, crop)
        assert training_bytes(student, batch=100000, crop=128) > 100 << 30
    assert training_bytes(teacher, batch=8, crop=96) < 4 << 30
    assert torch.equal(torch.get_rng_state(), rng_before), "the estimate drew random numbers (resume is bit-exact)"


@pytest.mark.parametrize("change", [{"dim": 10**6}, {"num_blocks": [10**7, 1, 1, 1]}, {"heads": [1, 2, 4, "8"]},
                                    {"ffn_expansion_factor": 1e9}, {"dim": True}, {"LayerNorm_type": "x"}])
def test_a_hostile_teacher_header_is_refused_before_anything_is_built(change, tmp_path, monkeypatch):
    """A teacher file's Restormer config is checked against distill.official_weights.CONFIG_LIMITS first."""
    from distill import restormer, teacher
    from distill.restormer import Restormer, preset_config

    path = teacher.save_teacher(tmp_path / "t.safetensors", Restormer(**preset_config("tiny")))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()[teacher._META_KEY])
    meta["config"].update(change)
    save_file(load_file(str(path)), str(path), metadata={teacher._META_KEY: json.dumps(meta)})
    monkeypatch.setattr(restormer.Restormer, "__init__", lambda *a, **k: pytest.fail("built before the check"))
    with pytest.raises(KdcamError, match="Restormer config") as info:
        teacher.load_teacher(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
