"""The student registry: small, fast CNNs that run on every frame, by name (timm style).

Each student is built from a dataclass config that is saved inside every checkpoint, so a
model can be rebuilt from its file alone. The networks: ``engines.model.s2d`` (the
space-to-depth students kdcam ships) and ``engines.model.srcnn`` (the seed's reference);
what they share (a residual on [0, 1] images, luma in, correction on all channels) is
``engines.model.residual``; their configs and the checks of a checkpoint's config are
``engines.model.configs`` (torch-free).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from engines.errors import KdcamError
from engines.model.configs import S2DConfig, SRCNNConfig, config_from_dict, config_to_dict
from engines.model.residual import ResidualStudent
from engines.model.s2d import SpaceToDepthStudent
from engines.model.srcnn import SRCNNStudent

__all__ = ["DEFAULT_STUDENT", "STUDENTS", "build_from_config", "config_from_dict", "config_to_dict",
           "create_student", "student_macs_per_pixel"]


def student_macs_per_pixel(model: ResidualStudent) -> float:
    """Multiply-accumulates per frame pixel of the network's convolutions."""
    probe = torch.zeros(1, model.in_channels, 4 * model.multiple, 4 * model.multiple)
    total = 0.0

    def hook(mod: nn.Conv2d, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.residual(probe)
    for h in handles:
        h.remove()
    return total / (probe.shape[-1] * probe.shape[-2])


# --- registry -----------------------------------------------------------------------

_BUILDERS: dict[type, type[ResidualStudent]] = {S2DConfig: SpaceToDepthStudent, SRCNNConfig: SRCNNStudent}
#: the architecture of the first installed student (engines.model.zoo ORDER[0], `quality`)
DEFAULT_STUDENT = "kd-s4-c24-pa"


def _s2d(channels: int, num_convs: int, *, scale: int = 4, **options) -> Callable[[], S2DConfig]:
    return lambda: S2DConfig(scale=scale, channels=channels, num_convs=num_convs, reparam=True, **options)


#: name -> config factory. kd-sS-cC: space-to-depth x S, C channels; -nN: N convs (default 3,
#: c32 4, c48 5); -pg / -pa: PReLU with the whole-frame gate, mean / attention pooling (blind
#: adaptivity, engines.model.s2d)
STUDENTS: dict[str, Callable[[], S2DConfig | SRCNNConfig]] = {
    "kd-s4-c16": _s2d(16, 3),
    "kd-s4-c16-n2": _s2d(16, 2),  # the default minus one conv: faster, a smaller receptive field
    "kd-s4-c24": _s2d(24, 3),
    "kd-s4-c32": _s2d(32, 4),
    "kd-s4-c48": _s2d(48, 5),
    "kd-s2-c16": _s2d(16, 3, scale=2),
    "kd-s4-c16-pg": _s2d(16, 3, act="prelu", gate="learned"),
    "kd-s4-c24-pg": _s2d(24, 3, act="prelu", gate="learned"),
    "kd-s4-c32-pg": _s2d(32, 3, act="prelu", gate="learned"),
    "kd-s4-c16-pa": _s2d(16, 3, act="prelu", gate="attention"),
    "kd-s4-c24-pa": _s2d(24, 3, act="prelu", gate="attention"),
    "kd-s4-c32-pa": _s2d(32, 3, act="prelu", gate="attention"),  # a wider member, for CPUs with bf16 or AMX
    "kd-s4-c32-n4-pa": _s2d(32, 4, act="prelu", gate="attention"),  # wider and one conv deeper
    "srcnn-955": SRCNNConfig,  # the seed project's network: a speed reference
}


def build_from_config(arch: str, config: S2DConfig | SRCNNConfig) -> ResidualStudent:
    model = _BUILDERS[type(config)](config)
    model.arch = arch
    return model


def create_student(name: str, **overrides) -> ResidualStudent:
    """Build a registered student, optionally overriding config fields."""
    if name not in STUDENTS:
        raise KdcamError(f"unknown student '{name}'; choose one of: {', '.join(STUDENTS)}")
    config = STUDENTS[name]()
    try:
        config = dataclasses.replace(config, **overrides)
    except TypeError as err:
        raise KdcamError(f"bad option for student '{name}': {err}") from None
    return build_from_config(name, config)
