"""Model cards: what a trained model was made from and how it scored, in one place.

A card is stored inside every student and teacher file kdcam writes. It is made from the
run's settings (its config plus the facts the trainer derived, as ``settings.json`` and the
training checkpoint hold them) and its history (the loss and validation log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the run settings a card repeats, when the run has them
CARD_KEYS = (
    "arch",
    "size",
    "init",
    "config",
    "parameters",
    "macs_per_pixel",
    "trained_macs_per_pixel",
    "data",
    "data_split",
    "degradation",
    "soft_reference",
    "crop",
    "teacher",
    "labels",
    "items",
    "alpha",
    "decision_weight",
    "footage_labels",
    "footage_share",
    "loss",
    "edge_weight",
    "freq_weight",
    "batch_size",
    "lr",
    "seed",
    "train_only",
    "previous_stage",
)


def model_card(
    settings: dict[str, Any], history: list[dict[str, Any]], *, steps: int, which: str, best: bool = False
) -> dict[str, Any]:
    """The card of a model trained for ``steps`` steps with ``settings``.

    ``which`` says which weights these are ("last", "best", "train state at step N");
    ``best`` makes the validation score the best one seen (and names its step).
    """
    name = Path(settings["out"]).name if settings.get("out") else settings.get("name")  # the run folder's name
    card: dict[str, Any] = {"name": name, "kind": settings.get("kind")}
    card.update({k: settings[k] for k in CARD_KEYS if k in settings})
    losses = [e for e in history if "loss" in e]
    vals = [e for e in history if e.get("val_psnr") is not None]
    card["steps"] = steps
    card["final_loss"] = losses[-1]["loss"] if losses else None
    if vals:
        chosen = max(vals, key=lambda e: e["val_psnr"]) if best else vals[-1]
        card["val_psnr"] = chosen["val_psnr"]
        card["val_psnr_input"] = chosen.get("val_psnr_input")
        if best:
            card["best_step"] = chosen["step"]
    card["which"] = which if (vals or not best) else f"{which} (no validation: the last weights)"
    return card
