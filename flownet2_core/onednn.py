"""CPU inference with convolution weights packed once for oneDNN, LeakyReLU fused.

A plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` call on the CPU hands oneDNN its weight in
PyTorch's layout, and oneDNN reorders it into its own blocked layout on every call. Where a
layer has many weights and few pixels (FlowNet's conv5…conv6_1 and the first decoder
deconvolutions, at 1/32 and 1/64 of the image) that reorder costs more than the arithmetic:
the 1024→512 deconvolution at 4×5 took 20.5 ms in fp32, 1.7 ms with its weight packed once
(2026-12-05, 2-core EPYC, under load; bit-identical output). :func:`pack_convolutions`
keeps a packed copy of every convolution's weight (PyTorch's own ``torch.ops.mkldnn``
pointwise convolution ops, which inductor uses for frozen CPU graphs) and, where a
convolution is followed by ``LeakyReLU`` in an ``nn.Sequential`` (the paper's ``conv`` and
``deconv`` blocks), applies the activation inside the same oneDNN call.

The module structure and state-dict keys stay as they are: forwards are wrapped on the
instances, the packed copies are plain attributes. A packed copy is renewed when its weight
changes (``load_state_dict`` bumps the tensor's version). Anything the packed ops do not
cover runs the original forward: autograd (training), other devices, other dtypes,
``output_size`` given to a transposed convolution, non-zero padding modes. The packed layout
is chosen for the first input size seen; other sizes give the same numbers.
"""

from __future__ import annotations

import types

import torch
from torch import Tensor, nn

__all__ = ["available", "pack_convolutions"]

_DTYPES = (torch.float32, torch.bfloat16)


def available() -> bool:
    """Whether this PyTorch build has oneDNN and its pointwise convolution ops."""
    ops = torch.ops.mkldnn
    return bool(torch.backends.mkldnn.is_available()) and all(
        hasattr(ops, n) for n in ("_convolution_pointwise", "_reorder_convolution_weight",
                                  "_convolution_transpose_pointwise",
                                  "_reorder_convolution_transpose_weight"))


class _Packed:
    """The packed weight of one convolution, and what it was packed from."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, dtype: torch.dtype | None) -> None:
        self.conv, self.dtype = conv, dtype
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        # the ops' geometry arguments, fixed for the layer: built once, not on every call
        pad = [list(conv.padding)] + ([list(conv.output_padding)] if self.transposed else [])
        self.geometry = (*pad, list(conv.stride), list(conv.dilation), conv.groups)
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        self.key: tuple | None = None

    def __getstate__(self) -> dict:
        # oneDNN's packed tensors cannot be copied or pickled: a copy packs its own weights
        return {**self.__dict__, "weight": None, "bias": None, "key": None}

    def supports(self, x: Tensor) -> bool:
        c = self.conv
        return (x.device.type == "cpu" and x.dim() == 4 and x.dtype in _DTYPES
                and c.weight.device.type == "cpu" and c.weight.dtype in _DTYPES and c.padding_mode == "zeros"
                and not isinstance(c.padding, str)
                and not (torch.is_grad_enabled() and (x.requires_grad or c.weight.requires_grad)))

    def _key(self) -> tuple:
        c = self.conv
        b = c.bias
        return (c.weight.data_ptr(), c.weight._version, c.weight.dtype,
                None if b is None else (b.data_ptr(), b._version))

    def run(self, x: Tensor, attr: str = "none", scalars: list | None = None) -> Tensor:
        c = self.conv
        dtype = self.dtype or c.weight.dtype  # None: follow the weight (cast later or not)
        if x.dtype != dtype:  # as autocast would cast the input
            x = x.to(dtype)
        if self.key != self._key():
            w = c.weight.detach().to(dtype)
            reorder = (torch.ops.mkldnn._reorder_convolution_transpose_weight if self.transposed
                       else torch.ops.mkldnn._reorder_convolution_weight)
            self.weight = reorder(w, *self.geometry, list(x.shape))
            self.bias = None if c.bias is None else c.bias.detach().to(dtype)
            self.key = self._key()
        op = (torch.ops.mkldnn._convolution_transpose_pointwise if self.transposed
              else torch.ops.mkldnn._convolution_pointwise)
        return op(x, self.weight, self.bias, *self.geometry, attr, scalars or [], "")


def _conv_forward(self: nn.Module, x: Tensor, *args, **kwargs) -> Tensor:
    if args or kwargs or not self._onednn_packed.supports(x):  # e.g. output_size=…
        return self._onednn_inner(x, *args, **kwargs)
    return self._onednn_packed.run(x)


def _block_forward(self: nn.Sequential, x: Tensor) -> Tensor:
    """``Sequential(conv, LeakyReLU)``: one oneDNN call with the activation as a post-op."""
    packed = self[0]._onednn_packed
    if not packed.supports(x):
        return self._onednn_inner(x)
    return packed.run(x, "leaky_relu", [float(self[1].negative_slope)])


def _wrap(module: nn.Module, forward, conv: nn.Module, dtype: torch.dtype | None) -> None:
    # Bound methods, not closures: a deep copy of the model rebinds them to the copy.
    conv._onednn_packed = _Packed(conv, dtype)
    module._onednn_inner = module.forward
    module.forward = types.MethodType(forward, module)


def pack_convolutions(model: nn.Module, dtype: torch.dtype | None = None) -> int:
    """Run every ``Conv2d`` / ``ConvTranspose2d`` of ``model`` with its weight packed once
    for oneDNN (in ``dtype``; default: each layer's weight dtype at the time of the call, so a
    later :func:`~flownet2_core.inference.cast_convolutions` is followed), fusing a following
    ``LeakyReLU`` of the same ``nn.Sequential``. Layers already wrapped are left alone.
    Returns how many convolutions were wrapped (0 where oneDNN is not available)."""
    if not available():
        return 0
    n = 0
    for module in model.modules():
        if (isinstance(module, nn.Sequential) and len(module) == 2
                and isinstance(module[0], (nn.Conv2d, nn.ConvTranspose2d))
                and isinstance(module[1], nn.LeakyReLU)
                and not hasattr(module[0], "_onednn_packed")):
            _wrap(module, _block_forward, module[0], dtype)
            n += 1
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and not hasattr(module, "_onednn_packed"):
            _wrap(module, _conv_forward, module, dtype)
            n += 1
    return n
