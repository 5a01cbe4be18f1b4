"""The still frame sent while no app watches: the last frame, dimmed, with one line on it."""

from __future__ import annotations

import cv2
import numpy as np

PAUSED_TEXT = "paused: no app is watching"
#: how much of the last frame's brightness the still keeps
DIM = 0.35


def draw_still(dst: np.ndarray, last: np.ndarray, *, text: str = PAUSED_TEXT) -> np.ndarray:
    """``last`` dimmed into ``dst`` (same shape, uint8), ``text`` centred on it; returns ``dst``."""
    cv2.convertScaleAbs(last, dst, alpha=DIM)
    height, width = dst.shape[:2]
    scale = max(0.4, width / 1280 * 1.2)
    thickness = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (max(0, (width - tw) // 2), (height + th) // 2)
    cv2.putText(dst, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(dst, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), thickness, cv2.LINE_AA)
    return dst
