"""``kdcam distill``: fit a teacher, label crops, train a student, evaluate, export.

Thin typer commands over keyword-only library functions; the options of train,
fit-teacher, label and evaluate are the fields of their config dataclasses
(``distill.config``), declared once. ``kdcam`` mounts this app lazily; it also runs on its
own as ``python -m distill.cli`` (e.g. ``torchrun --nproc_per_node N -m distill.cli train ...``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from distill.config import EvaluateConfig, LabelConfig, TeacherConfig, TrainConfig
from engines.foundation.cli import run_cli
from engines.foundation.cli import typer_app
from engines.foundation.options import typer_command
from engines.model.needs_torch import require_installed

app = typer_app("distill", "Train and ship the student: fit-teacher, label, train, evaluate, export.")

#: the modules of the ``train`` extra that ``kdcam distill`` imports (a plain ``pip install kdcam`` has none)
TRAIN_MODULES = ("torch", "onnx", "onnxscript", "skimage", "matplotlib", "tqdm")


def needs_train_extra(command: Callable) -> Callable:
    """``command``, run only once every training module is installed: else one error line
    naming the extra, before any work starts (``--help`` and option errors do not need them)."""

    @functools.wraps(command)
    def checked(*args, **kwargs):
        require_installed("kdcam distill", TRAIN_MODULES)
        return command(*args, **kwargs)

    return checked


def _print_json(data: dict) -> None:
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(data, indent=2, default=str))


def train(config: TrainConfig) -> None:
    from distill.train import train_student

    _print_json(train_student(config))


def fit_teacher(config: TeacherConfig) -> None:
    from distill.fit_teacher import fit_teacher as fit

    _print_json(fit(config))


def label(config: LabelConfig) -> None:
    from distill.label import label as make_labels

    _print_json(make_labels(config))


def evaluate(config: EvaluateConfig) -> None:
    from distill.evaluate import evaluate_models

    evaluate_models(config)
    typer.echo(f"results in {config.out}/results.md")


app.command("train")(typer_command(TrainConfig, needs_train_extra(train)))
app.command("fit-teacher")(typer_command(TeacherConfig, needs_train_extra(fit_teacher)))
app.command("label")(typer_command(LabelConfig, needs_train_extra(label)))
app.command("evaluate")(typer_command(EvaluateConfig, needs_train_extra(evaluate)))


@app.command("export")
@needs_train_extra
def export(
    output: Annotated[Path, typer.Option(help="The shipped checkpoint, PATH.safetensors (+ .json, .onnx).")],
    run: Annotated[Optional[Path], typer.Option(help="A run folder of `kdcam distill train`.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="A student or training checkpoint instead.")] = None,
    which: Annotated[str, typer.Option(help="From a run: best (by validation PSNR) or last.")] = "best",
    onnx: Annotated[bool, typer.Option(help="Also write the ONNX file beside it.")] = True,
) -> None:
    """Write the collapsed student, its model card and its ONNX file."""
    from distill.export import export_student

    result = export_student(output=output, run=run, checkpoint=checkpoint, which=which, onnx=onnx)
    for key in ("checkpoint", "json", "onnx"):
        if result[key]:
            typer.echo(f"wrote {result[key]}")


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
