"""Ship the trained students as kdcam's installed models, with model cards and the report.

    python scripts/ship_default.py --member quality=runs/q --member fast=runs/f \
        --teacher-run runs/teacher-tiny --teacher-run runs/teacher-tiny-ft --teacher-run runs/teacher-camera \
        --ablation runs/q-alpha0 [--footage runs/q-footage] [--notes runs/notes.md] \
        --eval-data ../shared/data/eval --sources ../shared/data/SOURCES.md [--report docs/distill]

Each ``--member NAME=RUN`` (best first, as ``engines.model.zoo.ORDER`` lists them; RUN may also be
a student file, e.g. the one shipped, to score it again when a preset changed) is exported
(collapsed safetensors, JSON, ONNX) into ``engines/model/zoo/NAME/``. One ``kdcam distill
evaluate`` run on the evaluation photos scores the classical rows, the teacher, every
member, the alpha = 0 ablation and (optionally) the footage variant on every report preset,
and times them at 720p and 1080p. From that run come each member's MODEL_CARD.md (and the
``eval`` field of its card) and the report: ``REPORT.md``, ``results.md``, the grids and
the runs' records in ``--report``, and the README section between the ``distill-report``
markers. ``--notes`` is markdown (lines starting with ``- ``) added to the report's list:
the alpha choice and the footage experiment, written by ``scripts/distill_default.sh``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from distill.config import EvaluateConfig
from distill.degrade import get_preset
from distill.evaluate import evaluate_models
from distill.export import export_student
from distill.report import results_markdown
from distill.shipping import PRESETS, card_markdown, report_markdown, stages, teacher_facts
from engines.atomic import atomic_write_text
from engines.model.zoo import ORDER, model_file
from engines.foundation.timing import machine_name

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKERS = ("<!-- distill-report:start -->", "<!-- distill-report:end -->")


def uses_footage(run: Path) -> bool:
    """Whether any training stage of ``run`` mixed in footage labels."""
    if run.is_file():  # a shipped file: its name says which row it was (student-footage / student-no-footage)
        return not run.stem.endswith("no-footage")
    settings = json.loads((run / "settings.json").read_text())
    return any(stage.get("footage_labels") for stage in stages(settings))


def replace_between_markers(text: str, body: str) -> str:
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} section to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def export_source(source: Path) -> dict:
    """``export_student``'s source: a run folder, or a student file (one already shipped, whose
    run is gone: its records are in the report folder already)."""
    return {"checkpoint": source} if source.is_file() else {"run": source}


def copy_run_record(run: Path, report_dir: Path, name: str) -> None:
    """The run's settings, summary and loss curve (not its weights or full log); nothing for a
    shipped file (its records were copied when it shipped)."""
    if run.is_file():
        return
    for src, dst in (
        ("settings.json", f"{name}-settings.json"),
        ("summary.json", f"{name}-summary.json"),
        ("loss.png", f"curve_{name}.png"),
    ):
        if (run / src).exists():
            shutil.copyfile(run / src, report_dir / dst)


def evaluate_changed(config: EvaluateConfig, previous: Path) -> dict:
    """``--reuse-eval``: the models are the files of the last run, so only the presets that
    ``previous`` lacks, or whose degradation has changed since (its description differs), are
    scored again, without timing (the speeds of the last run stay); the rest is reused."""
    if not previous.is_file():
        return evaluate_models(config)
    report = json.loads(previous.read_text())
    methods = ["input", "unsharp", "laplacian", "teacher", *(entry.split("=", 1)[0] for entry in config.student)]
    if report["methods"] != methods:
        raise SystemExit(
            f"--reuse-eval: {previous} scored {report['methods']}, not {methods}; run without --reuse-eval"
        )
    stale = [
        p for p in config.preset_list() if report["presets"].get(p, {}).get("description") != get_preset(p).describe()
    ]
    if stale:
        print(f"ship_default: scoring again {', '.join(stale)} (new or changed); reusing the rest", flush=True)
        fresh = evaluate_models(dataclasses.replace(config, presets=",".join(stale), timing=False))
        if fresh["images"] != report["images"]:
            raise SystemExit("--reuse-eval: the evaluation photos changed; run without --reuse-eval")
        for block in fresh["presets"].values():
            for name, row in block["methods"].items():
                row.update(report["speed"][name])  # the last run's speeds: same files, same machine
        report["presets"].update(fresh["presets"])
    report["presets"] = {p: report["presets"][p] for p in config.preset_list()}
    atomic_write_text(previous, json.dumps(report, indent=2) + "\n")
    atomic_write_text(previous.with_name("results.md"), results_markdown(report))
    return report


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--member", action="append", required=True, help="NAME=RUN, best first (repeatable)")
    ap.add_argument(
        "--teacher-run",
        type=Path,
        action="append",
        required=True,
        help="a fit-teacher run; repeat for its stages in order; the last stage's best teacher labelled the data",
    )
    ap.add_argument(
        "--ablation", type=Path, required=True, help="the first member's architecture trained with alpha = 0"
    )
    ap.add_argument(
        "--footage",
        type=Path,
        help="the first member's footage counterpart: trained with footage labels "
        "as well, or without them if the member has them",
    )
    ap.add_argument("--notes", type=Path, help="markdown lines for the report (alpha choice, footage experiment)")
    ap.add_argument("--eval-data", type=Path, required=True)
    ap.add_argument("--sources", type=Path, required=True, help="SOURCES.md of the training photos")
    ap.add_argument("--report", type=Path, default=ROOT / "docs" / "distill")
    ap.add_argument("--label-items", type=int, help="how many crops the teacher labelled (for the cards)")
    ap.add_argument(
        "--reuse-eval",
        action="store_true",
        help="the models are those of the last run: score only the presets that results.json lacks or "
        "whose degradation changed, reuse the rest",
    )
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    members = dict(m.split("=", 1) for m in args.member)
    if tuple(members) != ORDER:
        raise SystemExit(
            f"the members must be {', '.join(ORDER)} (engines.model.zoo.ORDER), best first; got {', '.join(members)}"
        )
    out = args.report
    out.mkdir(parents=True, exist_ok=True)
    shipped_teacher = out / "teacher.safetensors"
    shutil.copyfile(args.teacher_run[-1] / "teacher-best.safetensors", shipped_teacher)
    for number, run in enumerate(args.teacher_run, start=1):
        copy_run_record(run, out, "teacher" if number == len(args.teacher_run) else f"teacher-stage{number}")
    teacher = teacher_facts(args.teacher_run, shipped_teacher, ROOT)
    rows = {}
    for name, run in members.items():  # evaluate the files that ship, not the runs'
        rows[name] = export_student(output=model_file(name), **export_source(Path(run)))["checkpoint"]
        copy_run_record(Path(run), out, f"student-{name}")
    extra = {"alpha0": args.ablation}
    if args.footage is not None:
        extra["footage" if uses_footage(args.footage) else "no-footage"] = args.footage
    for name, run in extra.items():
        rows[name] = export_student(output=out / f"student-{name}.safetensors", **export_source(run),
                                    onnx=False)["checkpoint"]
        copy_run_record(run, out, f"student-{name}")
    config = EvaluateConfig(
        data=args.eval_data,
        out=out,
        presets=",".join(PRESETS),
        teacher=f"teacher={shipped_teacher}",
        student=[f"{n}={p}" for n, p in rows.items()],
    )
    report = evaluate_changed(config, out / "results.json") if args.reuse_eval else evaluate_models(config)
    n_images = report["num_images"]
    metrics = {
        p: {
            m: {k: v.get(k) for k in ("psnr", "ssim", "fps_720p", "fps_1080p", "total_s")}
            for m, v in report["presets"][p]["methods"].items()
        }
        for p in PRESETS
    }
    cards = {}
    for name, run in members.items():
        card = {
            "name": name,
            "eval": {p: {m: metrics[p][m] for m in ("input", "unsharp", "laplacian", name)} for p in PRESETS},
            "teacher": teacher,
            **({"label_items": args.label_items} if args.label_items else {}),
        }
        cards[name] = export_student(output=model_file(name), **export_source(Path(run)), card=card)["card"]
        atomic_write_text(
            model_file(name).parent / "MODEL_CARD.md", card_markdown(name, cards[name], metrics, n_images, teacher)
        )
    shutil.copyfile(args.sources, model_file(ORDER[0]).parent.parent / "DATA_SOURCES.md")
    shutil.copyfile(args.sources, out / "DATA_SOURCES.md")
    rel = str(out.resolve().relative_to(ROOT))
    reproduce = [
        "kdcam distill evaluate --data ../shared/data/eval --out eval-results \\",
        f"  --teacher teacher={rel}/teacher.safetensors \\",
    ]
    reproduce += [f"  --student {n}={Path(p).resolve().relative_to(ROOT)} \\" for n, p in rows.items()]
    reproduce[-1] = reproduce[-1].rstrip(" \\")
    notes = (
        [line.rstrip() for line in args.notes.read_text().splitlines() if line.startswith("- ")] if args.notes else []
    )
    body = report_markdown(
        metrics=metrics,
        n_images=n_images,
        rel=rel,
        teacher=teacher,
        members=cards,
        notes=notes,
        reproduce=reproduce,
        machine=machine_name(),
    )
    atomic_write_text(out / "REPORT.md", "# Distillation report\n\n" + body + "\n")
    atomic_write_text(README, replace_between_markers(README.read_text(), body))
    print(json.dumps({"models": rows, "camera": metrics["camera"]}, indent=2, default=str))


if __name__ == "__main__":
    main()
