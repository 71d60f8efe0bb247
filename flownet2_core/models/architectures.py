"""Architecture names → model classes: the one map from the names of the weights registry
(:data:`flownet2_core.weights.ARCHITECTURES`) to the classes of :mod:`.stacks`.

Checkpoint loading (:mod:`.checkpoint`) and the builders (:mod:`.builders`) both build
through :func:`construct`, which takes plain settings and never reads a file.
"""

from __future__ import annotations

from torch import nn

from ..weights import PORT_CONVENTIONS
from .stacks import (
    FlowNet2,
    FlowNet2C,
    FlowNet2CS,
    FlowNet2CSS,
    FlowNet2S,
    FlowNet2SD,
    FlowNet2SS,
    FlowNet2SSS,
)

__all__ = ["MODEL_CLASSES", "construct"]

#: Released architecture name → model class (FlowNet2-CSS-ft-sd files hold "FlowNet2-CSS");
#: the same names, in the same order, as ``flownet2_core.weights.ARCHITECTURES`` (tested).
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    cls.arch_name: cls
    for cls in (FlowNet2, FlowNet2C, FlowNet2CS, FlowNet2CSS, FlowNet2S, FlowNet2SD, FlowNet2SS, FlowNet2SSS)
}


def construct(name: str, *, width: float = 1.0, batch_norm: bool = False,
              upsample_align_corners: bool = PORT_CONVENTIONS["upsample_align_corners"],
              warp_padding: str = PORT_CONVENTIONS["warp_padding"]) -> nn.Module:
    """A freshly initialised model of architecture ``name`` (``ValueError`` when unknown)."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown FlowNet2 architecture {name!r}; known: {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[name](width, batch_norm, upsample_align_corners, warp_padding)
