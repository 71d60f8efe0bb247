"""Builders named after the paper's models: they fill settings and, given weights, load them.

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

Every builder takes its settings keyword-only, as torchvision's do:
``flownet2_css(*, width=None, weights=None, batch_norm=None,
upsample_align_corners=None, warp_padding=None)``. ``weights`` is an entry of
the weights registry (:func:`flownet2_core.weights.get_weights`) or a checkpoint
path; the model is built to fit it and loaded (:func:`.checkpoint.load_weights`:
nothing is downloaded, a missing file is an error). Settings left ``None`` come
from the weights when given (width and batch norm from the file; convention
flags from the file's record, else the registry entry), else the defaults:
width 1, no batch norm, the port's conventions (``upsample_align_corners=False``,
``warp_padding="border"``, see :mod:`.stacks`). A given setting that contradicts
the weights is a ``ValueError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from torch import nn

from ..weights import LOWERCASE_WIDTH, PORT_CONVENTIONS, Weights, display_name
from .architectures import MODEL_CLASSES, construct
from .checkpoint import load_weights
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

WeightsArg = Weights | str | os.PathLike | None


def _build(arch: str, builder: str, width: float | None, weights: WeightsArg, batch_norm: bool | None,
           upsample_align_corners: bool | None, warp_padding: str | None) -> nn.Module:
    if weights is not None:
        return load_weights(weights, arch=arch, width=width, batch_norm=batch_norm,
                            upsample_align_corners=upsample_align_corners, warp_padding=warp_padding,
                            who=f"{builder}()")
    settings = {**PORT_CONVENTIONS}
    if upsample_align_corners is not None:
        settings["upsample_align_corners"] = upsample_align_corners
    if warp_padding is not None:
        settings["warp_padding"] = warp_padding
    return construct(arch, width=1.0 if width is None else width, batch_norm=bool(batch_norm), **settings)


def flownet2(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
             upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2:
    """FlowNet 2.0 (CSS + SD + fusion); 162,518,834 parameters at width 1."""
    return _build("FlowNet2", "flownet2", width, weights, batch_norm, upsample_align_corners, warp_padding)


def flownet2_c(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
               upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2C:
    """FlowNet2-C (FlowNetC alone); 39,175,298 parameters at width 1."""
    return _build("FlowNet2-C", "flownet2_c", width, weights, batch_norm, upsample_align_corners, warp_padding)


def flownet2_cs(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
                upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2CS:
    """FlowNet2-CS (FlowNetC → FlowNetS); 77,870,620 parameters at width 1."""
    return _build("FlowNet2-CS", "flownet2_cs", width, weights, batch_norm, upsample_align_corners,
                  warp_padding)


def flownet2_css(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
                 upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2CSS:
    """FlowNet2-CSS (also the architecture of FlowNet2-CSS-ft-sd);
    116,565,942 parameters at width 1."""
    return _build("FlowNet2-CSS", "flownet2_css", width, weights, batch_norm, upsample_align_corners,
                  warp_padding)


def flownet2_s(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
               upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2S:
    """FlowNet2-S (FlowNetS alone); 38,676,506 parameters at width 1."""
    return _build("FlowNet2-S", "flownet2_s", width, weights, batch_norm, upsample_align_corners, warp_padding)


def flownet2_sd(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
                upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2SD:
    """FlowNet2-SD (FlowNetSD alone); 45,371,666 parameters at width 1."""
    return _build("FlowNet2-SD", "flownet2_sd", width, weights, batch_norm, upsample_align_corners,
                  warp_padding)


def flownet2_ss(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
                upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2SS:
    """FlowNet2-SS (FlowNetS → FlowNetS; Caffe release only, FlowNet2-ss at width 3/8);
    77,371,828 parameters at width 1, 10,932,388 at 3/8."""
    return _build("FlowNet2-SS", "flownet2_ss", width, weights, batch_norm, upsample_align_corners,
                  warp_padding)


def flownet2_sss(*, width: float | None = None, weights: WeightsArg = None, batch_norm: bool | None = None,
                 upsample_align_corners: bool | None = None, warp_padding: str | None = None) -> FlowNet2SSS:
    """FlowNet2-SSS (3 × FlowNetS; Caffe release only as FlowNet2-sss, width 3/8; also the
    architecture of FlowNet2-sss-synth, trained here); 116,067,150 parameters at width 1, 16,402,110 at 3/8."""
    return _build("FlowNet2-SSS", "flownet2_sss", width, weights, batch_norm, upsample_align_corners,
                  warp_padding)


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


def build_model(name: str, **settings) -> nn.Module:
    """Build a model by released architecture name (``"FlowNet2-CSS"``) with builder keywords
    (``width=``, ``weights=``, …)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown FlowNet2 architecture {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name](**settings)
