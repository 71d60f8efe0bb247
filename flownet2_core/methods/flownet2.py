"""The FlowNet2 family as flow methods: one per entry of the weights registry with a ``method``.

Which methods exist, which file each reads and which network it holds is data in
:mod:`flownet2_core.weights` (this module adds no table of its own):

* the PyTorch port's checkpoints: ``flownet2``, ``flownet2-c``, ``-cs``, ``-css``,
  ``-css-ft-sd``, ``-s``, ``-sd`` (``<Name>_checkpoint.pth.tar``). The file must hold
  the architecture the method names, at any width (so lowercase variants saved by
  :func:`flownet2_core.models.save_checkpoint` work too);
* models only the original Caffe release has, converted with ``flownet2 weights convert``
  (``<Release>_converted.pth.tar``): ``flownet2-c-thin``, ``-cs-thin``, ``-css-thin``,
  ``-css-ft-sd-thin``, ``-s-thin``, ``-ss-thin``, ``-sss-thin`` (3/8 width) and
  ``flownet2-kitti``, ``flownet2-sintel``. The file must hold the architecture *and*
  width of that release, and a file recording another release of the same network
  is refused. A file converted with ``--caffe-conventions`` runs with them;
* weights trained in this repository that ship inside the package
  (``flownet2-sss-synth``): found in the package, no ``weights=`` and no environment
  variable needed.

Weights are never downloaded and never random: the default file is looked for under
``FLOWNET2_WEIGHTS`` (or in the package, for weights trained here); ``weights=FILE``
(CLI: ``--weights FILE``) overrides it. Without a file the constructor raises
``ValueError`` with one line saying what to do, and :func:`flownet2_core.methods.unavailable_methods`
lists the method with that reason; so does a file holding another network (one line
naming the file). Files are read safely (``weights_only``).

Options (constructor keywords): ``weights``, ``device`` (``None`` = CUDA if
available), ``batch_size`` (pairs per forward pass in :meth:`batch`; ``None``: by memory),
``size_policy`` (``"resize"`` default, or ``"crop"``; see
:mod:`flownet2_core.inference`), ``crop_fill``, ``dtype`` (``"float32"`` /
``"float64"``), ``precision`` (``"fp32"`` default, ``"bf16"`` on CPU and CUDA,
``"fp16"`` on CUDA; autocast with the flow heads in float32), ``channels_last``,
``min_size`` (enlarge small images to this shorter side first; see
:class:`flownet2_core.inference.FlowNet2Inference`; ``None``, the default: the weights
entry's, 384 for the model trained here on 512×384 scenes, 0 for the released ones),
``zoom`` (run the network at this factor times the image's size, ``min_size`` staying a
floor) and ``ensemble`` (1, 2 or 4 forward passes per pair on mirrored copies, averaged);
``None``, their default: the weights entry's (1.25 and 2 for the model trained here, 1 and
1 for the released ones).
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from ..weights import Weights, list_weights
from .base import FlowMethod, check_batch
from .registry import register

__all__ = ["FlowNet2Method"]

_ORIGIN_NOTE = {
    "nvidia-port": "NVIDIA port's weights",
    "caffe-release": "Caffe release, convert with `flownet2 weights convert`",
    "trained-here": "ships in the package",
}


class FlowNet2Method(FlowMethod):
    """Base of the FlowNet2 flow methods; each subclass sets :attr:`weights_entry`."""

    #: The registry entry whose weights the method runs.
    weights_entry: ClassVar[Weights]
    #: The crop policy's border is NaN by design; the runner checks what the network computed.
    nan_is_unknown = True
    #: Architecture the weights must hold (``weights_entry.arch``; a key of ``flownet2_core.models.BUILDERS``).
    arch: ClassVar[str] = ""

    def __init__(self, weights: str | os.PathLike | None = None, device=None, batch_size: int | None = None,
                 size_policy: str = "resize", crop_fill: str = "nan", dtype: str | None = None,
                 precision: str = "fp32", channels_last: bool | None = None, min_size: int | None = None,
                 zoom: float | None = None, ensemble: int | None = None) -> None:
        # Imported here so that listing methods does not import torch.
        from ..inference import FlowNet2Inference
        from ..models.checkpoint import load_weights

        entry = self.weights_entry
        self.weights = entry.locate(weights, who=self.name)
        model = load_weights(entry, path=self.weights, who=f"method {self.name}")
        self.runner = FlowNet2Inference(model, device=device, batch_size=batch_size,
                                        size_policy=size_policy, crop_fill=crop_fill,
                                        precision=precision, dtype=dtype, channels_last=channels_last,
                                        name=self.name,
                                        min_size=_default_min_size(entry, size_policy) if min_size is None else min_size,
                                        zoom=_default_zoom(entry, size_policy) if zoom is None else zoom,
                                        ensemble=entry.ensemble if ensemble is None else ensemble)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when the default weights file is there, else one line saying why not."""
        return cls.weights_entry.unavailable_reason()

    def compute(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB ×2 → (H, W, 2) float32 flow in pixels."""
        return self.runner(img1, img2)

    def batch(self, imgs1: np.ndarray, imgs2: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB ×2 → (N, H, W, 2) float32, ``batch_size`` pairs per pass."""
        check_batch(imgs1, imgs2)
        return self.runner(imgs1, imgs2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r})"


def _default_min_size(entry: Weights, size_policy: str) -> int:
    """The entry's ``min_size`` where it applies: a crop cannot enlarge, so none there."""
    return entry.min_size if size_policy == "resize" else 0


def _default_zoom(entry: Weights, size_policy: str) -> float:
    """The entry's ``zoom`` where it applies: a crop runs at the image's own scale."""
    return entry.zoom if size_policy == "resize" else 1.0


def _register(entry: Weights) -> type[FlowNet2Method]:
    # One class per method, at module level so instances pickle (worker processes).
    cls_name = "".join(part.capitalize() for part in entry.method.split("-")) + "Method"
    description = f"{entry.summary} ({_ORIGIN_NOTE[entry.origin]})"
    cls = type(cls_name, (FlowNet2Method,), {
        "name": entry.method, "description": description, "weights_entry": entry, "arch": entry.arch,
        "__module__": __name__, "__qualname__": cls_name,
        "__doc__": f"{entry.summary} (weights: {entry.name}, {entry.location}).",
    })
    return register(entry.method, description)(cls)


for _entry in list_weights(with_method=True):
    _cls = _register(_entry)
    globals()[_cls.__name__] = _cls
