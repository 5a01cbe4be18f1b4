"""What ships with the installed students: their model cards and the distillation report.

Everything here is text made from measured numbers: one ``kdcam distill evaluate`` run of
the teacher, every shipped student and the ablations on the evaluation photos, and the
training runs' own records (settings, summaries, the alpha choice on validation). The
targets are computed from those numbers, never asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

from distill.report import format_fps

#: the presets of the report, in order: the camera's own frame first, then the checks
PRESETS = ["camera", "defocus", "gaussian-1.4", "dim", "bicubic-x2", "stream", "isp-sharpened", "clean"]
CLASSICAL = ("unsharp", "laplacian")
#: what a student must do on each preset (issue 20's acceptance): lead the best classical sharpener
#: by 0.3 dB where the frame is soft; gain 0.3 dB and beat every classical sharpener in a dim room;
#: do no harm (PSNR and SSIM) where the frame needs nothing; leave a clean frame at 40 dB or more
SHARPEN, DIM, NO_HARM = ("camera", "defocus", "gaussian-1.4"), ("dim",), ("bicubic-x2", "stream", "isp-sharpened")
#: the lead the teacher should have over the best classical sharpener on these presets
TEACHER_LEAD = {"camera": 0.8, "defocus": 0.8}
TITLES = {"input": "input (the degraded frame)", "unsharp": "unsharp mask", "laplacian": "Laplacian sharpen",
          "teacher": "teacher (Restormer)", "alpha0": "ablation: alpha = 0 (ground truth only)",
          "footage": "with footage labels (no ground truth)", "no-footage": "without the footage labels"}


def title(name: str, members: list[str]) -> str:
    if name in members:
        return f"**student `{name}`**" + (" (the best installed)" if name == members[0] else "")
    return TITLES.get(name, name)


def metrics_table(metrics: dict, presets: list[str], members: list[str], n_images: int) -> list[str]:
    """One table per preset: rows = methods; PSNR, SSIM, fps at 720p and 1080p, time for the set."""
    lines = []
    for preset in presets:
        lines += [
            f"**{preset}**",
            "",
            f"| method | PSNR (dB) | SSIM | fps 1280x720 | fps 1920x1080 | time for the {n_images} photos (s) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in metrics[preset].items():
            psnr = "inf" if row["psnr"] is None else f"{row['psnr']:.2f}"
            lines.append(
                f"| {title(name, members)} | {psnr} | {row['ssim']:.4f} | {format_fps(row.get('fps_720p'))} | "
                f"{format_fps(row.get('fps_1080p'))} | {row['total_s']:.2f} |"
            )
        lines.append("")
    return lines


def best_classical(rows: dict) -> str:
    return max(CLASSICAL, key=lambda m: rows[m]["psnr"])


def target_checks(metrics: dict, student: str) -> list[tuple[str, str, bool, str]]:
    """(preset, target, met, numbers) of issue 20's acceptance list, for one student."""
    checks = []
    for preset in PRESETS:
        rows = metrics.get(preset)
        if not rows or student not in rows:
            continue
        s, i = rows[student], rows["input"]
        if preset in SHARPEN:
            c = best_classical(rows)
            checks.append(
                (
                    preset,
                    "student >= best classical + 0.3 dB",
                    s["psnr"] >= rows[c]["psnr"] + 0.3,
                    f"{s['psnr']:.2f} vs {c} {rows[c]['psnr']:.2f}",
                )
            )
        if preset in DIM:
            c = best_classical(rows)
            checks.append(
                (
                    preset,
                    "student >= input + 0.3 dB",
                    s["psnr"] >= i["psnr"] + 0.3,
                    f"{s['psnr']:.2f} vs {i['psnr']:.2f}",
                )
            )
            checks.append(
                (
                    preset,
                    "student >= every classical sharpener",
                    s["psnr"] >= rows[c]["psnr"],
                    f"{s['psnr']:.2f} vs {c} {rows[c]['psnr']:.2f}",
                )
            )
        if preset in NO_HARM:
            checks.append(
                (preset, "student >= input (no harm)", s["psnr"] >= i["psnr"], f"{s['psnr']:.2f} vs {i['psnr']:.2f}")
            )
        if preset == "clean":
            untouched = s["psnr"] is None  # the output equals the photo: infinite PSNR
            checks.append(
                (
                    preset,
                    "student >= 40 dB against the untouched photo",
                    untouched or s["psnr"] >= 40.0,
                    "inf (unchanged)" if untouched else f"{s['psnr']:.2f}",
                )
            )
        else:
            checks.append(
                (preset, "student SSIM >= input SSIM", s["ssim"] >= i["ssim"], f"{s['ssim']:.4f} vs {i['ssim']:.4f}")
            )
    return checks


def _db(value: float | None) -> float:
    return float("inf") if value is None else value


def gap_table(metrics: dict, members: list[str]) -> list[str]:
    """Per preset: the teacher's lead over the best classical sharpener and over the input, and
    each student's gap to the teacher (negative: the student trails), in dB."""
    if not any("teacher" in metrics.get(p, {}) for p in PRESETS):
        return []
    head = (
        "| preset | teacher - best classical | teacher - input | "
        + " | ".join(f"`{m}` - teacher" for m in members)
        + " |"
    )
    lines = [
        "Teacher's lead and each student's gap to the teacher (PSNR, dB):",
        "",
        head,
        "|---|" + "---:|" * (2 + len(members)),
    ]
    for preset in PRESETS:
        rows = metrics.get(preset, {})
        if "teacher" not in rows:
            continue
        t = _db(rows["teacher"]["psnr"])
        c = best_classical(rows) if preset != "clean" else None
        lead = f"{t - rows[c]['psnr']:+.2f} ({c})" if c else "-"
        gain = "-" if rows["input"]["psnr"] is None else f"{t - rows['input']['psnr']:+.2f}"
        gaps = ["-" if preset == "clean" else f"{_db(rows[m]['psnr']) - t:+.2f}" for m in members if m in rows]
        lines.append(f"| {preset} | {lead} | {gain} | " + " | ".join(gaps) + " |")
    return [*lines, ""]


def teacher_checks(metrics: dict) -> list[tuple[str, str, bool, str]]:
    out = []
    for preset, lead in TEACHER_LEAD.items():
        rows = metrics.get(preset, {})
        if "teacher" in rows:
            c = best_classical(rows)
            gap = rows["teacher"]["psnr"] - rows[c]["psnr"]
            out.append(
                (
                    preset,
                    f"teacher >= best classical + {lead} dB",
                    gap >= lead,
                    f"{rows['teacher']['psnr']:.2f} vs {c} {rows[c]['psnr']:.2f} ({gap:+.2f} dB)",
                )
            )
    return out


def teacher_facts(runs: list[Path], shipped: Path, root: Path) -> dict:
    """The teacher's history: ``runs`` are its fit-teacher stages in order (from scratch,
    then fine-tunes, each starting from the one before); the last stage's best ships."""
    from distill.teacher import load_teacher

    settings = [json.loads((run / "settings.json").read_text()) for run in runs]
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    stages = [
        {
            "steps": summary["steps"],
            "degradation": setting.get("degradation"),
            "best_val_psnr": summary.get("best_val_psnr"),
            "val_psnr_input": summary.get("val_psnr_input"),
        }
        for setting, summary in zip(settings, summaries)
    ]
    model = load_teacher(shipped)
    first = settings[0]
    return {
        "size": first.get("size") or first.get("origin", {}).get("size", "?"),
        "stages": stages,
        "parameters": sum(p.numel() for p in model.parameters()),
        "file": str(shipped.resolve().relative_to(root)),
    }


def teacher_history(teacher: dict) -> str:
    """'fitted from scratch for N steps on the `X` mix, then fine-tuned for M steps on the `Y` mix'."""
    stages = teacher["stages"]
    parts = [f"fitted from scratch for {stages[0]['steps']} steps on the `{stages[0]['degradation']}` mix"]
    parts += [f"then fine-tuned for {s['steps']} steps on the `{s['degradation']}` mix" for s in stages[1:]]
    return ", ".join(parts)


def stages(card: dict) -> list[dict]:
    """The training stages of a student, first first (a card holds the card it continued)."""
    chain = [card]
    while chain[0].get("previous_stage"):
        chain.insert(0, chain[0]["previous_stage"])
    return chain


def distilled_alpha(card: dict) -> float:
    """The largest teacher weight of any stage (0: no stage learned from the teacher)."""
    return max(s.get("alpha") or 0.0 for s in stages(card))


def stage_text(stage: dict) -> str:
    alpha = stage.get("alpha") or 0.0
    what = "the whole-frame gate alone" if stage.get("train_only") == "gate" else "all weights"
    soft = f", soft references {stage['soft_reference']:g}" if stage.get("soft_reference") else ""
    footage = f", footage crops {stage['footage_share']:g} of the items" if stage.get("footage_labels") else ""
    return (
        f"{what}, {stage['steps']} steps, batch {stage.get('batch_size')}, {stage.get('crop')} px crops of the "
        f"`{stage.get('degradation')}` mix{soft}{footage}, loss {stage.get('loss')}, alpha = {alpha:g} "
        f"({'ground truth only' if not alpha else 'alpha x teacher term + (1 - alpha) x ground truth'})"
    )


def card_markdown(name: str, card: dict, metrics: dict, n_images: int, teacher: dict | None) -> str:
    split = card.get("data_split") or {}
    lines = [
        f"# kdcam student `{name}`: {card['arch']}",
        "",
        f"- Architecture: `{card['arch']}` (luma only; chroma passes through), collapsed inference form, "
        f"{card['parameters']:,} parameters, **{card['macs_per_pixel']:.0f} MACs per pixel**.",
        "- Training: " + "; then ".join(f"stage {i + 1}: {stage_text(s)}" for i, s in enumerate(stages(card))) + ".",
        (
            f"- Teacher: Restormer `{teacher['size']}` ({teacher['parameters']:,} parameters), "
            f"{teacher_history(teacher)} "
            f"(weights: `{teacher['file']}`); its outputs on {card.get('label_items', '?')} training crops "
            "are the soft labels."
            if teacher
            else "- Teacher: none (supervised on ground truth)."
        ),
        f"- Data: {split.get('train_images')} training photos of `shared/data/train` (validation split: "
        f"{split.get('val_images')} photos); attributions in DATA_SOURCES.md.",
        f"- Validation PSNR (the `{card.get('degradation')}` mix, held-out training photos, pooled): "
        f"{card.get('val_psnr', float('nan')):.2f} dB vs {card.get('val_psnr_input', float('nan')):.2f} dB "
        "for the input.",
        "",
        f"## Evaluation on shared/data/eval ({n_images} photos, fixed seeds)",
        "",
        "Students run on an inference engine as they ship (uint8 frames in and out, fp32); the teacher in "
        "PyTorch fp32.",
        "",
        *metrics_table(
            {p: {m: r for m, r in metrics[p].items() if m in (*CLASSICAL, "input", name)} for p in metrics},
            list(metrics),
            [name],
            n_images,
        ),
        "Made by `scripts/ship_default.py`; the numbers come from `kdcam distill evaluate`.",
    ]
    return "\n".join(lines) + "\n"


def report_markdown(
    *,
    metrics: dict,
    n_images: int,
    rel: str,
    teacher: dict,
    members: dict[str, dict],
    notes: list[str],
    reproduce: list[str],
    machine: str,
) -> str:
    """The README's distillation section: what was trained, the numbers, the targets."""
    names = list(members)
    lines = [
        f"- Teacher: Restormer `{teacher['size']}` ({teacher['parameters']:,} parameters), {teacher_history(teacher)} "
        f"of the training photos (settings and summaries in `{rel}/`)."
    ]
    for name, card in members.items():
        lines.append(
            f"- Student `{name}`: `{card['arch']}` ({card['macs_per_pixel']:.0f} MACs per pixel); "
            + "; then ".join(f"stage {i + 1}: {stage_text(s)}" for i, s in enumerate(stages(card)))
            + "."
        )
    lines += [
        *notes,
        "",
        f"Made by `scripts/ship_default.py` from one run of `kdcam distill evaluate` on the {n_images} photos of "
        f"`shared/data/eval` (fixed seeds; no preset's name ever reaches a model; PSNR/SSIM from scikit-image over "
        f"all three channels). fps: one frame, median of up to 5 runs, in the same run on {machine}; students on "
        f"the fastest engine in fp32, the teacher in PyTorch fp32. Full results: [{rel}/results.md]({rel}/results.md). "
        "Reproduce every row with",
        "",
        "```bash",
        *reproduce,
        "```",
        "",
        *metrics_table(metrics, PRESETS, names, n_images),
    ]
    speed = metrics[PRESETS[0]]
    if speed.get("teacher", {}).get("fps_720p") and speed[names[0]].get("fps_720p"):
        ratio = speed[names[0]]["fps_720p"] / speed["teacher"]["fps_720p"]
        lines += [f"Student `{names[0]}` runs **{ratio:,.0f}x** faster than its teacher at 1280x720 here.", ""]
    lines += gap_table(metrics, names)
    lines += [
        "Targets (computed from the tables above):",
        "",
        "| model | preset | target | met | numbers |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        lines += [
            f"| `{name}` | {p} | {t} | {'yes' if ok else '**no**'} | {n} |"
            for p, t, ok, n in target_checks(metrics, name)
        ]
    lines += [f"| teacher | {p} | {t} | {'yes' if ok else '**no**'} | {n} |" for p, t, ok, n in teacher_checks(metrics)]
    lines += [
        "",
        "Comparison grids (crops: input, unsharp, teacher, students, ground truth): "
        + ", ".join(f"[{p}]({rel}/grid_{p}.png)" for p in PRESETS)
        + ".",
    ]
    return "\n".join(lines)
