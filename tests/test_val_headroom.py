"""scripts/val_headroom.py scores on the validation side of the training split, never on other photos."""

import importlib.util
import json
from pathlib import Path

from distill.data import list_images, split_train_val

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "val_headroom.py"


def _load():
    spec = importlib.util.spec_from_file_location("val_headroom", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scores_only_the_validation_photos(photos, random_student_path, tmp_path):
    out = tmp_path / "headroom"
    rc = _load().main(["--data", str(photos), "--student", f"tiny={random_student_path}", "--presets", "gaussian-1.4",
                       "--max-side", "96", "--val-fraction", "0.4", "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    train, val = split_train_val(list_images(photos), val_fraction=0.4, seed=0)
    assert train and val
    assert results["images"] == [p.name for p in val]
    assert results["methods"] == ["input", "unsharp", "laplacian", "tiny"]
    row = results["presets"]["gaussian-1.4"]["methods"]["input"]
    assert 15.0 < row["psnr"] < 60.0  # a real blur, scored against the clean photo


def test_a_folder_without_photos_is_one_line_error(tmp_path, capsys):
    rc = _load().main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdcam: error:") and "\n" not in err
    assert not (tmp_path / "out").exists()
