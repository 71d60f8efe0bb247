"""The FlowNet2 family as flow methods.

* The PyTorch port's checkpoints: ``flownet2``, ``flownet2-c``, ``-cs``, ``-css``,
  ``-css-ft-sd``, ``-s``, ``-sd``, read from ``<Name>_checkpoint.pth.tar``.
  The file must hold the architecture the method names, at any width (so
  lowercase variants saved by :func:`flownet2_core.models.save_checkpoint`
  work too).
* Models only the original Caffe release has, converted with
  ``flownet2 weights convert`` (:mod:`flownet2_core.models.caffe`) and read
  from ``<Release>_converted.pth.tar``: the 3/8-width "lowercase" models as
  ``flownet2-c-thin``, ``-cs-thin``, ``-css-thin``, ``-css-ft-sd-thin``,
  ``-s-thin``, ``-ss-thin``, ``-sss-thin`` ("thin" because method names are
  lowercase, and ``flownet2-css`` is already the port's FlowNet2-CSS), and
  ``flownet2-kitti``, ``flownet2-sintel`` (FlowNet2 fine-tuned on KITTI /
  Sintel). The file must hold the architecture *and*
  width of that release (3/8 for the thin ones, 1 for KITTI / Sintel). A file
  converted with ``--caffe-conventions`` runs with them (the loader restores
  the conventions recorded in the file).

Weights are never downloaded and never random: pass ``weights=FILE`` (CLI:
``--weights FILE``) or set ``FLOWNET2_WEIGHTS`` to a directory holding the
files under the names above. Without either the constructor raises
``ValueError``; so does a file holding another network (one line naming the
file). Files are read safely (``weights_only``).

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


def resolve_weights(method: str, released_file: str, weights: str | os.PathLike | None,
                    how: str = "put the released file there under that name") -> str:
    """Path of the weights for ``method``: ``weights`` if given, else ``$FLOWNET2_WEIGHTS/<released_file>``.

    Raises ``ValueError`` with what to do when neither gives an existing file
    (``how`` says how to get ``released_file`` into the folder).
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
        raise ValueError(f"{method}: {WEIGHTS_ENV}={directory} has no {released_file}; {how} "
                         "or pass weights=FILE")
    return path


class FlowNet2Method(FlowMethod):
    """Base of the FlowNet2 flow methods; subclasses set the class attributes."""

    #: Architecture the weights must hold (a key of ``flownet2_core.models.BUILDERS``).
    arch: ClassVar[str] = ""
    #: File name under ``$FLOWNET2_WEIGHTS``.
    released_file: ClassVar[str] = ""
    #: Width the file must hold; ``None``: any width.
    width: ClassVar[float | None] = None
    #: Caffe release the file is converted from (``FlowNet2-css``); "" for the port's files.
    caffe_release: ClassVar[str] = ""

    def __init__(self, weights: str | os.PathLike | None = None, device=None, batch_size: int = 4,
                 size_policy: str = "resize", crop_fill: str = "nan", dtype: str | None = None,
                 autocast: str | None = None, channels_last: bool = False) -> None:
        # Imported here so that listing methods does not import torch.
        from ..inference import FlowNet2Inference
        from ..models.builders import display_name
        from ..models.checkpoint import model_from_checkpoint, read_checkpoint

        how = (f"convert {self.caffe_release}_weights.caffemodel[.h5] into it with "
               "`flownet2 weights convert`" if self.caffe_release else
               "put the released file there under that name")
        self.weights = resolve_weights(self.name, self.released_file, weights, how)
        ckpt = read_checkpoint(self.weights)
        model = model_from_checkpoint(ckpt, self.weights)
        wrong_width = self.width is not None and abs(model.width - self.width) > 1e-9
        if model.arch_name != self.arch or wrong_width:
            want = (f"{self.arch} weights" if self.width is None else
                    f"{display_name(self.arch, self.width)} weights (width {self.width:g})")
            raise ValueError(f"{self.weights}: this file is {display_name(model.arch_name, model.width)}; "
                             f"method {self.name} needs {want}")
        # Same network, other weights (FlowNet2-css vs -css-ft-sd, FlowNet2 vs -KITTI):
        # a converted file records its release, so a mix-up is caught here.
        meta = ckpt.get("flownet2") if isinstance(ckpt.get("flownet2"), dict) else {}
        source = meta.get("converted_from") if isinstance(meta.get("converted_from"), dict) else {}
        release = source.get("release")
        if self.caffe_release and release and release != self.caffe_release:
            raise ValueError(f"{self.weights}: this file was converted from {release}; method "
                             f"{self.name} needs {self.caffe_release}")
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


_CAFFE = "needs weights; Caffe release, convert with `flownet2 weights convert`"
_THIN = 3 / 8

# (method name, one-line description, architecture, file under $FLOWNET2_WEIGHTS,
#  width the file must hold (None: any), Caffe release name ("" for the port's files)).
# The Caffe rows follow flownet2_core.models.caffe.CAFFE_RELEASES (architecture and width)
# and converted_filename (file); tests/models/test_flownet2_methods.py checks they agree.
# This module stays free of torch imports so that listing methods is cheap.
_RELEASED_METHODS = (
    ("flownet2", "FlowNet 2.0: CSS + SD + fusion (needs weights)", "FlowNet2",
     "FlowNet2_checkpoint.pth.tar", None, ""),
    ("flownet2-c", "FlowNet2-C: FlowNetC alone (needs weights)", "FlowNet2-C",
     "FlowNet2-C_checkpoint.pth.tar", None, ""),
    ("flownet2-cs", "FlowNet2-CS: FlowNetC + FlowNetS (needs weights)", "FlowNet2-CS",
     "FlowNet2-CS_checkpoint.pth.tar", None, ""),
    ("flownet2-css", "FlowNet2-CSS: FlowNetC + 2x FlowNetS (needs weights)", "FlowNet2-CSS",
     "FlowNet2-CSS_checkpoint.pth.tar", None, ""),
    # The CSS network with other weights: fine-tuned on Things3D + ChairsSDHom.
    ("flownet2-css-ft-sd", "FlowNet2-CSS fine-tuned for small displacements (needs weights)",
     "FlowNet2-CSS", "FlowNet2-CSS-ft-sd_checkpoint.pth.tar", None, ""),
    ("flownet2-s", "FlowNet2-S: FlowNetS alone (needs weights)", "FlowNet2-S",
     "FlowNet2-S_checkpoint.pth.tar", None, ""),
    ("flownet2-sd", "FlowNet2-SD: small-displacement network alone (needs weights)", "FlowNet2-SD",
     "FlowNet2-SD_checkpoint.pth.tar", None, ""),
    # Only in the Caffe release: the paper's 3/8-width models and the fine-tuned FlowNet2.
    ("flownet2-c-thin", f"FlowNet2-c: FlowNetC at 3/8 width ({_CAFFE})", "FlowNet2-C",
     "FlowNet2-c_converted.pth.tar", _THIN, "FlowNet2-c"),
    ("flownet2-cs-thin", f"FlowNet2-cs: FlowNetC + FlowNetS at 3/8 width ({_CAFFE})", "FlowNet2-CS",
     "FlowNet2-cs_converted.pth.tar", _THIN, "FlowNet2-cs"),
    ("flownet2-css-thin", f"FlowNet2-css: FlowNetC + 2x FlowNetS at 3/8 width ({_CAFFE})",
     "FlowNet2-CSS", "FlowNet2-css_converted.pth.tar", _THIN, "FlowNet2-css"),
    ("flownet2-css-ft-sd-thin",
     f"FlowNet2-css-ft-sd: FlowNet2-css fine-tuned for small displacements ({_CAFFE})",
     "FlowNet2-CSS", "FlowNet2-css-ft-sd_converted.pth.tar", _THIN, "FlowNet2-css-ft-sd"),
    ("flownet2-s-thin", f"FlowNet2-s: FlowNetS at 3/8 width ({_CAFFE})", "FlowNet2-S",
     "FlowNet2-s_converted.pth.tar", _THIN, "FlowNet2-s"),
    ("flownet2-ss-thin", f"FlowNet2-ss: 2x FlowNetS at 3/8 width ({_CAFFE})", "FlowNet2-SS",
     "FlowNet2-ss_converted.pth.tar", _THIN, "FlowNet2-ss"),
    ("flownet2-sss-thin", f"FlowNet2-sss: 3x FlowNetS at 3/8 width ({_CAFFE})", "FlowNet2-SSS",
     "FlowNet2-sss_converted.pth.tar", _THIN, "FlowNet2-sss"),
    ("flownet2-kitti", f"FlowNet2 fine-tuned on KITTI ({_CAFFE})", "FlowNet2",
     "FlowNet2-KITTI_converted.pth.tar", 1.0, "FlowNet2-KITTI"),
    ("flownet2-sintel", f"FlowNet2 fine-tuned on Sintel ({_CAFFE})", "FlowNet2",
     "FlowNet2-Sintel_converted.pth.tar", 1.0, "FlowNet2-Sintel"),
)

for _name, _description, _arch, _file, _width, _release in _RELEASED_METHODS:
    # One class per method, at module level so instances pickle (worker processes).
    _cls_name = "".join(part.capitalize() for part in _name.split("-")) + "Method"
    globals()[_cls_name] = register(_name, _description)(type(_cls_name, (FlowNet2Method,), {
        "name": _name, "description": _description, "arch": _arch, "released_file": _file,
        "width": _width, "caffe_release": _release,
        "__module__": __name__, "__qualname__": _cls_name,
        "__doc__": f"{_description.split(' (')[0]} (weights: {_file}).",
    }))
