"""Correlation layer of FlowNetC (the "cost volume").

The public :func:`correlation` routes through :data:`_IMPL`, the single
dispatch point for the compiled C++/CUDA kernels (see ``_compiled.py``); the
pure-PyTorch twin (public name :data:`correlation_twin`) stays importable as the reference
and the fallback, and computes the settings no FlowNet model uses
(``kernel_size > 1`` or ``stride1 > 1``) on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Correlation", "correlation", "correlation_output_shape", "correlation_twin"]


def _check_params(pad_size: int, kernel_size: int, max_displacement: int,
                  stride1: int, stride2: int) -> None:
    for name, value, low in (("pad_size", pad_size, 0), ("kernel_size", kernel_size, 1),
                             ("max_displacement", max_displacement, 0),
                             ("stride1", stride1, 1), ("stride2", stride2, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"correlation: {name} must be an integer >= {low}, got {value!r}")


def correlation_output_shape(height: int, width: int, pad_size: int = 20, kernel_size: int = 1,
                             max_displacement: int = 20, stride1: int = 1,
                             stride2: int = 2) -> tuple[int, int, int]:
    """``(channels, out_h, out_w)`` of :func:`correlation` for an ``height × width`` input.

    ``channels = (2 * (max_displacement // stride2) + 1) ** 2``;
    ``out = ceil((size + 2 * pad_size - 2 * border) / stride1)`` with
    ``border = max_displacement + (kernel_size - 1) // 2`` (the Caffe layer's
    definition). FlowNetC's setting gives ``(441, height, width)``.
    """
    _check_params(pad_size, kernel_size, max_displacement, stride1, stride2)
    border = max_displacement + (kernel_size - 1) // 2
    out_h = math.ceil((height + 2 * pad_size - 2 * border) / stride1)
    out_w = math.ceil((width + 2 * pad_size - 2 * border) / stride1)
    grid = 2 * (max_displacement // stride2) + 1
    return grid * grid, out_h, out_w


def _check_inputs(f1: Tensor, f2: Tensor) -> None:
    for name, t in (("f1", f1), ("f2", f2)):
        if not isinstance(t, Tensor):
            raise ValueError(f"correlation: {name} must be a tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"correlation: {name} must be (B, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"correlation: {name} must be floating point, got {t.dtype}")
    if f1.shape != f2.shape:
        raise ValueError(f"correlation: f1 and f2 differ in shape: {tuple(f1.shape)} vs {tuple(f2.shape)}")
    if f1.dtype != f2.dtype or f1.device != f2.device:
        raise ValueError(f"correlation: f1 and f2 differ in dtype/device: "
                         f"{f1.dtype}/{f1.device} vs {f2.dtype}/{f2.device}")


def _crop_or_pad(x: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """Window ``[top, top + height) × [left, left + width)`` of ``x`` (B, C, H, W), zeros outside."""
    h, w = x.shape[-2:]
    # F.pad accepts negative amounts (they crop), so one call does both.
    return F.pad(x, (-left, left + width - w, -top, top + height - h))


def _row_correlation(a: Tensor, b: Tensor, num: int, step: int, tile: int = 32) -> Tensor:
    """Horizontal part of the cost volume for one vertical displacement.

    ``a``: (B, C, H, W); ``b``: (B, C, H, W + (num - 1) * step), whose column
    ``x + step * o`` faces column ``x`` of ``a`` at displacement ``o``.
    Returns (B, num, H, W): ``out[:, o, y, x] = Σ_c a[:, c, y, x] · b[:, c, y, x + step·o]``.

    Columns are cut into tiles of ``tile``; each tile is one matrix product
    (tile × C)·(C × (tile + span)) batched over B·H·tiles, and the ``num``
    needed diagonals are read out of it with a strided view. That does a few
    times the strictly needed multiply-adds but in one BLAS call, which beats
    ``num`` separate products or a materialised window tensor by far on CPU.
    """
    bsz, chans, h, w = a.shape
    span = (num - 1) * step
    tile = max(1, min(tile, w))
    n_tiles = -(-w // tile)
    w_pad = n_tiles * tile
    width_u = tile + span
    a = F.pad(a, (0, w_pad - w))
    b = F.pad(b, (0, w_pad + span - b.shape[-1]))
    # (B·H·n_tiles, tile, C) @ (B·H·n_tiles, C, tile + span)
    lhs = a.reshape(bsz, chans, h, n_tiles, tile).permute(0, 2, 3, 4, 1).reshape(-1, tile, chans)
    rhs = b.unfold(3, width_u, tile).permute(0, 2, 3, 1, 4).reshape(-1, chans, width_u)
    prod = torch.bmm(lhs, rhs).contiguous()
    # Diagonals: element (t, o) sits at t * (width_u + 1) + o * step inside each matrix.
    band = prod.as_strided((prod.shape[0], tile, num), (tile * width_u, width_u + 1, step),
                           prod.storage_offset())
    return band.reshape(bsz, h, w_pad, num)[:, :, :w].permute(0, 3, 1, 2)


def _correlation_twin(f1: Tensor, f2: Tensor, pad_size: int = 20, kernel_size: int = 1,
                      max_displacement: int = 20, stride1: int = 1, stride2: int = 2) -> Tensor:
    """Pure-PyTorch correlation; reference for the compiled kernels. See :func:`correlation`.

    One batched matrix product per vertical displacement (see
    :func:`_row_correlation`); differentiable through autograd.
    """
    _check_inputs(f1, f2)
    _check_params(pad_size, kernel_size, max_displacement, stride1, stride2)
    chans, h, w = f1.shape[1:]
    _, out_h, out_w = correlation_output_shape(
        h, w, pad_size, kernel_size, max_displacement, stride1, stride2)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"correlation: input {w}×{h} is too small for pad_size={pad_size}, "
                         f"kernel_size={kernel_size}, max_displacement={max_displacement}")
    radius = max_displacement // stride2
    num = 2 * radius + 1
    reach = radius * stride2
    # Padded coordinates (Caffe): the patch of output (y, x) starts at
    # (y·stride1 + max_displacement, x·stride1 + max_displacement) and spans
    # kernel_size pixels; in unpadded coordinates subtract pad_size.
    top = max_displacement - pad_size
    reg_h = (out_h - 1) * stride1 + kernel_size
    reg_w = (out_w - 1) * stride1 + kernel_size
    a = _crop_or_pad(f1, top, top, reg_h, reg_w)
    b = _crop_or_pad(f2, top - reach, top - reach, reg_h + 2 * reach, reg_w + 2 * reach)
    row_step = 1
    if kernel_size == 1 and stride1 > 1:
        # Rows can be subsampled before the products (columns are subsampled after).
        row_step = stride1
        a = a[:, :, ::stride1]
    rows = []
    for p in range(num):
        b_rows = b[:, :, p * stride2: p * stride2 + reg_h: row_step]
        rows.append(_row_correlation(a, b_rows, num, stride2))
    out = torch.cat(rows, dim=1)  # (B, num², reg_h / row_step, reg_w), dy-major
    if kernel_size > 1:
        out = F.avg_pool2d(out, kernel_size, stride=stride1)  # Σ over the patch / kernel²
    elif stride1 > 1:
        out = out[:, :, :, ::stride1]
    return out / chans


# Dispatch point: the compiled library replaces this entry when it loads.
_IMPL: dict[str, Callable[..., Tensor]] = {"correlation": _correlation_twin}

#: The pure-PyTorch twin under its public name (reference implementation, for comparisons and
#: benchmarks): always the twin, whichever implementation :func:`correlation` dispatches to.
correlation_twin = _correlation_twin


def correlation(f1: Tensor, f2: Tensor, pad_size: int = 20, kernel_size: int = 1,
                max_displacement: int = 20, stride1: int = 1, stride2: int = 2) -> Tensor:
    """Correlation (cost volume) between two feature maps, as in FlowNetC.

    Args:
        f1, f2: (B, C, H, W) floating-point feature maps of one shape.
        pad_size: zero padding added on every side before correlating.
        kernel_size: side of the square patch compared (odd or even).
        max_displacement: largest displacement, in pixels of the feature map.
        stride1: step between output positions.
        stride2: step between compared displacements.

    Returns:
        (B, D², H_out, W_out) with ``D = 2 * (max_displacement // stride2) + 1``
        and the sizes of :func:`correlation_output_shape`; FlowNetC's defaults
        give (B, 441, H, W).

    Convention: with ``r = max_displacement // stride2`` and displacement
    indices ``p, o ∈ [-r, r]`` (``p`` vertical, ``o`` horizontal), channel
    ``(p + r) · D + (o + r)`` (``dy`` is the major index) holds::

        out[b, ch, y, x] = Σ_{c, j, i} f1p[b, c, y1 + j, x1 + i]
                                      · f2p[b, c, y1 + j + stride2·p, x1 + i + stride2·o]
                           / (kernel_size² · C)

    where ``f1p``/``f2p`` are the inputs zero-padded by ``pad_size`` (zero
    anywhere outside as well), ``y1 = y·stride1 + max_displacement``,
    ``x1 = x·stride1 + max_displacement`` and ``j, i ∈ [0, kernel_size)``.
    For FlowNetC (pad 20, kernel 1, max displacement 20, strides 1 and 2):
    ``out[b, (dy+10)·21 + (dx+10), y, x] = Σ_c f1[c, y, x] · f2[c, y+2dy, x+2dx] / C``.

    Example:
        >>> f = torch.randn(1, 8, 16, 16)
        >>> correlation(f, f).shape
        torch.Size([1, 441, 16, 16])
    """
    return _IMPL["correlation"](f1, f2, pad_size, kernel_size, max_displacement, stride1, stride2)


class Correlation(nn.Module):
    """Module form of :func:`correlation` with its settings fixed at construction.

    ``forward(f1, f2)``: (B, C, H, W) ×2 → (B, D², H_out, W_out).
    """

    def __init__(self, pad_size: int = 20, kernel_size: int = 1, max_displacement: int = 20,
                 stride1: int = 1, stride2: int = 2) -> None:
        super().__init__()
        _check_params(pad_size, kernel_size, max_displacement, stride1, stride2)
        self.pad_size = pad_size
        self.kernel_size = kernel_size
        self.max_displacement = max_displacement
        self.stride1 = stride1
        self.stride2 = stride2

    @property
    def out_channels(self) -> int:
        """Number of output channels, ``(2 * (max_displacement // stride2) + 1) ** 2``."""
        return (2 * (self.max_displacement // self.stride2) + 1) ** 2

    def forward(self, f1: Tensor, f2: Tensor) -> Tensor:
        return correlation(f1, f2, self.pad_size, self.kernel_size, self.max_displacement,
                           self.stride1, self.stride2)

    def extra_repr(self) -> str:
        return (f"pad_size={self.pad_size}, kernel_size={self.kernel_size}, "
                f"max_displacement={self.max_displacement}, stride1={self.stride1}, "
                f"stride2={self.stride2}")
