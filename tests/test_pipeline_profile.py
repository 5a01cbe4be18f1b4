"""`kdcam bench --pipeline`'s breakdown: where the live loop's CPU goes, stage by stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcam.live.profile import STAGES, StageProfile, format_profile

CLIP = Path(__file__).resolve().parents[1] / "samples" / "vtest_clip.avi"


def test_the_report_splits_cpu_per_frame_and_per_second_and_names_the_other_threads():
    profile = StageProfile()
    profile.add("decode", 0.3)
    profile.engine(convert=0.2, network=1.5)
    profile.threads.update({"kdcam-capture": 0.5, "kdcam-process": 1.8, "kdcam-send": 0.1})
    rows = profile.report(wall_s=10.0, frames=100, process_cpu_s=3.4)
    assert list(rows) == [*STAGES, "other threads"]
    assert rows["decode"] == {"ms_per_frame": pytest.approx(3.0), "cores": pytest.approx(0.03)}
    assert rows["network"]["ms_per_frame"] == pytest.approx(15.0)
    assert rows["other threads"]["cores"] == pytest.approx((3.4 - 2.4) / 10)
    assert rows["send"] == {"ms_per_frame": 0.0, "cores": 0.0}
    table = format_profile(rows)
    assert table.splitlines()[-1].split()[0] == "total" and "other threads" in table


@pytest.mark.slow
def test_a_pipeline_run_reports_every_stage_it_ran(capsys):
    from vcam.pipeline_bench import run_pipeline_bench

    summary = run_pipeline_bench(source=CLIP, size=(320, 240), fps=30, seconds=2.0, engine="onnxruntime",
                                 model="fast")
    stages = summary["stages"]
    assert list(stages) == [*STAGES, "other threads"]
    for stage in ("decode", "resize", "convert", "network"):
        assert stages[stage]["ms_per_frame"] > 0, f"{stage} ran and took some CPU"
    total = sum(row["cores"] for row in stages.values())
    assert total <= summary["cpu_cores"] + 1e-6, "the stages are part of the process's CPU, never more"
    assert "where the CPU goes" in capsys.readouterr().err


def test_an_engine_without_its_own_split_counts_as_network():
    """A GPU engine runs its whole frame graph on the device: the processing thread's CPU in
    its call is the network row (a CPU engine splits it into convert and network itself)."""
    import threading

    from live_fixtures import InvertEngine, NumberedSource

    from vcam.live.controls.state import Controls
    from vcam.live.pipeline import run_loop
    from vcam.live.stats import LiveStats

    profile, engine = StageProfile(), InvertEngine()
    source = NumberedSource(shape=(240, 320, 3), fps=0)
    run_loop(source=source, factory=lambda: source, engine=engine, shape=(240, 320, 3), fps=60,
             controls=Controls(strength=1.0), stats=LiveStats(), stop=threading.Event(), max_frames=30,
             report_every=None, profile=profile, log=lambda _line: None)
    assert not hasattr(engine, "profile"), "no hook is forced onto an engine that has none"
    assert profile.seconds["network"] > 0 and profile.seconds["convert"] == 0
