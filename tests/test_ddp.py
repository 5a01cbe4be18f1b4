"""DistributedDataParallel on the CPU: two gloo processes under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(TORCHRUN + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


@pytest.mark.slow
def test_two_process_training_equals_one_process(photos, tmp_path):
    from distill.config import TrainConfig
    from distill.train import train_student

    opts = ["--arch", "kd-s4-c16", "--steps", "6", "--batch-size", "4", "--crop", "32", "--max-side", "256",
            "--threads", "1", "--log-every", "3", "--val-every", "3", "--val-items", "4", "--ckpt-every", "3",
            "--no-progress"]
    ddp = tmp_path / "ddp"
    proc = _torchrun(["-m", "distill.cli", "train", "--data", str(photos), "--out", str(ddp), *opts])
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert proc.stdout.count('"world_size": 2') == 1  # only rank 0 reports
    log = [json.loads(x) for x in (ddp / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [3, 3, 6, 6]  # one writer: no duplicated lines
    assert not list(ddp.glob(".*partial*"))

    # the global batch is split across the ranks and gradients averaged: same as one process
    single = tmp_path / "single"
    train_student(TrainConfig(data=photos, out=single, arch="kd-s4-c16", steps=6, batch_size=4, crop=32, max_side=256,
                              threads=1, log_every=3, val_every=3, val_items=4, ckpt_every=3, progress=False))
    a = load_file(str(ddp / "student-last.safetensors"))
    b = load_file(str(single / "student-last.safetensors"))
    # The output conv starts at zero, so early gradients of the other layers are tiny and
    # Adam's normalisation magnifies summation-order rounding to ~1e-5. A wrong split or
    # summed instead of averaged gradients moves weights by ~lr (1e-3) per step.
    for key in a:
        assert torch.allclose(a[key], b[key], atol=2e-4), (key, float((a[key] - b[key]).abs().max()))


@pytest.mark.slow
def test_two_process_labelling_shards_the_items(photos, tmp_path):
    from distill.label import open_labels
    from distill.restormer import Restormer, preset_config
    from distill.teacher import save_teacher

    torch.manual_seed(0)
    teacher = save_teacher(tmp_path / "tiny.safetensors", Restormer(**preset_config("tiny")), card={"size": "tiny"})
    out = tmp_path / "labels"
    _torchrun(["-m", "distill.cli", "label", "--data", str(photos), "--out", str(out), "--teacher", str(teacher),
               "--items", "5", "--crop", "32", "--max-side", "256", "--threads", "1", "--no-progress"])
    cache = open_labels(out)
    assert cache.items == 5 and cache.missing() == []
