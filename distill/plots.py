"""The loss-curve PNG of a training run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engines.atomic import atomic_path


def plot_history(history: Sequence[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Plot training loss (log scale) and validation PSNR against the step; write ``path``.

    ``history`` is the run's log: entries with ``"loss"`` (training) and/or ``"val_psnr"``
    (validation), each with a ``"step"``. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    train = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    val = [(e["step"], e["val_psnr"]) for e in history if e.get("val_psnr") is not None and "step" in e]

    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="tab:blue", linewidth=1.2, label="train loss")
        if all(v > 0 for v in losses):
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(True, alpha=0.3)
    if val:
        ax2 = ax.twinx()
        vs, vp = zip(*val)
        ax2.plot(vs, vp, color="tab:red", marker="o", markersize=3, linewidth=1.2, label="val PSNR")
        ax2.set_ylabel("validation PSNR (dB)", color="tab:red")
    if not train and not val:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(str(tmp), format="png")
    return path
