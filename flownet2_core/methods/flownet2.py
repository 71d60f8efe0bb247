"""The FlowNet2 family as flow methods: ``flownet2``, ``flownet2-c``, ``-cs``, ``-css``,
``-css-ft-sd``, ``-s``, ``-sd``.

Weights are never downloaded and never random: pass ``weights=FILE`` (CLI:
``--weights FILE``) or set ``FLOWNET2_WEIGHTS`` to a directory holding the
released files under their released names (``FlowNet2_checkpoint.pth.tar``,
``FlowNet2-C_checkpoint.pth.tar``, …). Without either the constructor raises
``ValueError``. Files are read safely (``weights_only``) and must hold the
architecture the method names (any width, so lowercase variants saved by
:func:`flownet2_core.models.save_checkpoint` work too).

Options (constructor keywords): ``weights``, ``device`` (``None`` = CUDA if
available), ``batch_size`` (pairs per forward pass in :meth:`batch`),
``size_policy`` (``"resize"`` default, or ``"crop"``; see
:mod:`flownet2_core.inference`), ``crop_fill``, ``dtype`` (``"float32"`` /
``"float64"``), ``autocast`` (``"float16"`` / ``"bfloat16"``, CUDA only),
``channels_last``.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from .base import FlowMethod, check_batch
from .registry import register

__all__ = ["FlowNet2Method", "WEIGHTS_ENV", "resolve_weights"]

WEIGHTS_ENV = "FLOWNET2_WEIGHTS"


def resolve_weights(method: str, released_file: str, weights: str | os.PathLike | None) -> str:
    """Path of the weights for ``method``: ``weights`` if given, else ``$FLOWNET2_WEIGHTS/<released_file>``.

    Raises ``ValueError`` with what to do when neither gives an existing file.
    """
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(f"{method}: weights file not found: {path}")
        return path
    directory = os.environ.get(WEIGHTS_ENV)
    if not directory:
        raise ValueError(f"{method} needs pretrained weights and none were given: pass "
                         f"weights=FILE (CLI: --weights FILE) or set {WEIGHTS_ENV} to a directory "
                         f"holding {released_file}. Weights are not downloaded automatically, and "
                         "a randomly initialised network is never used.")
    path = os.path.join(directory, released_file)
    if not os.path.isfile(path):
        raise ValueError(f"{method}: {WEIGHTS_ENV}={directory} has no {released_file}; put the "
                         "released file there under that name or pass weights=FILE")
    return path


class FlowNet2Method(FlowMethod):
    """Base of the FlowNet2 flow methods; subclasses set the class attributes."""

    #: Architecture the weights must hold (a key of ``flownet2_core.models.BUILDERS``).
    arch: ClassVar[str] = ""
    #: File name under ``$FLOWNET2_WEIGHTS``.
    released_file: ClassVar[str] = ""

    def __init__(self, weights: str | os.PathLike | None = None, device=None, batch_size: int = 4,
                 size_policy: str = "resize", crop_fill: str = "nan", dtype: str | None = None,
                 autocast: str | None = None, channels_last: bool = False) -> None:
        # Imported here so that listing methods does not import torch.
        from ..inference import FlowNet2Inference
        from ..models.builders import display_name
        from ..models.checkpoint import load_checkpoint

        self.weights = resolve_weights(self.name, self.released_file, weights)
        model = load_checkpoint(self.weights)
        if model.arch_name != self.arch:
            raise ValueError(f"{self.weights}: this file is {display_name(model.arch_name, model.width)}; "
                             f"method {self.name} needs {self.arch} weights")
        self.runner = FlowNet2Inference(model, device=device, batch_size=batch_size,
                                        size_policy=size_policy, crop_fill=crop_fill,
                                        autocast=autocast, dtype=dtype, channels_last=channels_last)

    def compute(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB ×2 → (H, W, 2) float32 flow in pixels."""
        return self.runner(img1, img2)

    def batch(self, imgs1: np.ndarray, imgs2: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB ×2 → (N, H, W, 2) float32, ``batch_size`` pairs per pass."""
        check_batch(imgs1, imgs2)
        return self.runner(imgs1, imgs2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r})"


@register("flownet2", "FlowNet 2.0: CSS + SD + fusion (needs weights)")
class FlowNet2Full(FlowNet2Method):
    """FlowNet 2.0, the full stack (weights: FlowNet2_checkpoint.pth.tar)."""

    name = "flownet2"
    description = "FlowNet 2.0: CSS + SD + fusion (needs weights)"
    arch = "FlowNet2"
    released_file = "FlowNet2_checkpoint.pth.tar"


@register("flownet2-c", "FlowNet2-C: FlowNetC alone (needs weights)")
class FlowNet2CMethod(FlowNet2Method):
    """FlowNet2-C (weights: FlowNet2-C_checkpoint.pth.tar)."""

    name = "flownet2-c"
    description = "FlowNet2-C: FlowNetC alone (needs weights)"
    arch = "FlowNet2-C"
    released_file = "FlowNet2-C_checkpoint.pth.tar"


@register("flownet2-cs", "FlowNet2-CS: FlowNetC + FlowNetS (needs weights)")
class FlowNet2CSMethod(FlowNet2Method):
    """FlowNet2-CS (weights: FlowNet2-CS_checkpoint.pth.tar)."""

    name = "flownet2-cs"
    description = "FlowNet2-CS: FlowNetC + FlowNetS (needs weights)"
    arch = "FlowNet2-CS"
    released_file = "FlowNet2-CS_checkpoint.pth.tar"


@register("flownet2-css", "FlowNet2-CSS: FlowNetC + 2x FlowNetS (needs weights)")
class FlowNet2CSSMethod(FlowNet2Method):
    """FlowNet2-CSS (weights: FlowNet2-CSS_checkpoint.pth.tar)."""

    name = "flownet2-css"
    description = "FlowNet2-CSS: FlowNetC + 2x FlowNetS (needs weights)"
    arch = "FlowNet2-CSS"
    released_file = "FlowNet2-CSS_checkpoint.pth.tar"


@register("flownet2-css-ft-sd", "FlowNet2-CSS fine-tuned for small displacements (needs weights)")
class FlowNet2CSSftSDMethod(FlowNet2Method):
    """FlowNet2-CSS-ft-sd: the CSS network with other weights (FlowNet2-CSS-ft-sd_checkpoint.pth.tar)."""

    name = "flownet2-css-ft-sd"
    description = "FlowNet2-CSS fine-tuned for small displacements (needs weights)"
    arch = "FlowNet2-CSS"
    released_file = "FlowNet2-CSS-ft-sd_checkpoint.pth.tar"


@register("flownet2-s", "FlowNet2-S: FlowNetS alone (needs weights)")
class FlowNet2SMethod(FlowNet2Method):
    """FlowNet2-S (weights: FlowNet2-S_checkpoint.pth.tar)."""

    name = "flownet2-s"
    description = "FlowNet2-S: FlowNetS alone (needs weights)"
    arch = "FlowNet2-S"
    released_file = "FlowNet2-S_checkpoint.pth.tar"


@register("flownet2-sd", "FlowNet2-SD: small-displacement network alone (needs weights)")
class FlowNet2SDMethod(FlowNet2Method):
    """FlowNet2-SD (weights: FlowNet2-SD_checkpoint.pth.tar)."""

    name = "flownet2-sd"
    description = "FlowNet2-SD: small-displacement network alone (needs weights)"
    arch = "FlowNet2-SD"
    released_file = "FlowNet2-SD_checkpoint.pth.tar"
