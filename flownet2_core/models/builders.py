"""Builders named after the paper's models; they only fill settings.

``width`` multiplies every feature layer's channel count (``round(c · width)``);
the paper's lowercase variants (FlowNet2-s, -c, -cs, -css, …) are width 3/8.
Image (3), flow (2) and correlation (441) channels never scale, so at 3/8
conv_redir has 12 channels and FlowNetC's conv3_1 sees 12 + 441 = 453.

Channel counts of the original lowercase Caffe models live in their
``<Name>_deploy.prototxt.template`` files, which ship in the lmb-freiburg
model archive (``models/download-models.sh``). Only FlowNet2-ss's was seen
here (mirrored in cdancette/flownet-tools): both of its FlowNetS have exactly
64 … 1024 × 3/8 channels (24, 48, 96, 96, 192, … 384; deconvs 192 … 24), as
this scaling gives. The -c, -cs, -css, -s and -sss prototxts were not seen;
the converter checks every blob shape, and ``--prototxt`` every num_output.

FlowNet2-SS / -SSS (:class:`.stacks.FlowNet2SS`, ``FlowNet2SSS``) exist only
in the Caffe release (FlowNet2-SS at full width, FlowNet2-ss and -sss at 3/8).

Every builder takes the convention flags of :mod:`.stacks`
(``upsample_align_corners=False``, ``warp_padding="border"``, the port's
behaviour).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

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

__all__ = [
    "BUILDERS", "LOWERCASE_WIDTH", "MODEL_CLASSES", "build_model", "display_name", "flownet2",
    "flownet2_c", "flownet2_cs", "flownet2_css", "flownet2_s", "flownet2_sd", "flownet2_ss",
    "flownet2_sss",
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


def flownet2_ss(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
                warp_padding: str = "border") -> FlowNet2SS:
    """FlowNet2-SS (FlowNetS → FlowNetS; Caffe release only, FlowNet2-ss at width 3/8);
    77,371,828 parameters at width 1, 10,932,388 at 3/8."""
    return FlowNet2SS(width, batch_norm, upsample_align_corners, warp_padding)


def flownet2_sss(width: float = 1.0, batch_norm: bool = False, upsample_align_corners: bool = False,
                 warp_padding: str = "border") -> FlowNet2SSS:
    """FlowNet2-SSS (3 × FlowNetS; Caffe release only as FlowNet2-sss, width 3/8);
    116,067,150 parameters at width 1, 16,402,110 at 3/8."""
    return FlowNet2SSS(width, batch_norm, upsample_align_corners, warp_padding)


#: Released architecture name → builder. FlowNet2-CSS-ft-sd uses "FlowNet2-CSS".
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "FlowNet2": flownet2,
    "FlowNet2-C": flownet2_c,
    "FlowNet2-CS": flownet2_cs,
    "FlowNet2-CSS": flownet2_css,
    "FlowNet2-S": flownet2_s,
    "FlowNet2-SD": flownet2_sd,
    "FlowNet2-SS": flownet2_ss,
    "FlowNet2-SSS": flownet2_sss,
}

MODEL_CLASSES: dict[str, type] = {
    "FlowNet2": FlowNet2, "FlowNet2-C": FlowNet2C, "FlowNet2-CS": FlowNet2CS,
    "FlowNet2-CSS": FlowNet2CSS, "FlowNet2-S": FlowNet2S, "FlowNet2-SD": FlowNet2SD,
    "FlowNet2-SS": FlowNet2SS, "FlowNet2-SSS": FlowNet2SSS,
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
