"""Export a trained student for shipping: collapsed checkpoint + model card + ONNX file.

``export_student`` takes a run folder (its ``student-best`` or ``student-last``), a student
checkpoint, or a training checkpoint (``train_state.safetensors``, e.g. of a run still in
progress), folds the re-parameterized training form into the plain inference form
(``student.collapse()``), and writes ``OUTPUT.safetensors`` + ``OUTPUT.json`` (with the
model card: data, teacher, alpha, steps, metrics, MACs/pixel) and the ONNX delta graph
``OUTPUT.delta-fp32.onnx`` beside it.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import torch

from distill.cards import model_card
from engines.errors import KdcamError
from engines.model.checkpoint import load_student, open_model, save_student
from engines.model.onnx_cache import sibling_onnx, write_onnx
from engines.model.students import create_student, student_macs_per_pixel

WHICH = ("best", "last")


def _student_from_train_state(path: Path):
    from distill.train_state import load_train_state

    st = load_train_state(path)
    if st.settings.get("kind") != "student":
        raise KdcamError(f"{path}: a {st.settings.get('kind', 'non-student')} training checkpoint, not a student's; "
                         "use fit-teacher outputs with --teacher")
    student = create_student(st.settings["arch"])
    student.load_state_dict({k.removeprefix("student."): v for k, v in st.model.items()})
    card = model_card(st.settings, st.history, steps=st.step, which=f"train state at step {st.step}")
    return student.eval(), card


def resolve_source(*, run: str | Path | None = None, checkpoint: str | Path | None = None, which: str = "best") -> Path:
    """The file to export: ``run/student-<which>.safetensors`` or ``checkpoint``."""
    if (run is None) == (checkpoint is None):
        raise KdcamError("pass exactly one of --run RUN_DIR and --checkpoint FILE")
    if which not in WHICH:
        raise KdcamError(f"--which must be one of {', '.join(WHICH)}, not {which!r}")
    if run is not None:
        run = Path(run).expanduser()
        if not run.is_dir():
            raise KdcamError(f"{run}: no such run folder; pass the --out folder of `kdcam distill train`")
        path = run / f"student-{which}.safetensors"
        if not path.is_file():
            state = run / "train_state.safetensors"
            if state.is_file():
                return state
            raise KdcamError(
                f"{run}: no student-{which}.safetensors or train_state.safetensors; has training run there?"
            )
        return path
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise KdcamError(f"{path}: checkpoint not found")
    return path


def export_student(
    *,
    output: str | Path,
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    which: str = "best",
    onnx: bool = True,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the collapsed student to ``output`` (.safetensors, + .json) and its ONNX sibling.

    Returns ``{"checkpoint", "json", "onnx", "card"}`` (paths as strings; onnx None when off).
    """
    from distill.train_state import is_train_state

    output = Path(output).expanduser()
    if output.suffix != ".safetensors":
        raise KdcamError(f"{output}: --output must end in .safetensors")
    source = resolve_source(run=run, checkpoint=checkpoint, which=which)
    if is_train_state(source):
        student, base = _student_from_train_state(source)
    else:
        student, meta = load_student(source)
        base = dict(meta.get("card", {}))
        base.setdefault("arch", meta["arch"])
    with torch.no_grad():
        plain = student.collapse().eval()
        # the folded form must compute the same function as the training form
        probe = torch.rand(1, 3, 8 * student.multiple, 8 * student.multiple, generator=torch.Generator().manual_seed(0))
        diff = float((plain.restore_bgr(probe) - student.eval().restore_bgr(probe)).abs().max())
    if diff > 1e-4:
        raise KdcamError(f"{source}: the collapsed student differs from the trained one by {diff:.2e}; report this bug")
    full_card = {
        **base,
        "name": output.stem if base.get("name") in (None, "") else base["name"],
        "arch": student.arch,
        "macs_per_pixel": student_macs_per_pixel(plain),
        "parameters": sum(p.numel() for p in plain.parameters()),
        "collapsed": True,
        # a shipped file exported again (its card scored anew) keeps the name of the file it came from
        "exported_from": base["exported_from"] if base.get("collapsed") and base.get("exported_from") else source.name,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **(card or {}),
    }
    path = save_student(plain, output, card=full_card)
    onnx_path = None
    if onnx:
        onnx_path = write_onnx(open_model(path), sibling_onnx(path))
    return {
        "checkpoint": str(path),
        "json": str(path.with_suffix(".json")),
        "onnx": str(onnx_path) if onnx_path else None,
        "card": full_card,
    }
