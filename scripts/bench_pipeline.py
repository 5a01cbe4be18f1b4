"""Benchmark the whole live loop (capture -> sharpen -> paced send) from a video file.

    python scripts/bench_pipeline.py --source ../shared/data/video/vtest.avi --seconds 30

Prints the summary as JSON: sustained sent fps, added latency p50/p95 (ms), CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.errors import KdcamError  # noqa: E402
from vcam.config import parse_size  # noqa: E402
from vcam.pipeline_bench import run_pipeline_bench  # noqa: E402

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "vtest.avi"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="video file, looped (default: shared vtest.avi)")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    try:
        summary = run_pipeline_bench(
            source=args.source,
            size=parse_size(args.size),
            fps=args.fps,
            seconds=args.seconds,
            engine=args.engine,
            model=args.model,
        )
    except KdcamError as err:
        print(f"kdcam: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
