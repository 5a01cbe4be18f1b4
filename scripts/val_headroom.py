"""How much is there to distill? Teacher, students and classical rows on the validation photos.

The eval set must not steer choices, so this runs ``kdcam distill evaluate`` on the
held-out validation photos of the training folder (the same split every training run
uses: ``split_train_val(..., val_fraction=0.1, seed=0)``), optionally shrunk to
``--max-side`` so the teacher's full-frame pass stays short on a CPU. It answers: does the
teacher clear the classical sharpeners and the students, and by how much, per preset?

    python scripts/val_headroom.py --teacher docs/distill/teacher.safetensors \\
        --student quality=engines/model/zoo/quality/student.safetensors --out docs/distill/headroom
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engines.atomic import atomic_write_text  # noqa: E402
from distill.config import EvaluateConfig  # noqa: E402
from distill.data import list_images, split_train_val  # noqa: E402
from distill.evaluate import evaluate_models  # noqa: E402
from distill.report import results_markdown  # noqa: E402
from engines.errors import KdcamError  # noqa: E402


def name_the_photos(out: Path, text: str) -> None:
    """Put ``text`` in place of the temporary folder's path in results.json and results.md."""
    results = json.loads((out / "results.json").read_text())
    results["images_dir"] = text
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "results.md", results_markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train"), help="the training photos")
    parser.add_argument("--teacher", help="teacher .safetensors (NAME=PATH names its row)")
    parser.add_argument("--student", action="append", default=[], help="student checkpoint or NAME=PATH (repeatable)")
    parser.add_argument("--presets", default="bicubic-x2,defocus,stream")
    parser.add_argument("--max-side", type=int, default=640, help="shrink larger photos to this side first")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split (as in training) and of the degradations"
    )
    parser.add_argument("--engine", default="reference", help="engine for the students (reference: float PyTorch)")
    parser.add_argument("--out", required=True, help="folder for results.json / results.md")
    args = parser.parse_args(argv)

    try:
        _, val = split_train_val(list_images(args.data), val_fraction=args.val_fraction, seed=args.seed)
        with tempfile.TemporaryDirectory(prefix="kdcam-val-") as tmp:
            for path in val:  # evaluate reads a folder: link the validation photos into one
                (Path(tmp) / path.name).symlink_to(Path(path).resolve())
            evaluate_models(
                EvaluateConfig(
                    data=Path(tmp),
                    out=Path(args.out),
                    presets=args.presets,
                    teacher=args.teacher,
                    student=args.student,
                    seed=args.seed,
                    timing=False,
                    crop_grid=False,
                    max_side=args.max_side,
                    engine=args.engine,
                )
            )
    except KdcamError as err:
        print(f"kdcam: error: {err}", file=sys.stderr)
        return 1
    name_the_photos(
        Path(args.out),
        f"{args.data}: the validation side of the training split (val_fraction "
        f"{args.val_fraction}, seed {args.seed}), shrunk to at most {args.max_side} px",
    )
    print(f"validation photos: {', '.join(p.name for p in val)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
