"""Make a trained student the shipped default, with a model card of measured numbers.

    python scripts/ship_default.py --run runs/NAME --eval-data ../shared/data/eval \
        --sources ../shared/data/SOURCES.md [--teacher-note "..."]

Evaluates the run's best student on the evaluation photos (the ``gaussian-1.4`` check of
the sharpening core plus the report presets), then exports it (collapsed safetensors,
JSON, ONNX) into ``distill/models/default/`` with those metrics in its card, and writes
MODEL_CARD.md and DATA_SOURCES.md (the photos' attributions) beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from distill.atomic import atomic_write_text
from distill.checkpoint import DEFAULT_MODEL
from distill.cli import evaluate_models
from distill.export import export_student

PRESETS = ["gaussian-1.4", "bicubic-x2", "defocus", "stream"]


def card_markdown(card: dict, metrics: dict) -> str:
    lines = [
        f"# kdcam default student: {card['arch']}",
        "",
        f"- Architecture: `{card['arch']}` (luma only; chroma passes through), collapsed plain form, "
        f"{card['parameters']:,} parameters, **{card['macs_per_pixel']:.0f} MACs per pixel**.",
        f"- Training: {card['steps']} steps, batch {card.get('batch_size')}, {card.get('crop')} px crops, "
        f"degradation `{card.get('degradation')}`, loss Charbonnier, alpha = {card.get('alpha')} "
        f"({'ground truth only' if not card.get('alpha') else 'knowledge distillation'}).",
        f"- Teacher: {card.get('teacher') or 'none (supervised on ground truth)'}.",
        f"- Data: {card['data'].get('train_images')} training photos of `shared/data/train` "
        f"(validation split: {card['data'].get('val_images')} photos); attributions in DATA_SOURCES.md.",
        f"- Validation PSNR (webcam mix, held-out training photos): {card.get('val_psnr', float('nan')):.2f} dB "
        f"vs {card.get('val_psnr_input', float('nan')):.2f} dB for the degraded input.",
        "",
        "## Evaluation on shared/data/eval (12 photos, fixed seeds; PSNR / SSIM)",
        "",
        "| preset | input | unsharp | laplacian | student |",
        "|---|---|---|---|---|",
    ]
    for preset, rows in metrics.items():
        cells = " | ".join(f"{rows[m]['psnr']:.2f} / {rows[m]['ssim']:.4f}" for m in ("input", "unsharp", "laplacian", "student"))
        lines.append(f"| {preset} | {cells} |")
    lines += ["", "Made by `scripts/ship_default.py`; the numbers come from `kdcam distill evaluate`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval-data", type=Path, required=True)
    ap.add_argument("--sources", type=Path, required=True, help="SOURCES.md of the training photos")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    args = ap.parse_args()

    best = args.run / "student-best.safetensors"
    report = evaluate_models(data=args.eval_data, out=args.run / "ship-eval", presets=PRESETS, students=[best],
                             time_720p=False, crop_grid=True)
    name = next(m for m in report["presets"][PRESETS[0]]["methods"] if m not in ("input", "unsharp", "laplacian"))
    metrics = {}
    for preset in PRESETS:
        methods = report["presets"][preset]["methods"]
        metrics[preset] = {("student" if m == name else m): {"psnr": v["psnr"], "ssim": v["ssim"]} for m, v in methods.items()}
    result = export_student(output=args.out, run=args.run, card={"name": "kdcam-default", "eval": metrics})
    card = result["card"]
    atomic_write_text(args.out.parent / "MODEL_CARD.md", card_markdown(card, metrics))
    shutil.copyfile(args.sources, args.out.parent / "DATA_SOURCES.md")
    print(json.dumps({"checkpoint": result["checkpoint"], "eval": metrics}, indent=2))


if __name__ == "__main__":
    main()
