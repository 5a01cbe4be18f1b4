"""Choose each student's candidate on validation, never on the evaluation photos.

    python scripts/choose_alpha.py --runs docs/distill/stages --notes docs/distill/stages/notes.md

For each member (``quality``, ``fast``) the candidates are the first-stage runs
``RUNS/<member>-alpha<a>[-variant]`` (``quality-alpha1.0``, ``quality-alpha1.0-decision``, ...;
not the alpha = 0 ablation, not a ``-gate`` second stage) and ``RUNS/<member>-footage``, where
they exist: the one with the best validation PSNR (held-out training photos, pooled over the
crops) among those that add no flicker on vtest.avi (``stability.json``: ratio <= 1.10) wins.
The ``wide-*`` runs are reported beside them (a candidate third member).
Prints the two chosen run names; writes the report's notes (lines starting with ``- ``):
the candidates, the alpha = 0 ablation and the footage experiment, all on validation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MAX_FLICKER = 1.10


def facts(run: Path) -> dict | None:
    if not (run / "summary.json").is_file():
        return None
    summary = json.loads((run / "summary.json").read_text())
    ratio = None
    if (run / "stability.json").is_file():  # scripts/temporal_stability.py --model <the run's candidate>
        ratio = next(iter(json.loads((run / "stability.json").read_text())["models"].values()))["ratio"]
    return {
        "run": run.name,
        "val": summary.get("best_val_psnr"),
        "input": summary.get("val_psnr_input"),
        "ratio": ratio,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--notes", type=Path, required=True)
    args = ap.parse_args()
    chosen, notes = [], []
    for member in ("quality", "fast"):
        cands = {
            run.name.removeprefix(f"{member}-"): facts(run)
            for run in sorted(args.runs.glob(f"{member}-*"))
            if run.name not in (f"{member}-alpha0", f"{member}-alpha0.0") and not run.name.endswith("-gate")
        }
        cands = {label: f for label, f in cands.items() if f is not None}
        stable = [c for c, f in cands.items() if f["ratio"] is not None and f["ratio"] <= MAX_FLICKER] or list(cands)
        best = max(stable, key=lambda c: cands[c]["val"])
        chosen.append(cands[best]["run"])
        listed = "; ".join(
            f"{c}: {f['val']:.3f} dB, flicker ratio {f['ratio'] if f['ratio'] is None else round(f['ratio'], 3)}"
            for c, f in cands.items()
        )
        notes.append(
            f"- `{member}`: {best} chosen on validation PSNR among the candidates that add no flicker "
            f"on vtest.avi (ratio <= {MAX_FLICKER}): {listed} (input {cands[best]['input']:.3f} dB)."
        )
    zero = facts(args.runs / "quality-alpha0")
    if zero is not None:
        q = facts(args.runs / chosen[0])
        notes.append(
            f"- Ablation: the `quality` architecture trained on ground truth only (alpha = 0), same crops, steps "
            f"and seed: validation {zero['val']:.3f} dB against {q['val']:.3f} dB distilled "
            f"({q['val'] - zero['val']:+.3f} dB from distillation)."
        )
    for run in sorted(args.runs.glob("wide-*")):
        wide = facts(run)
        if wide is not None and not run.name.endswith("-gate"):
            notes.append(
                f"- Wider candidate `{run.name}`: validation {wide['val']:.3f} dB (input {wide['input']:.3f} dB), "
                f"flicker ratio {wide['ratio'] if wide['ratio'] is None else round(wide['ratio'], 3)}."
            )
    footage, same = facts(args.runs / "quality-footage"), facts(args.runs / "quality-alpha0.5")
    if footage is not None and same is not None:
        verdict = "helps" if footage["val"] > same["val"] else "does not help"
        notes.append(
            f"- Footage without ground truth: a quarter of the crops replaced by crops of real frames "
            f"(samples/vtest_clip.avi) labelled by the teacher alone {verdict} on validation: "
            f"{footage['val']:.3f} dB against {same['val']:.3f} dB (alpha 0.5 both); flicker ratio "
            f"{footage['ratio']} against {same['ratio']}."
        )
    args.notes.write_text("\n".join(notes) + "\n")
    print(" ".join(chosen))


if __name__ == "__main__":
    main()
