"""torchvision's RAFT (Teed & Deng 2020) as flow methods: ``raft-large`` and ``raft-small``.

RAFT is here to put FlowNet2 beside a modern method on the same images. The networks are
torchvision's (``torchvision.models.optical_flow.raft_large`` / ``raft_small``, built with
``weights=None``); the weights are torchvision's released files, read from a path on this
machine. Nothing is ever downloaded: torchvision's ``Weights`` enums (which fetch their
file) are not used.

Weights (:data:`RAFT_WEIGHTS`; the files torchvision downloads for these enum members):

* ``raft-large``: ``Raft_Large_Weights.C_T_SKHT_V2``, trained from scratch on
  FlyingChairs + FlyingThings3D, fine-tuned on Sintel + KITTI + HD1K + Things (clean):
  https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth
* ``raft-small``: ``Raft_Small_Weights.C_T_V2``, trained from scratch on
  FlyingChairs + FlyingThings3D:
  https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth

Get the file yourself (a browser, ``curl -O URL``; if torchvision already downloaded it,
it is in ``~/.cache/torch/hub/checkpoints/``). It is read from ``weights=FILE`` (CLI:
``--weights FILE``), else from ``$FLOWNET2_WEIGHTS/<file name above>``, the folder the
FlowNet2 methods read their files from. Without a file the constructor raises
``ValueError`` with one line saying what to do, and
:func:`flownet2_core.methods.unavailable_methods` lists the method with that reason; a
file that is unreadable, unsafe or holds another network is one ``ValueError`` line
naming the file. Files are read with ``torch.load(weights_only=True)`` and loaded with
``load_state_dict(strict=True)``.

Preprocessing is torchvision's (``Raft_Large_Weights.C_T_SKHT_V2.transforms()``): uint8
RGB → float in [0, 1] → normalised to [-1, 1]. RAFT needs H and W divisible by 8: images
are padded by edge replication to the next multiples of 8, split evenly between the two
sides (the "sintel" mode of RAFT's and torchvision's evaluation ``InputPadder``), and the
flow is cropped back, so any size works. Images under 128 pixels in either direction
are padded up to 128 the same way (:data:`MIN_SIZE`: torchvision's RAFT refuses smaller
inputs, and its weights are documented for at least 128×128); the flow of such small
images is an estimate from mostly replicated borders, so expect it to be poorer.

Options (constructor keywords): ``weights``, ``device`` (``None`` = CUDA if available),
``batch_size`` (pairs per forward pass in :meth:`batch`), ``num_flow_updates``
(recurrent refinement steps, default 12 as torchvision's ``RAFT.forward``; the output is
the last step's flow).

Convention: the output follows the package's, (H, W, 2) float32 in pixels, u right,
v down, from ``img1`` to ``img2``, which is also torchvision's RAFT convention.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

import numpy as np

from ..weights import WEIGHTS_ENV, locate_file
from .base import FlowMethod, check_batch, check_finite
from .registry import register

__all__ = ["RAFT_WEIGHTS", "RaftLarge", "RaftMethod", "RaftSmall", "RaftWeights", "load_raft", "pad_to_multiple",
           "preprocess", "read_state_dict"]

#: RAFT's feature maps are 1/8 of the image: H and W must be multiples of this.
MULTIPLE = 8
#: The smallest H and W torchvision's RAFT runs on: its 4-level correlation pyramid halves
#: the 1/8 feature maps three times and refuses maps under 16 (``CorrBlock.build_pyramid``).
MIN_SIZE = 128


@dataclasses.dataclass(frozen=True)
class RaftWeights:
    """One torchvision RAFT weights file, as data (no torch import).

    Attributes:
        method: the flow method built on it.
        builder: the ``torchvision.models.optical_flow`` function building the network.
        enum: the torchvision ``Weights`` member the file belongs to (for reference only).
        file: torchvision's file name, the default name under ``$FLOWNET2_WEIGHTS``.
        url: where torchvision downloads it from (this toolkit never does).
        training_data: datasets, in words.
        metrics: ``{name: {"value": float, "source": str}}`` as torchvision's docs state them.
    """

    method: str
    builder: str
    enum: str
    file: str
    url: str
    training_data: str
    metrics: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def location(self) -> str:
        """Where the default file is looked for, in words."""
        return f"${WEIGHTS_ENV}/{self.file}"

    def _find(self) -> tuple[str | None, str]:
        """``(path, "")`` when the default file exists, else ``(None, why not)`` in one line."""
        get = f"download {self.url} yourself"
        directory = os.environ.get(WEIGHTS_ENV)
        if not directory:
            return None, (f"{WEIGHTS_ENV} is not set; set it to a directory holding {self.file} "
                          f"({get}) or pass weights=FILE (CLI: --weights FILE)")
        path = os.path.join(directory, self.file)
        if os.path.isfile(path):
            return path, ""
        return None, f"{WEIGHTS_ENV}={directory} has no {self.file}; {get} into it or pass weights=FILE"

    def locate(self, weights: str | os.PathLike | None = None) -> str:
        """Path of the file to read: ``weights`` if given (it must exist), else the default file.

        Raises ``ValueError`` with one line starting with the method name.
        """
        return locate_file(self.method, weights, self._find)

    def unavailable_reason(self) -> str | None:
        """``None`` when the default file is there, else one line saying why not (for listings)."""
        path, why = self._find()
        return None if path else why


_TV = "torchvision docs"

#: The weights each RAFT method runs, by method name.
RAFT_WEIGHTS: dict[str, RaftWeights] = {w.method: w for w in (
    RaftWeights(
        method="raft-large", builder="raft_large", enum="Raft_Large_Weights.C_T_SKHT_V2",
        file="raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        training_data="FlyingChairs + FlyingThings3D, fine-tuned on Sintel + KITTI + HD1K + Things (clean)",
        metrics={"Sintel test clean EPE": {"value": 1.819, "source": _TV},
                 "Sintel test final EPE": {"value": 3.067, "source": _TV}}),
    RaftWeights(
        method="raft-small", builder="raft_small", enum="Raft_Small_Weights.C_T_V2",
        file="raft_small_C_T_V2-01064c6d.pth",
        url="https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
        training_data="FlyingChairs + FlyingThings3D",
        metrics={"Sintel clean EPE": {"value": 1.9901, "source": _TV},
                 "Sintel final EPE": {"value": 3.2831, "source": _TV},
                 "KITTI 2015 EPE (per image)": {"value": 7.5978, "source": _TV},
                 "KITTI 2015 Fl-all %": {"value": 25.2369, "source": _TV}}),
)}


def pad_to_multiple(x, multiple: int = MULTIPLE, min_size: int = MIN_SIZE):
    """(N, C, H, W) tensor → (padded tensor, (top, bottom, left, right)).

    Edge-replicates to the next multiples of ``multiple``, at least ``min_size``, split
    evenly between the two sides (the odd pixel goes to the bottom / right), as RAFT's
    ``InputPadder`` in its "sintel" mode. ``x[..., top:top + H, left:left + W]`` of the
    result is ``x`` again.
    """
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph = max(-h % multiple, min_size - h)
    pw = max(-w % multiple, min_size - w)
    pads = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
    if ph or pw:
        x = F.pad(x, (pads[2], pads[3], pads[0], pads[1]), mode="replicate")
    return x, pads


def preprocess(imgs):
    """(N, 3, H, W) uint8 tensor → float in [-1, 1], as torchvision's ``OpticalFlow`` transform.

    ``convert_image_dtype`` to float ([0, 1]) then ``normalize(mean=0.5, std=0.5)``.
    """
    import torch
    from torchvision.transforms import functional as TF

    imgs = TF.convert_image_dtype(imgs, torch.float)
    return TF.normalize(imgs, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]).contiguous()


def read_state_dict(path: str, who: str) -> dict:
    """The state dict in ``path``, read safely (``weights_only=True``, on the CPU).

    Raises ``ValueError`` (one line naming the file) for damaged bytes, objects outside
    the weights-only allowlist (nothing in the file is executed), or anything but a
    dict of tensors.
    """
    import torch

    from ..models.checkpoint import load_weights_only

    obj = load_weights_only(path, who=who)
    if not isinstance(obj, dict):
        raise ValueError(f"{who}: {path} holds a {type(obj).__name__}, not a state dict (a dict of "
                         "tensors, as torchvision's weights files are)")
    other = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if other is not None:
        raise ValueError(f"{who}: {path} is not a bare state dict as torchvision's weights files are: "
                         f"entry {other!r} is not a tensor (another model's checkpoint?)")
    return obj


def load_raft(spec: RaftWeights, path: str):
    """torchvision's network for ``spec`` holding the state dict in ``path`` (train mode).

    The keys and shapes are compared first, so a file of another network (RAFT-small for
    RAFT-large, a FlowNet2 checkpoint) is one line naming the file; then
    ``load_state_dict(strict=True)``.
    """
    from torchvision.models import optical_flow

    who = spec.method
    state = read_state_dict(path, who)
    model = getattr(optical_flow, spec.builder)(weights=None)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]})" if wrong else ""]
        raise ValueError(f"{who}: {path} does not hold torchvision's {spec.builder} weights; its entries: "
                         + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=True)
    return model


class RaftMethod(FlowMethod):
    """Base of the RAFT flow methods; each subclass sets :attr:`spec`.

    Args:
        weights: the torchvision weights file; ``None``: ``$FLOWNET2_WEIGHTS/<spec.file>``.
        device: ``None`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        batch_size: pairs per forward pass in :meth:`batch`.
        num_flow_updates: RAFT's recurrent refinement steps (torchvision's default, 12).
    """

    #: The weights the method runs.
    spec: ClassVar[RaftWeights]

    def __init__(self, weights: str | os.PathLike | None = None, device=None, batch_size: int = 4,
                 num_flow_updates: int = 12) -> None:
        # Imported here so that listing methods does not import torch.
        from ..inference import resolve_device

        for key, value in (("batch_size", batch_size), ("num_flow_updates", num_flow_updates)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        self.batch_size = int(batch_size)
        self.num_flow_updates = int(num_flow_updates)
        self.device = resolve_device(device)
        self.weights = self.spec.locate(weights)
        self.model = load_raft(self.spec, self.weights).to(self.device).eval()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when the default weights file is there, else one line saying why not."""
        return cls.spec.unavailable_reason()

    def predict(self, imgs1, imgs2):
        """(N, 3, H, W) uint8 tensors ×2, any H, W → (N, 2, H, W) float32 flow on the CPU."""
        import torch

        h, w = imgs1.shape[-2:]
        outs = []
        with torch.inference_mode():
            for start in range(0, imgs1.shape[0], self.batch_size):
                a = preprocess(imgs1[start:start + self.batch_size].to(self.device))
                b = preprocess(imgs2[start:start + self.batch_size].to(self.device))
                a, (top, _, left, _) = pad_to_multiple(a)
                b, _ = pad_to_multiple(b)
                try:
                    flow = self.model(a, b, num_flow_updates=self.num_flow_updates)[-1]
                finally:
                    # torchvision's CorrBlock keeps the last correlation pyramid as an attribute
                    # (~200 MB for a 1024×436 pair): drop it so it neither stays on the device
                    # between calls nor travels with the method to worker processes.
                    if hasattr(self.model.corr_block, "corr_pyramid"):
                        self.model.corr_block.corr_pyramid = []
                outs.append(flow[..., top:top + h, left:left + w].float().cpu())
        return torch.cat(outs)

    def _run(self, imgs1: np.ndarray, imgs2: np.ndarray) -> np.ndarray:
        import torch

        def tensor(x: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)

        flow = self.predict(tensor(imgs1), tensor(imgs2))
        return np.ascontiguousarray(flow.permute(0, 2, 3, 1).numpy(), dtype=np.float32)

    def compute(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB ×2 → (H, W, 2) float32 flow in pixels."""
        return self._run(img1[None], img2[None])[0]

    def batch(self, imgs1: np.ndarray, imgs2: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB ×2 → (N, H, W, 2) float32, ``batch_size`` pairs per pass."""
        check_batch(imgs1, imgs2)
        if imgs1.shape[0] == 0:
            return np.zeros(imgs1.shape[:3] + (2,), np.float32)
        return check_finite(self._run(imgs1, imgs2), self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r})"


def _description(spec: RaftWeights, size: str) -> str:
    return f"RAFT-{size}, Teed & Deng 2020 (torchvision's {spec.enum.split('.')[-1]} weights)"


@register("raft-large", _description(RAFT_WEIGHTS["raft-large"], "large"))
class RaftLarge(RaftMethod):
    """RAFT-large, torchvision's ``raft_large`` with ``Raft_Large_Weights.C_T_SKHT_V2``
    (file ``raft_large_C_T_SKHT_V2-ff5fadd5.pth``, from
    https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth; read from
    ``weights=`` or ``$FLOWNET2_WEIGHTS``, never downloaded)."""

    name = "raft-large"
    spec = RAFT_WEIGHTS["raft-large"]
    description = _description(spec, "large")


@register("raft-small", _description(RAFT_WEIGHTS["raft-small"], "small"))
class RaftSmall(RaftMethod):
    """RAFT-small, torchvision's ``raft_small`` with ``Raft_Small_Weights.C_T_V2``
    (file ``raft_small_C_T_V2-01064c6d.pth``, from
    https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth; read from
    ``weights=`` or ``$FLOWNET2_WEIGHTS``, never downloaded)."""

    name = "raft-small"
    spec = RAFT_WEIGHTS["raft-small"]
    description = _description(spec, "small")
