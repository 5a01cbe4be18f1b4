"""Does sharpening add flicker? Frame-to-frame change in static regions, input vs output.

    python scripts/temporal_stability.py ../shared/data/video/vtest.avi [--model M ...] [--engine E] [--json OUT]

Without ``--model``, every installed model (``engines.model.zoo``) is measured.

A pixel is "static" between frames t-1 and t where the input's luma changed by at most
``--static-threshold`` levels (after a 5x5 box blur, so compression noise does not mark
it as motion). Over all such pixels of the clip, the mean absolute frame-to-frame luma
change of the sharpened video is compared with the input's; a ratio above 1.10 means the
model adds visible flicker.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from engines.atomic import atomic_write_text
from engines import create_engine
from engines.model.zoo import installed


def measure(video: Path, *, model: str | Path, engine: str, threshold: float, strength: float) -> dict:
    cap = cv2.VideoCapture(str(video))
    runner = create_engine(engine, model=model)
    prev_in = prev_out = None
    sum_in = sum_out = 0.0
    static_pixels = frames = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            y_in = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
            y_out = cv2.cvtColor(runner.sharpen(frame, strength=strength), cv2.COLOR_BGR2GRAY).astype(np.float32)
            if prev_in is not None:
                motion = cv2.blur(np.abs(y_in - prev_in), (5, 5))
                static = motion <= threshold
                sum_in += float(np.abs(y_in - prev_in)[static].sum())
                sum_out += float(np.abs(y_out - prev_out)[static].sum())
                static_pixels += int(static.sum())
            prev_in, prev_out = y_in, y_out
            frames += 1
    finally:
        cap.release()
        runner.close()
    mean_in, mean_out = sum_in / static_pixels, sum_out / static_pixels
    return {
        "video": str(video), "frames": frames, "engine": runner.describe(), "strength": strength,
        "static_threshold": threshold, "static_fraction": static_pixels / max(1, (frames - 1) * y_in.size),
        "input_mean_abs_diff": mean_in, "output_mean_abs_diff": mean_out, "ratio": mean_out / mean_in,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--model", action="append", help="an installed model's name or a checkpoint (repeatable; "
                                                     "default: every installed model)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--static-threshold", type=float, default=2.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models = args.model or installed()
    result = {"models": {str(m): measure(args.video, model=m, engine=args.engine, threshold=args.static_threshold,
                                         strength=args.strength) for m in models},
              "limit": 1.10}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        atomic_write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
