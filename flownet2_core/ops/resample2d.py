"""Resample2d: warp an image by a dense flow field with bilinear sampling.

The public :func:`resample2d` routes through :data:`_IMPL` (the dispatch point
for the compiled kernels, see ``_compiled.py``); :func:`_resample2d_twin` (public name
:data:`resample2d_twin`) is the pure-PyTorch reference and fallback. It samples with ``grid_sample``,
except on a GPU under ``torch.use_deterministic_algorithms(True)``: there
``grid_sample``'s backward (atomic adds) refuses to run, and the twin uses
:func:`_resample2d_gather`, the same sampling written as gathers of the four
neighbours, whose backward (``scatter_add``) PyTorch makes deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PADDING_MODES", "Resample2d", "resample2d", "resample2d_twin"]

PADDING_MODES = ("border", "zeros")


def _check(img: Tensor, flow: Tensor, padding_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"resample2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    for name, t in (("img", img), ("flow", flow)):
        if not isinstance(t, Tensor):
            raise ValueError(f"resample2d: {name} must be a tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"resample2d: {name} must be 4-D, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"resample2d: {name} must be floating point, got {t.dtype}")
    if flow.shape[1] != 2:
        raise ValueError(f"resample2d: flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    if img.shape[0] != flow.shape[0] or img.shape[2:] != flow.shape[2:]:
        raise ValueError(f"resample2d: img {tuple(img.shape)} and flow {tuple(flow.shape)} "
                         "differ in batch size or H×W")
    if img.device != flow.device:
        raise ValueError(f"resample2d: img on {img.device}, flow on {flow.device}")


def _positions(img: Tensor, flow: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``img`` in the common dtype and the sampling positions x + u, y + v, each (B, H, W)."""
    h, w = img.shape[-2:]
    dtype = torch.promote_types(img.dtype, flow.dtype)
    flow = flow.to(dtype)
    ys = torch.arange(h, device=flow.device, dtype=dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=dtype).view(1, 1, w)
    return img.to(dtype), xs + flow[:, 0], ys + flow[:, 1]


def _resample2d_twin(img: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """Pure-PyTorch warp via ``grid_sample``; reference for compiled kernels. See :func:`resample2d`.

    On a non-CPU device under ``torch.use_deterministic_algorithms(True)`` it
    computes the same samples with :func:`_resample2d_gather` (deterministic
    backward) instead.
    """
    _check(img, flow, padding_mode)
    if img.device.type != "cpu" and torch.are_deterministic_algorithms_enabled():
        return _resample2d_gather(img, flow, padding_mode)
    _, _, h, w = img.shape
    img, px, py = _positions(img, flow)
    # Normalise for align_corners=False: pixel p ↔ (2p + 1) / size − 1. This
    # samples exactly like align_corners=True with p ↔ 2p / (size − 1) − 1
    # (same clamp to [0, size − 1] for "border", same zero neighbours for
    # "zeros") but stays defined for a size of 1.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _resample2d_gather(img: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """:func:`_resample2d_twin`'s samples as four gathers; deterministic backward on any device.

    The gradient of a gather is a ``scatter_add``, which PyTorch runs
    deterministically under ``torch.use_deterministic_algorithms(True)``
    (``grid_sample``'s CUDA backward refuses to). Same rules as the compiled
    kernels: "border" clamps the position (and passes no gradient to the flow
    where it clamped), "zeros" counts neighbours outside the image as 0, a NaN
    position samples nothing.
    """
    _check(img, flow, padding_mode)
    bsz, chans, h, w = img.shape
    img, px, py = _positions(img, flow)
    dtype = img.dtype
    nan = px.isnan() | py.isnan()
    px = torch.where(nan, 0, px)
    py = torch.where(nan, 0, py)
    if padding_mode == "border":
        px = px.clamp(0, w - 1)
        py = py.clamp(0, h - 1)
    else:
        # Beyond one pixel outside every neighbour is outside: clamping there
        # changes no result and keeps the integer conversion defined.
        px = px.clamp(-2, w + 1)
        py = py.clamp(-2, h + 1)
    fx = px.detach().floor()
    fy = py.detach().floor()
    tx, ty = px - fx, py - fy
    x0, y0 = fx.long(), fy.long()
    planes = img.reshape(bsz, chans, h * w)
    out = img.new_zeros(img.shape)
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & ~nan
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).view(bsz, 1, h * w)
            values = planes.gather(2, index.expand(bsz, chans, h * w)).view(img.shape)
            out = out + (wx * wy * inside).unsqueeze(1) * values
    return out


# Dispatch point: the compiled library replaces this entry when it loads.
_IMPL: dict[str, Callable[..., Tensor]] = {"resample2d": _resample2d_twin}

#: The pure-PyTorch twin under its public name (reference implementation, for comparisons and
#: benchmarks): always the twin, whichever implementation :func:`resample2d` dispatches to.
resample2d_twin = _resample2d_twin


def resample2d(img: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """Backward-warp ``img`` by ``flow``: ``out[b, :, y, x] = img[b, :, y + v, x + u]``.

    Args:
        img: (B, C, H, W) image or feature map (in FlowNet2: image 2).
        flow: (B, 2, H, W) flow in pixels, channel 0 = u (along x), 1 = v (along y).
        padding_mode: ``"border"`` clamps the sampling position to the image
            (the PyTorch port's Resample2d; the default) or ``"zeros"``, where
            neighbours outside the image count as 0.

    Returns:
        (B, C, H, W) tensor, bilinear samples of ``img`` at ``(x + u, y + v)``.

    Convention: positions are in pixels with pixel centres at integers
    (0 … W−1); "border" equals ``grid_sample(mode="bilinear",
    padding_mode="border", align_corners=True)``. "zeros" follows
    ``grid_sample``'s zero padding (each of the four neighbours outside the
    image contributes 0); the original Caffe FlowWarp layer also fills zeros
    outside, but whether it fades over the last pixel exactly like this has not
    been checked here.

    Example:
        >>> img = torch.rand(1, 3, 8, 8)
        >>> torch.equal(resample2d(img, torch.zeros(1, 2, 8, 8)), img)
        True
    """
    return _IMPL["resample2d"](img, flow, padding_mode)


class Resample2d(nn.Module):
    """Module form of :func:`resample2d`: ``forward(img, flow)`` → warped (B, C, H, W)."""

    def __init__(self, padding_mode: str = "border") -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Resample2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode

    def forward(self, img: Tensor, flow: Tensor) -> Tensor:
        return resample2d(img, flow, self.padding_mode)

    def extra_repr(self) -> str:
        return f"padding_mode={self.padding_mode!r}"
