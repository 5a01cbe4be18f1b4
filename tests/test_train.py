"""Student training: the resumable loop, its checkpoints, data order and errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engines.errors import KdcamError
from distill.config import TrainConfig
from distill.sampler import StepBatches, global_batch_indices
from distill.train import train_student as _train_student
from distill.train_state import load_train_state, read_train_header, save_train_state


def train_student(**options):
    return _train_student(TrainConfig(**options))


REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# a test-sized configuration: tiny student, small crops, few steps, one thread
TINY = dict(arch="kd-s4-c16", crop=32, batch_size=2, max_side=256, threads=1, progress=False)


# --------------------------------------------------------------------------- units


def test_train_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    for _ in range(2):
        model(torch.rand(1, 3, 8, 8)).mean().backward()
        opt.step()
        sched.step()
    history = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "val_psnr": 30.0}]
    path = save_train_state(tmp_path / "s.safetensors", step=2, model=model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), history=history, settings={"arch": "x"},
                            best=model.state_dict(), best_metric=30.0)
    expected_next = torch.rand(3)
    assert (tmp_path / "s.json").is_file()
    assert read_train_header(path)["step"] == 2

    st = load_train_state(path)
    assert st.step == 2 and st.history == history and st.settings == {"arch": "x"} and st.best_metric == 30.0
    model2 = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1))
    model2.load_state_dict(st.model)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    opt2.load_state_dict(st.optimizer)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 0.5 ** s)
    sched2.load_state_dict(st.scheduler)
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
        assert float(a["step"]) == float(b["step"])
    assert sched2.get_last_lr() == sched.get_last_lr()
    from distill.train_state import rng_restore

    rng_restore(st.rng, st.rng_tensors)
    assert torch.equal(torch.rand(3), expected_next)


def test_not_a_train_state_is_a_clear_error(tmp_path):
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(KdcamError, match="not a kdcam training checkpoint"):
        load_train_state(bogus)


def test_batch_order_is_a_function_of_step_and_covers_items():
    first = [global_batch_indices(s, 4, seed=3, items=10) for s in range(5)]
    again = [global_batch_indices(s, 4, seed=3, items=10) for s in range(5)]
    assert first == again
    flat = [i for b in first for i in b]  # 20 positions = 2 epochs of 10 items
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # a new permutation each epoch
    assert global_batch_indices(2, 3, seed=0) == [6, 7, 8]  # fresh items when unlimited
    # ranks split each global batch into equal, disjoint slices, resuming mid-way
    r0 = list(StepBatches(start=1, stop=3, batch_size=4, seed=3, items=10, rank=0, world=2))
    r1 = list(StepBatches(start=1, stop=3, batch_size=4, seed=3, items=10, rank=1, world=2))
    assert [a + b for a, b in zip(r0, r1)] == first[1:3]


# --------------------------------------------------------------------------- end to end


def test_supervised_training_writes_students_log_and_plot(photos, tmp_path):
    from engines.model.checkpoint import load_student

    out = tmp_path / "run"
    result = train_student(data=photos, out=out, alpha=0.0, steps=6, val_every=3, val_items=4, ckpt_every=3,
                           log_every=2, **TINY)
    assert result["steps"] == 6
    for name in ("student-best.safetensors", "student-best.json", "student-last.safetensors",
                 "train_state.safetensors", "log.jsonl", "loss.png", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines if "loss" in e] == [2, 4, 6]
    assert [e["step"] for e in lines if "val_psnr" in e] == [3, 6]
    student, meta = load_student(out / "student-best.safetensors")
    card = meta["card"]
    assert meta["arch"] == "kd-s4-c16" and card["alpha"] == 0.0 and card["steps"] == 6
    assert card["teacher"] is None and card["val_psnr"] is not None and card["macs_per_pixel"] > 0
    assert card["data_split"]["train_images"] + card["data_split"]["val_images"] == 5
    # a finished run started again does no more steps
    again = train_student(data=photos, out=out, alpha=0.0, steps=6, val_every=3, val_items=4, ckpt_every=3,
                          log_every=2, **TINY)
    assert again["resumed_from"] == 6 and again["steps"] == 6


def test_training_with_an_on_the_fly_teacher(photos, tmp_path):
    from distill.restormer import Restormer, preset_config
    from distill.teacher import save_teacher

    torch.manual_seed(0)
    teacher = save_teacher(tmp_path / "teacher.safetensors", Restormer(**preset_config("tiny")), card={"size": "tiny"})
    result = train_student(data=photos, out=tmp_path / "kd", alpha=1.0, teacher=teacher, steps=2, log_every=1, **TINY)
    meta = json.loads((tmp_path / "kd" / "student-last.json").read_text())
    assert result["steps"] == 2 and meta["card"]["teacher"]["file"] == "teacher.safetensors"
    history = [json.loads(x) for x in (tmp_path / "kd" / "log.jsonl").read_text().splitlines()]
    assert all("kd" in e and "gt" not in e for e in history)


def test_a_second_stage_trains_the_gate_alone(photos, tmp_path):
    """--init starts from a checkpoint (its architecture); --train-only gate leaves the body as it was."""
    gated = {**TINY, "arch": "kd-s4-c16-pa"}
    train_student(data=photos, out=tmp_path / "one", steps=3, **gated)
    first = tmp_path / "one" / "student-last.safetensors"
    gated.pop("arch")
    train_student(data=photos, out=tmp_path / "two", steps=3, init=first, train_only="gate", lr=1e-2, **gated)
    before, after = load_file(str(first)), load_file(str(tmp_path / "two" / "student-last.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("code.") for k in changed)
    settings = json.loads((tmp_path / "two" / "settings.json").read_text())
    assert settings["arch"] == "kd-s4-c16-pa" and settings["init_sha256"]
    card = json.loads((tmp_path / "two" / "student-last.json").read_text())["card"]
    assert card["train_only"] == "gate" and card["previous_stage"]["name"] == "one"
    with pytest.raises(KdcamError, match="no whole-frame gate"):
        train_student(data=photos, out=tmp_path / "three", steps=1, train_only="gate", **TINY)
    with pytest.raises(KdcamError, match="differs from --init"):
        train_student(data=photos, out=tmp_path / "four", steps=1, init=first, **TINY)


def test_bad_options_are_clear_errors(photos, tmp_path):
    with pytest.raises(KdcamError, match="no such folder"):
        train_student(data=tmp_path / "missing", out=tmp_path / "r", steps=1, **TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(KdcamError, match="no images"):
        train_student(data=tmp_path / "empty", out=tmp_path / "r", steps=1, **TINY)
    with pytest.raises(KdcamError, match="unknown student"):
        train_student(data=photos, out=tmp_path / "r", steps=1, **{**TINY, "arch": "nope"})
    with pytest.raises(KdcamError, match="between 0 and 1"):
        train_student(data=photos, out=tmp_path / "r", steps=1, alpha=2.0, **TINY)
    with pytest.raises(KdcamError, match="--labels"):
        train_student(data=photos, out=tmp_path / "r", steps=1, alpha=0.5, **TINY)
    with pytest.raises(KdcamError, match="multiple of 4"):
        train_student(data=photos, out=tmp_path / "r", steps=1, **{**TINY, "crop": 30})
    if (SHARED / "data" / "eval").is_dir():
        with pytest.raises(KdcamError, match="evaluation set"):
            train_student(data=SHARED / "data" / "eval", out=tmp_path / "r", steps=1, **TINY)


def test_resuming_with_other_settings_is_refused(photos, tmp_path):
    out = tmp_path / "run"
    train_student(data=photos, out=out, steps=2, **TINY)
    with pytest.raises(KdcamError, match="other settings"):
        train_student(data=photos, out=out, steps=2, loss="l1", **TINY)


def _train_cmd(photos: Path, out: Path, steps: int, ckpt_every: int) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "train", "--data", str(photos), "--out", str(out),
            "--arch", "kd-s4-c16", "--steps", str(steps), "--batch-size", "2", "--crop", "32", "--max-side", "256",
            "--threads", "1", "--ckpt-every", str(ckpt_every), "--log-every", "5", "--no-progress"]


@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(photos, tmp_path):
    steps = 150
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_train_cmd(photos, out, steps, 10), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "train_state.safetensors"
    killed_at = None
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file():
                killed_at = read_train_header(state)["step"]
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert killed_at is not None, "the run ended before it could be killed"
    assert 10 <= killed_at < steps
    assert not (out / "student-last.safetensors").exists()
    resumed_state = read_train_header(state)["step"]  # the kill never loses the last checkpoint
    assert resumed_state >= killed_at

    # same command again: resumes and finishes
    done = subprocess.run(_train_cmd(photos, out, steps, 10), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"] == resumed_state and summary["steps"] == steps
    assert not list(out.glob(".*partial*"))  # temporary files of the killed writer are gone
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(5, steps + 1, 5))  # continuous, no gaps or repeats
    assert [e["step"] for e in load_train_state(state).history] == list(range(5, steps + 1, 5))

    # an uninterrupted run with the same options ends with the same weights and losses
    ref = tmp_path / "straight"
    train_student(data=photos, out=ref, steps=steps, ckpt_every=steps, log_every=5, **TINY)
    a = load_file(str(out / "student-last.safetensors"))
    b = load_file(str(ref / "student-last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ref_log = [json.loads(x) for x in (ref / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in ref_log] == [e["loss"] for e in log]


def test_validation_flags_a_model_whose_output_is_its_input() -> None:
    import contextlib

    import torch

    from distill.loop import Task

    task = Task()
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 16, 16, generator=gen)
    task.val_batch = {"input": (target + 0.05).clamp(0, 1), "target": target}

    class Shift(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x - 0.05

    dead = task.validate(torch.nn.Identity(), torch.device("cpu"), contextlib.nullcontext)
    alive = task.validate(Shift(), torch.device("cpu"), contextlib.nullcontext)
    assert dead["output_is_input"] is True and dead["val_psnr"] == dead["val_psnr_input"]
    assert "output_is_input" not in alive and alive["val_psnr"] > alive["val_psnr_input"] + 10
