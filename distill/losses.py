"""Training losses: a pixel loss plus optional edge and frequency terms, and the KD mix.

Every function takes NCHW float tensors (predicted, reference) and returns a scalar mean.

* ``charbonnier``: sqrt((p - r)^2 + eps^2), a smooth L1 that is the usual choice for
  restoration networks (Restormer itself is trained with L1).
* ``psnr`` (``log_mse``): the mean over images of 10 log10(MSE): what a mean PSNR over
  frames rewards; it weighs the nearly clean frames as much as the soft ones.
* ``edge_loss``: L1 between the Sobel gradients (x and y) of both images, which rewards
  getting edges right more than flat areas.
* ``frequency_loss``: L1 between the magnitudes of the 2-D FFTs, which penalises missing
  high frequencies (blur) directly.

``DistillLoss`` mixes the teacher and ground-truth terms:
``alpha * L(student, teacher) + (1 - alpha) * L(student, ground_truth)``, with ``L`` the
pixel loss plus the weighted edge and frequency terms. ``alpha == 0`` never touches a
teacher output and may be called without one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engines.errors import KdcamError

#: names accepted for the pixel loss
PIXEL_LOSSES = ("charbonnier", "l1", "psnr")

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def charbonnier(pred: torch.Tensor, ref: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt((pred - ref)^2 + eps^2)."""
    diff = pred - ref
    return torch.sqrt(diff * diff + eps * eps).mean()


def l1(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (pred - ref).abs().mean()


def log_mse(pred: torch.Tensor, ref: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Mean over the images of ``10 log10(MSE + eps)``: minus their mean PSNR. A nearly clean
    image's small error counts as much as a blurred one's large error, as in a mean PSNR
    over frames, so a model does not trade the clean frames for the soft ones."""
    return 10.0 * torch.log10((pred - ref).pow(2).flatten(1).mean(dim=1) + eps).mean()


def sobel(image: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradients ``[N, 2C, H, W]`` (x then y), replicate-padded."""
    c = image.shape[1]
    kx = image.new_tensor(_SOBEL_X) / 8.0
    kernel = torch.stack([kx, kx.t()]).unsqueeze(1).repeat(c, 1, 1, 1)  # [2C, 1, 3, 3]
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernel, groups=c)


def edge_loss(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """L1 between the Sobel gradients of ``pred`` and ``ref``."""
    return (sobel(pred) - sobel(ref)).abs().mean()


def frequency_loss(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """L1 between FFT magnitudes (orthonormal, so the scale does not depend on the size)."""
    fp = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    fr = torch.fft.rfft2(ref.float(), norm="ortho").abs()
    return (fp - fr).abs().mean()


#: the correction strength below which a model is taken to leave a crop alone: about one 8-bit level (RMS)
LEAVE_ALONE_RMS = 1.0 / 255.0
#: where the decision term's square root is smoothed: far below one 8-bit level, so no decision changes
RMS_FLOOR = 1e-4


def decision_loss(pred: torch.Tensor, teacher: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """How far a student's decision of how much to change each crop is from its teacher's:
    the mean over crops of the squared difference of ``log(LEAVE_ALONE_RMS + rms(output - input))``.

    On a log scale, a crop the teacher leaves alone (a correction under one 8-bit level)
    costs the student as much for a faint correction as a strong crop costs it for being
    half as strong, which is what a whole-frame gate is for: act where the teacher acts,
    leave alone what it leaves alone. The pixel terms cannot say this: a faint correction
    of a sharp crop is a tiny pixel error."""

    def strength(image: torch.Tensor) -> torch.Tensor:
        # the square root is smoothed at zero (RMS floor 1e-4, a fortieth of an 8-bit level): a student starts
        # as the identity (its last conv is zero), where sqrt's gradient is infinite and the loss became NaN
        mse = (image.float() - inp.float()).pow(2).flatten(1).mean(dim=1)
        return torch.log(LEAVE_ALONE_RMS + (mse + RMS_FLOOR**2).sqrt())

    return (strength(pred) - strength(teacher).detach()).pow(2).mean()


def pixel_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "charbonnier":
        return charbonnier
    if name == "l1":
        return l1
    if name == "psnr":
        return log_mse
    raise KdcamError(f"unknown loss '{name}'; choose one of: {', '.join(PIXEL_LOSSES)}")


class RestorationLoss(nn.Module):
    """``pixel(p, r) + edge_weight * edge_loss(p, r) + freq_weight * frequency_loss(p, r)``."""

    def __init__(self, loss: str = "charbonnier", *, edge_weight: float = 0.0, freq_weight: float = 0.0) -> None:
        super().__init__()
        if edge_weight < 0 or freq_weight < 0:
            raise KdcamError(f"loss weights must be >= 0 (edge {edge_weight}, freq {freq_weight})")
        self.name = loss
        self.pixel = pixel_loss(loss)
        self.edge_weight = float(edge_weight)
        self.freq_weight = float(freq_weight)

    def parts(self, pred: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms that are switched on, by name."""
        pred, ref = pred.float(), ref.float()
        out = {self.name: self.pixel(pred, ref)}
        if self.edge_weight:
            out["edge"] = edge_loss(pred, ref)
        if self.freq_weight:
            out["freq"] = frequency_loss(pred, ref)
        return out

    def combine(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        total = parts[self.name]
        if "edge" in parts:
            total = total + self.edge_weight * parts["edge"]
        if "freq" in parts:
            total = total + self.freq_weight * parts["freq"]
        return total

    def forward(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.combine(self.parts(pred, ref))


class DistillLoss(nn.Module):
    """``alpha * L(student, teacher) + (1 - alpha) * L(student, ground_truth)
    + decision_weight * decision_loss(student, teacher, input)``.

    ``forward`` returns ``(total, logs)``: ``logs`` holds plain floats for the training
    log (``loss``, ``gt``, ``kd``, ``decision`` and the individual terms against ground truth).
    """

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        loss: str = "charbonnier",
        edge_weight: float = 0.0,
        freq_weight: float = 0.0,
        decision_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise KdcamError(f"--alpha must be between 0 and 1 (0 = supervised only, 1 = teacher only), not {alpha}")
        if decision_weight < 0:
            raise KdcamError(f"--decision-weight must be >= 0, not {decision_weight}")
        self.alpha = float(alpha)
        self.decision_weight = float(decision_weight)
        self.criterion = RestorationLoss(loss, edge_weight=edge_weight, freq_weight=freq_weight)

    @property
    def needs_teacher(self) -> bool:
        return self.alpha > 0.0 or self.decision_weight > 0.0

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        teacher: torch.Tensor | None = None,
        inp: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logs: dict[str, float] = {}
        total = pred.new_zeros((), dtype=torch.float32)
        if self.needs_teacher and teacher is None:
            raise KdcamError(
                "alpha > 0 or a decision weight needs teacher outputs; pass --labels DIR or --teacher FILE"
            )
        if self.alpha < 1.0:
            parts = self.criterion.parts(pred, target)
            gt = self.criterion.combine(parts)
            total = total + (1.0 - self.alpha) * gt
            logs["gt"] = float(gt.detach())
            logs.update({f"gt_{k}": float(v.detach()) for k, v in parts.items()})
        if self.alpha > 0.0:
            kd = self.criterion(pred, teacher)
            total = total + self.alpha * kd
            logs["kd"] = float(kd.detach())
        if self.decision_weight > 0.0:
            if inp is None:
                raise TypeError("the decision term needs the input crops")  # a programming error
            decision = decision_loss(pred, teacher, inp)
            total = total + self.decision_weight * decision
            logs["decision"] = float(decision.detach())
        logs["loss"] = float(total.detach())
        return total, logs


def mse_per_image(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of ``pred`` (clamped to [0, 1]) against ``ref``: shape ``[N]``."""
    return (pred.float().clamp(0, 1) - ref.float()).pow(2).flatten(1).mean(dim=1)


def pooled_psnr(mse: torch.Tensor) -> float:
    """PSNR in dB of the mean of per-image squared errors ``mse``: one number for a set.

    Unlike the mean of per-image PSNRs it stays meaningful when some images are untouched
    (an exact copy scores infinite PSNR, which any cap turns into a number that swamps the rest).
    """
    return float(10.0 * torch.log10(1.0 / mse.float().mean().clamp_min(1e-10)))
