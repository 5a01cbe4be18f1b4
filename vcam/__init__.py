"""kdcam: a virtual webcam that sharpens every frame with a distilled student CNN.

``vcam`` is the live side (capture, the paced sender, the virtual camera, the commands
that run a model); it stands on ``engines`` and never imports ``distill``.
"""

from importlib.metadata import PackageNotFoundError, version

from engines.errors import KdcamError

__all__ = ["KdcamError", "__version__"]
try:
    __version__ = version("kdcam")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
