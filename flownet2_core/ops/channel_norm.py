"""ChannelNorm: per-pixel L2 norm over channels.

The public :func:`channel_norm` routes through :data:`_IMPL` (the dispatch
point for the compiled kernels, see ``_compiled.py``); :func:`_channel_norm_twin`
(public name :data:`channel_norm_twin`) is the pure-PyTorch reference and fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["ChannelNorm", "channel_norm", "channel_norm_twin"]


class _ChannelNormFunction(torch.autograd.Function):
    """``sqrt(Σ_c x²)`` with gradient ``x / ‖x‖``, defined as 0 where ``‖x‖ = 0``.

    The forward value is exact (no epsilon under the root); only the gradient
    at the non-differentiable point 0 is chosen: 0 is the smallest subgradient,
    so training through an all-zero pixel gets no push instead of a NaN.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt()
        ctx.save_for_backward(x, norm)
        return norm

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        x, norm = ctx.saved_tensors
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
        scale = torch.where(norm > 0, grad_out / safe, torch.zeros_like(grad_out))
        return x * scale


def _channel_norm_twin(x: Tensor) -> Tensor:
    """Pure-PyTorch channel norm; reference for compiled kernels. See :func:`channel_norm`."""
    if not isinstance(x, Tensor):
        raise ValueError(f"channel_norm: x must be a tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"channel_norm: x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"channel_norm: x must be floating point, got {x.dtype}")
    if x.dtype in (torch.float16, torch.bfloat16):
        # Squares of flow values overflow half precision (|u| > 256); sum in float32.
        return _ChannelNormFunction.apply(x.float()).to(x.dtype)
    return _ChannelNormFunction.apply(x)


# Dispatch point: the compiled library replaces this entry when it loads.
_IMPL: dict[str, Callable[..., Tensor]] = {"channel_norm": _channel_norm_twin}

#: The pure-PyTorch twin under its public name (reference implementation, for comparisons and
#: benchmarks): always the twin, whichever implementation :func:`channel_norm` dispatches to.
channel_norm_twin = _channel_norm_twin


def channel_norm(x: Tensor) -> Tensor:
    """L2 norm over the channel axis: (B, C, H, W) → (B, 1, H, W).

    ``out[b, 0, y, x] = sqrt(Σ_c x[b, c, y, x]²)``, exact. The gradient is
    ``x / ‖x‖`` and is defined as 0 where the norm is 0, so it stays finite
    there (no epsilon is added, so the values are not shifted either).

    Example:
        >>> channel_norm(torch.tensor([[[[3.0]], [[4.0]]]]))
        tensor([[[[5.]]]])
    """
    return _IMPL["channel_norm"](x)


class ChannelNorm(nn.Module):
    """Module form of :func:`channel_norm`: (B, C, H, W) → (B, 1, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        return channel_norm(x)
