"""kdcam: a virtual webcam that sharpens every frame with a distilled student CNN."""

from distill.errors import KdcamError

__all__ = ["KdcamError"]
__version__ = "0.1.0"
