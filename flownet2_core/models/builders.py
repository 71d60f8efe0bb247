"""Builders named after the paper's models; they only fill settings.

``width`` multiplies every feature layer's channel count (``round(c · width)``);
the paper's lowercase variants (FlowNet2-s, -c, -cs, -css, …) are width 3/8.
Image (3), flow (2) and correlation (441) channels never scale, so at 3/8
conv_redir has 12 channels and FlowNetC's conv3_1 sees 12 + 441 = 453.

Unverified: the exact channel counts of the original lowercase Caffe models
live in their ``<Name>_deploy.prototxt.template`` files, which ship only in
the lmb-freiburg model archive (``models/download-models.sh``), not in any
repository searchable here. Scaling every layer by 3/8 is the paper's
description (§4.2) and what the one third-party re-implementation we found
does; check a lowercase prototxt before claiming weight compatibility.

Every builder takes the convention flags of :mod:`.stacks`
(``upsample_align_corners=False``, ``warp_padding="border"``, the port's
behaviour).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .stacks import FlowNet2, FlowNet2C, FlowNet2CS, FlowNet2CSS, FlowNet2S, FlowNet2SD

__all__ = [
    "BUILDERS", "LOWERCASE_WIDTH", "MODEL_CLASSES", "build_model", "display_name", "flownet2",
    "flownet2_c", "flownet2_cs", "flownet2_css", "flownet2_s", "flownet2_sd",
]

LOWERCASE_WIDTH = 3 / 8


def flownet2(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
             warp_padding: str = "border") -> FlowNet2:
    """FlowNet 2.0 (CSS + SD + fusion); 162,518,834 parameters at width 1."""
    return FlowNet2(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_c(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
               warp_padding: str = "border") -> FlowNet2C:
    """FlowNet2-C (FlowNetC alone); 39,175,298 parameters at width 1."""
    return FlowNet2C(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_cs(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
                warp_padding: str = "border") -> FlowNet2CS:
    """FlowNet2-CS (FlowNetC → FlowNetS); 77,870,620 parameters at width 1."""
    return FlowNet2CS(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_css(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
                 warp_padding: str = "border") -> FlowNet2CSS:
    """FlowNet2-CSS (also the architecture of FlowNet2-CSS-ft-sd); 116,565,942 parameters at width 1."""
    return FlowNet2CSS(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_s(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
               warp_padding: str = "border") -> FlowNet2S:
    """FlowNet2-S (FlowNetS alone); 38,676,506 parameters at width 1."""
    return FlowNet2S(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_sd(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
                warp_padding: str = "border") -> FlowNet2SD:
    """FlowNet2-SD (FlowNetSD alone); 45,371,666 parameters at width 1."""
    return FlowNet2SD(width, batch_norm, upsample_align_corners, warp_padding)


#: Released architecture name → builder. FlowNet2-CSS-ft-sd uses "FlowNet2-CSS".
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "FlowNet2": flownet2,
    "FlowNet2-C": flownet2_c,
    "FlowNet2-CS": flownet2_cs,
    "FlowNet2-CSS": flownet2_css,
    "FlowNet2-S": flownet2_s,
    "FlowNet2-SD": flownet2_sd,
}

MODEL_CLASSES: dict[str, type] = {
    "FlowNet2": FlowNet2, "FlowNet2-C": FlowNet2C, "FlowNet2-CS": FlowNet2CS,
    "FlowNet2-CSS": FlowNet2CSS, "FlowNet2-S": FlowNet2S, "FlowNet2-SD": FlowNet2SD,
}


def build_model(name: str, **settings) -> nn.Module:
    """Build a model by released architecture name (``"FlowNet2-CSS"``) with builder keywords."""
    if name not in BUILDERS:
        raise ValueError(f"unknown FlowNet2 architecture {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name](**settings)


def display_name(name: str, width: float) -> str:
    """The paper's spelling: lowercase letters for width 3/8 (``FlowNet2-css``), else ``name@w``."""
    if width == 1.0:
        return name
    if abs(width - LOWERCASE_WIDTH) < 1e-9 and "-" in name:
        head, letters = name.split("-", 1)
        return f"{head}-{letters.lower()}"
    return f"{name} (width {width:g})"
