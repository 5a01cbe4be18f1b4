"""Whether the PyTorch engines can run here, answered without importing torch where it can be.

The registry asks every engine ahead of the one ``auto`` picks; on a machine with no NVIDIA
driver, ``torch-cuda`` is out without loading PyTorch (hundreds of MiB and seconds), so a
CPU start never imports it.
"""

from __future__ import annotations

import os
import sys

from engines.foundation.installed import installed
from engines.model.needs_torch import GPU_EXTRA, TORCH_EXTRA


def torch_installed() -> bool:
    """Whether ``import torch`` would find a package (nothing is imported)."""
    return installed("torch")


def no_nvidia_driver() -> bool:
    """True where there surely is no CUDA GPU: macOS, or Linux (not WSL) without the NVIDIA driver."""
    if sys.platform == "darwin":
        return True
    if sys.platform.startswith("linux"):
        return not (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/dxg"))
    return False


def availability() -> str | None:
    """The CPU reference engine: None when PyTorch is installed, else why not."""
    return None if torch_installed() else f"PyTorch is not installed ({TORCH_EXTRA})"


def cuda_availability() -> str | None:
    """The CUDA engine: None when PyTorch sees a CUDA GPU, else why not."""
    if no_nvidia_driver():
        return "no CUDA GPU (no NVIDIA driver loaded)"
    if not torch_installed():
        return f"PyTorch is not installed ({GPU_EXTRA})"
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU visible to PyTorch"
