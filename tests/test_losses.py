"""Losses of distillation training: pixel, edge and frequency terms and the alpha mix."""

from __future__ import annotations

import math

import pytest
import torch

from engines.errors import KdcamError
from distill.losses import (
    DistillLoss,
    RestorationLoss,
    charbonnier,
    decision_loss,
    edge_loss,
    frequency_loss,
    l1,
    mse_per_image,
    pooled_psnr,
    sobel,
)


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)


def test_pixel_losses_are_zero_on_equal_images_and_close_to_l1():
    a, b = _pair()
    assert float(l1(a, a)) == 0.0
    assert float(charbonnier(a, a)) == pytest.approx(1e-3, rel=1e-4)  # eps floor
    assert float(charbonnier(a, b)) == pytest.approx(float(l1(a, b)), abs=2e-3)


def test_sobel_sees_edges_not_flat_areas():
    flat = torch.full((1, 1, 8, 8), 0.5)
    assert float(sobel(flat).abs().max()) == 0.0
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    grad = sobel(step)
    assert grad.shape == (1, 2, 8, 8)
    assert float(grad[:, 0].abs().max()) > 0.4  # x-gradient at the vertical edge
    assert float(grad[:, 1].abs().max()) == 0.0  # no y-gradient


def test_edge_and_frequency_terms_penalise_blur():
    sharp, _ = _pair(1)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1, count_include_pad=False)
    assert float(edge_loss(sharp, sharp)) == 0.0
    assert float(frequency_loss(sharp, sharp)) == 0.0
    assert float(edge_loss(blurred, sharp)) > 0.01
    assert float(frequency_loss(blurred, sharp)) > 0.01


def test_restoration_loss_weights_terms():
    a, b = _pair(2)
    plain = RestorationLoss("l1")
    full = RestorationLoss("l1", edge_weight=0.5, freq_weight=0.25)
    expected = l1(a, b) + 0.5 * edge_loss(a, b) + 0.25 * frequency_loss(a, b)
    assert float(plain(a, b)) == pytest.approx(float(l1(a, b)))
    assert float(full(a, b)) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(KdcamError, match="unknown loss"):
        RestorationLoss("mse")
    with pytest.raises(KdcamError, match=">= 0"):
        RestorationLoss("l1", edge_weight=-1)


def test_distill_loss_mixes_teacher_and_ground_truth():
    pred, gt = _pair(3)
    teacher = gt * 0.5
    crit = RestorationLoss("charbonnier")
    total, logs = DistillLoss(alpha=0.3)(pred, gt, teacher)
    expected = 0.3 * crit(pred, teacher) + 0.7 * crit(pred, gt)
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert set(logs) >= {"loss", "gt", "kd"}
    # alpha = 0 is supervised: no teacher needed, no kd term
    total0, logs0 = DistillLoss(alpha=0.0)(pred, gt)
    assert "kd" not in logs0 and float(total0) == pytest.approx(float(crit(pred, gt)))
    # alpha = 1 ignores the ground truth entirely
    total1, logs1 = DistillLoss(alpha=1.0)(pred, gt, teacher)
    assert "gt" not in logs1 and float(total1) == pytest.approx(float(crit(pred, teacher)))


def test_distill_loss_rejects_bad_alpha_and_missing_teacher():
    pred, gt = _pair(4)
    with pytest.raises(KdcamError, match="between 0 and 1"):
        DistillLoss(alpha=1.5)
    with pytest.raises(KdcamError, match="between 0 and 1"):
        DistillLoss(alpha=-0.1)
    with pytest.raises(KdcamError, match="teacher"):
        DistillLoss(alpha=0.5)(pred, gt, None)


def test_decision_loss_makes_the_student_leave_alone_what_the_teacher_leaves_alone():
    g = torch.Generator().manual_seed(5)
    inp = torch.rand(2, 3, 16, 16, generator=g)
    acts = inp + 0.05 * torch.randn(2, 3, 16, 16, generator=g)
    faint = inp + 0.004 * torch.randn(2, 3, 16, 16, generator=g)  # about one 8-bit level: "left alone"
    assert float(decision_loss(inp.clone(), inp, inp)) == 0.0  # both leave it alone
    assert float(decision_loss(acts, acts, inp)) == 0.0
    # acting where the teacher leaves a crop alone costs far more than its tiny pixel error suggests
    assert float(decision_loss(acts, inp, inp)) > 1.0 and float(decision_loss(faint, inp, inp)) > 0.1
    assert float(decision_loss(faint, inp, inp)) < float(decision_loss(acts, inp, inp))
    pred = acts.clone().requires_grad_(True)
    decision_loss(pred, inp, inp).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    # a student starts as the identity (its last conv is zero): the gradient there is finite, not NaN
    start = inp.clone().requires_grad_(True)
    decision_loss(start, acts, inp).backward()
    assert torch.isfinite(start.grad).all()


def test_distill_loss_adds_the_decision_term_and_needs_a_teacher_for_it():
    pred, gt = _pair(6)
    inp = gt * 0.9
    total, logs = DistillLoss(alpha=0.0, decision_weight=0.5)(pred, gt, gt, inp)
    crit = RestorationLoss("charbonnier")
    assert float(total) == pytest.approx(float(crit(pred, gt) + 0.5 * decision_loss(pred, gt, inp)), rel=1e-6)
    assert "decision" in logs and "kd" not in logs
    with pytest.raises(KdcamError, match="teacher"):
        DistillLoss(alpha=0.0, decision_weight=0.5)(pred, gt, None, inp)
    with pytest.raises(KdcamError, match="decision-weight"):
        DistillLoss(decision_weight=-1.0)


def test_losses_have_gradients():
    pred, gt = _pair(5)
    pred.requires_grad_(True)
    total, _ = DistillLoss(alpha=0.5, edge_weight=0.1, freq_weight=0.1)(pred, gt, gt.flip(-1))
    total.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0


def test_psnr_matches_definition():
    ref = torch.zeros(1, 3, 4, 4)
    pred = torch.full((1, 3, 4, 4), 0.1)
    assert pooled_psnr(mse_per_image(pred, ref)) == pytest.approx(20.0, abs=1e-4)  # mse 0.01


def test_pooled_psnr_is_not_swamped_by_an_untouched_image():
    ref = torch.zeros(2, 3, 4, 4)
    pred = torch.stack([torch.zeros(3, 4, 4), torch.full((3, 4, 4), 0.1)])  # an exact copy and mse 0.01
    mse = mse_per_image(pred, ref)
    assert pooled_psnr(mse) == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-4)
    per_image = 10 * torch.log10(1 / mse.clamp_min(1e-10))
    assert float(per_image.mean()) > 50  # the mean of per-image PSNRs is ruled by the copy
