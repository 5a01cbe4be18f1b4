"""The split before/after view published to the call: the input on the left half, the
sharpened frame on the right, a thin divider between them, optionally labelled.

It is drawn in place into the output frame (no allocation per frame), after the engine
wrote the sharpened frame there: the left half is copied back from the input.
"""

from __future__ import annotations

import cv2
import numpy as np

DIVIDER = (255, 255, 255)


def draw_split(out: np.ndarray, before: np.ndarray, *, labels: bool = False) -> None:
    """``out`` (the sharpened frame) becomes the split view of ``before`` and itself."""
    width = out.shape[1]
    half = width // 2
    np.copyto(out[:, :half], before[:, :half])
    out[:, half] = DIVIDER  # one column, in the sharpened half: the input half stays exactly the input
    if labels:
        _label(out, "before", (8, 24))
        _label(out, "after (kdcam)", (half + 8, 24))


def _label(image: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    # dark outline under light text: readable on any background
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
