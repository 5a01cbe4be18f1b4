"""`--model auto`: the first start on a machine says that it times the models; later starts read the cache."""

from __future__ import annotations

import pytest

from vcam.live.model_choice import choose_model


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDCAM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_first_start_says_it_measures_and_the_next_one_reads_the_cache(own_cache):
    first: list[str] = []
    name, model = choose_model(engine="onnxruntime", size=(64, 48), fps=30, log=first.append)
    assert len(first) == 2, first
    assert "first start here at 64x48" in first[0] and "installed models" in first[0]
    assert first[1].startswith(f"kdcam: model auto -> {name}") and "measured now, cached" in first[1]
    assert (own_cache / "model-times.json").is_file()
    again: list[str] = []
    assert choose_model(engine="onnxruntime", size=(64, 48), fps=30, log=again.append)[0] == name
    assert len(again) == 1 and "cached measurement" in again[0]
    other_size: list[str] = []
    choose_model(engine="onnxruntime", size=(96, 64), fps=30, log=other_size.append)
    assert "first start here at 96x64" in other_size[0], "each frame size is measured once"
