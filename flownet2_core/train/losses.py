"""Training losses: the multi-scale endpoint error of FlowNet and its robust
small-displacement variant.

Paper (SPEC §5): every prediction flow6 … flow2 is compared with the ground
truth scaled by 1/20 and average-pooled to that prediction's resolution, with
weights flow6 0.32, flow5 0.08, flow4 0.02, flow3 0.01, flow2 0.005. The loss
here is computed in those units (pixels / 20) whatever unit a sub-network's
train-mode output is in: it asks the model (``train_flow_scale``, pixels per
output unit: 1/20 for FlowNetC/S, 20 for FlowNetSD, 1 for the fusion net), so a
caller cannot mix them up.

Invalid pixels (occluded in synthetic data, no measurement in KITTI) take no
part: the ground truth is pooled over the valid pixels of each window, and a
coarse pixel counts when any of its window is valid. Each scale's error is
summed over each sample's valid pixels (not averaged: with the paper's weights
a mean would leave the finest scale 1/64 of the coarsest's weight, and the
test-time output would barely train), then averaged over the samples, so a
batch split over processes gives the same loss and gradients.

Convention: predictions are a sequence finest first, each (B, 2, h_s, w_s);
``flow`` (B, 2, H, W) in pixels, ``valid`` (B, 1, H, W) bool; H / h_s is each
prediction's stride (an integer).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FUSION_WEIGHTS", "PAPER_WEIGHTS", "MultiScaleEPE", "pool_flow"]

#: flow2 … flow6 (finest first): the paper's weights.
PAPER_WEIGHTS = (0.005, 0.01, 0.02, 0.08, 0.32)
#: flow0, flow1, flow2 of FlowNetFusion. Not given in the SPEC's sources; our
#: choice continues the paper's pattern (halving towards the finer scales).
FUSION_WEIGHTS = (0.005, 0.01, 0.02)
#: Unit the loss is computed in, pixels per unit (ground truth / 20, SPEC §5).
LOSS_UNIT = 20.0


def pool_flow(flow: Tensor, valid: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Average ``flow`` over the valid pixels of each ``stride`` × ``stride`` window.

    Returns (B, 2, H/stride, W/stride) flow and a bool mask of windows holding
    any valid pixel (their flow is 0).
    """
    if stride == 1:
        return flow * valid, valid
    v = valid.to(flow.dtype)
    fsum = F.avg_pool2d(flow * v, stride)
    vfrac = F.avg_pool2d(v, stride)
    has = vfrac > 0
    return torch.where(has, fsum / vfrac.clamp_min(1e-12), torch.zeros_like(fsum)), has


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel, DataParallel


class MultiScaleEPE(nn.Module):
    """Weighted sum over scales of the (robust) endpoint error summed over pixels, in pixels / 20.

    ``loss(outputs, flow, valid, model=model)``: ``outputs`` is the model's
    train-mode output (finest first); ``model`` tells their unit. ``weights``
    default to :data:`PAPER_WEIGHTS` for five outputs and :data:`FUSION_WEIGHTS`
    for three. With ``robust=True`` each pixel's error e becomes (e + ε)^q
    (q = 0.4, ε = 0.01): the loss of FlowNet2-CSS-ft-sd, which weighs small
    errors more so that small displacements are learned (paper §5).

    ``last_terms`` holds the unweighted per-scale losses of the last call, for logs.

    Example::

        loss = MultiScaleEPE()(model(img1, img2), flow, valid, model=model)
    """

    def __init__(self, weights: Sequence[float] | None = None, robust: bool = False,
                 q: float = 0.4, eps: float = 0.01) -> None:
        super().__init__()
        if weights is not None and (len(weights) == 0 or any(w < 0 for w in weights)):
            raise ValueError(f"weights must be a non-empty sequence of non-negative numbers, got {weights}")
        self.weights = tuple(weights) if weights is not None else None
        self.robust, self.q, self.eps = bool(robust), float(q), float(eps)
        self.last_terms: tuple[float, ...] = ()

    def forward(self, outputs: Sequence[Tensor] | Tensor, flow: Tensor, valid: Tensor | None = None,
                *, model: nn.Module) -> Tensor:
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        scale = getattr(_unwrap(model), "train_flow_scale", None)
        if scale is None:
            raise ValueError(f"{type(_unwrap(model)).__name__} does not state the unit of its "
                             "training outputs (train_flow_scale)")
        weights = self.weights
        if weights is None:
            weights = {5: PAPER_WEIGHTS, 3: FUSION_WEIGHTS}.get(len(outputs))
            if weights is None:
                raise ValueError(f"no default weights for {len(outputs)} outputs; pass weights=")
        if len(weights) != len(outputs):
            raise ValueError(f"{len(weights)} weights for {len(outputs)} outputs")
        if flow.dim() != 4 or flow.shape[1] != 2:
            raise ValueError(f"flow must be (B, 2, H, W), got {tuple(flow.shape)}")
        if valid is None:
            valid = torch.ones_like(flow[:, :1], dtype=torch.bool)
        target = flow.float() / LOSS_UNIT
        total = flow.new_zeros((), dtype=torch.float32)
        terms = []
        for out, w in zip(outputs, weights):
            h, wd = out.shape[-2:]
            stride = flow.shape[-2] // h
            if stride * h != flow.shape[-2] or stride * wd != flow.shape[-1]:
                raise ValueError(f"prediction {tuple(out.shape[-2:])} is not an integer "
                                 f"downscale of the ground truth {tuple(flow.shape[-2:])}")
            gt, has = pool_flow(target, valid, stride)
            pred = out.float() * (scale / LOSS_UNIT)
            d = pred - gt
            # sqrt(… + tiny): the gradient of the norm stays finite where the error is 0
            e = torch.sqrt((d * d).sum(1, keepdim=True) + 1e-16)
            if self.robust:
                e = (e + self.eps) ** self.q
            # Summed over each sample's valid pixels (as Caffe's FlowNet loss layers and
            # PWC-Net's restatement of it: L = Σ_s α_s Σ_x |e_s(x)|), then averaged over
            # the samples, so a batch split over processes (DDP averages gradients)
            # gives the same loss. The sum makes α_s × (pixels at scale s) the weight
            # of a scale: the 4× smaller α per finer scale balances its 4× more pixels,
            # and the finest prediction, the one used at test time, counts most.
            term = (e * has).sum((1, 2, 3)).mean()
            terms.append(term)
            total = total + w * term
        self.last_terms = tuple(float(t.detach()) for t in terms)
        return total
