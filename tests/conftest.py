"""Shared fixtures. ../shared (read-only data) is beside the repo in CI; tests that need
it skip with the reason where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # Never write exported ONNX files into the user's real cache from tests.
    os.environ["KDCAM_CACHE_DIR"] = str(tmp_path_factory.mktemp("kdcam-cache"))


@pytest.fixture
def private_dirs(tmp_path, monkeypatch) -> Path:
    """Sockets, panel token files and config files of a test stay in its own folders (the
    runtime folder is private, as kdcam requires); returns the runtime folder."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return runtime


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (CI provides ../shared beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def random_student_path(tmp_path_factory) -> Path:
    """A kd-s4-c16 student with small random weights (every parameter non-zero)."""
    import torch

    from engines.model.checkpoint import save_student
    from engines.model.students import create_student

    torch.manual_seed(0)
    student = create_student("kd-s4-c16")
    with torch.no_grad():
        for p in student.parameters():
            p.normal_(0.0, 0.05)
    return save_student(student, tmp_path_factory.mktemp("student") / "random.safetensors", card={"note": "test"})


@pytest.fixture(scope="module")
def photos(tmp_path_factory, shared_dir) -> Path:
    """Five of the shared training photos, copied into a folder of their own."""
    import shutil

    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((shared_dir / "data" / "train").glob("*.jpg"))[:5]:
        shutil.copy(path, folder / path.name)
    return folder
