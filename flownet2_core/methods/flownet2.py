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


# (method name, one-line description, architecture, file under $FLOWNET2_WEIGHTS)
_RELEASED_METHODS = (
    ("flownet2", "FlowNet 2.0: CSS + SD + fusion (needs weights)", "FlowNet2",
     "FlowNet2_checkpoint.pth.tar"),
    ("flownet2-c", "FlowNet2-C: FlowNetC alone (needs weights)", "FlowNet2-C",
     "FlowNet2-C_checkpoint.pth.tar"),
    ("flownet2-cs", "FlowNet2-CS: FlowNetC + FlowNetS (needs weights)", "FlowNet2-CS",
     "FlowNet2-CS_checkpoint.pth.tar"),
    ("flownet2-css", "FlowNet2-CSS: FlowNetC + 2x FlowNetS (needs weights)", "FlowNet2-CSS",
     "FlowNet2-CSS_checkpoint.pth.tar"),
    # The CSS network with other weights: fine-tuned on Things3D + ChairsSDHom.
    ("flownet2-css-ft-sd", "FlowNet2-CSS fine-tuned for small displacements (needs weights)",
     "FlowNet2-CSS", "FlowNet2-CSS-ft-sd_checkpoint.pth.tar"),
    ("flownet2-s", "FlowNet2-S: FlowNetS alone (needs weights)", "FlowNet2-S",
     "FlowNet2-S_checkpoint.pth.tar"),
    ("flownet2-sd", "FlowNet2-SD: small-displacement network alone (needs weights)", "FlowNet2-SD",
     "FlowNet2-SD_checkpoint.pth.tar"),
)

for _name, _description, _arch, _file in _RELEASED_METHODS:
    # One class per method, at module level so instances pickle (worker processes).
    _cls_name = "".join(part.capitalize() for part in _name.split("-")) + "Method"
    globals()[_cls_name] = register(_name, _description)(type(_cls_name, (FlowNet2Method,), {
        "name": _name, "description": _description, "arch": _arch, "released_file": _file,
        "__module__": __name__, "__qualname__": _cls_name,
        "__doc__": f"{_description.split(' (')[0]} (weights: {_file}).",
    }))
