"""Classical sharpeners, the baselines every student has to beat.

Both take a BGR frame as float32/float64 in [0, 1] or as uint8, and return the same dtype
and shape, clamped to the valid range (uint8 results are rounded).
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.errors import KdcamError
from engines.pixels import to_float, to_uint


def _to_float(bgr: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    if bgr.ndim not in (2, 3):
        raise KdcamError(f"expected an image of shape HxW or HxWxC, got shape {bgr.shape}")
    dtype = bgr.dtype
    if dtype == np.uint8:
        return to_float(bgr), dtype
    if np.issubdtype(dtype, np.floating):
        return bgr.astype(np.float32, copy=False), dtype
    raise KdcamError(f"expected a uint8 or float image, got dtype {dtype}; convert the frame first")


def _from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return to_uint(image)
    return np.clip(image, 0.0, 1.0).astype(dtype, copy=False)


def unsharp_mask(bgr: np.ndarray, *, sigma: float = 1.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking: ``out = bgr + amount * (bgr - GaussianBlur(bgr, sigma))``, clamped.

    ``amount = 0`` returns the input unchanged (values; a new array).
    """
    if sigma <= 0:
        raise KdcamError(f"unsharp sigma must be positive, not {sigma}")
    image, dtype = _to_float(bgr)
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    out = cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0)
    return _from_float(out, dtype)


def laplacian_kernel(strength: float) -> np.ndarray:
    """The 3x3 kernel of ``laplacian_sharpen``: centre ``1 + 8s``, all eight neighbours ``-s``."""
    s = float(strength)
    kernel = np.full((3, 3), -s, np.float32)
    kernel[1, 1] = 1.0 + 8.0 * s
    return kernel


def laplacian_sharpen(bgr: np.ndarray, *, strength: float = 0.08) -> np.ndarray:
    """OBS Studio's "Sharpen" filter (``sharpness.effect``; OBS's default strength is 0.08).

    Each pixel E gets ``strength * (8 * E - its eight neighbours)`` added (a 3x3 Laplacian
    sharpen, ``laplacian_kernel(strength)``), with the border pixels repeated as OBS's
    clamped sampler does, and the result is clamped to the valid range. Like OBS, pixels
    that match a horizontal neighbour and a vertical neighbour (flat areas) are left alone;
    a pixel "differs" from a neighbour when any channel differs, as on OBS's OpenGL path.
    """
    image, dtype = _to_float(bgr)
    sharpened = cv2.filter2D(image, -1, laplacian_kernel(strength), borderType=cv2.BORDER_REPLICATE)
    padded = cv2.copyMakeBorder(image, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    h, w = image.shape[:2]
    centre = padded[1 : h + 1, 1 : w + 1]
    ones = np.ones((1, image.shape[2] if image.ndim == 3 else 1), np.float32)

    def differs(dy: int, dx: int) -> np.ndarray:
        diff = cv2.absdiff(padded[1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx], centre)
        if diff.ndim == 3:
            diff = cv2.transform(diff, ones)  # sum over channels: > 0 if any channel differs
        return diff.reshape(h, w) > 0

    active = (differs(0, 1) & differs(0, -1)) | (differs(-1, 0) & differs(1, 0))
    out = image.copy()
    cv2.copyTo(sharpened, active.view(np.uint8), out)
    return _from_float(out, dtype)
