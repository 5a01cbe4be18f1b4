"""Pixel values between float and integer: the one rounding rule kdcam uses everywhere.

Floats are images in [0, 1]; integers are uint8 (0..255) or uint16 (0..65535) images.
Converting to integers rounds half up (``floor(x * max + 0.5)``) and clips; converting
back divides by the type's maximum.
"""

from __future__ import annotations

import numpy as np


def to_uint(image: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """A float image in [0, 1] as ``dtype`` (uint8 or uint16), rounded half up and clipped."""
    top = float(np.iinfo(dtype).max)
    return np.clip(np.asarray(image, np.float32) * top + 0.5, 0, top).astype(dtype)


def to_float(image: np.ndarray) -> np.ndarray:
    """An integer image as float32 in [0, 1] (a float image is returned as float32, unchanged)."""
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) * np.float32(1.0 / np.iinfo(image.dtype).max)
    return image.astype(np.float32, copy=False)
