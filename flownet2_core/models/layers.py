"""Building blocks shared by the FlowNet sub-networks.

Each helper returns modules whose ``state_dict`` keys match the released
checkpoints (converted from Caffe by the PyTorch port):

==================  =============================================  ==========================
helper              modules                                        keys under ``name.``
==================  =============================================  ==========================
:func:`conv`        Sequential(Conv2d(bias), LeakyReLU(0.1))       ``0.weight``, ``0.bias``
(batch norm)        Sequential(Conv2d(no bias), BN, LeakyReLU)     ``0.weight``, ``1.*``
:func:`deconv`      Sequential(ConvTranspose2d(4, 2, 1), LeakyReLU) ``0.weight``, ``0.bias``
:func:`inter_conv`  Sequential(Conv2d(bias)) — no activation       ``0.weight``, ``0.bias``
(batch norm)        Sequential(Conv2d(no bias), BN)                ``0.weight``, ``1.*``
:func:`predict_flow`  bare Conv2d(in, 2, 3, 1, 1)                  ``weight``, ``bias``
:func:`upsample_flow` bare ConvTranspose2d(2, 2, 4, 2, 1)          ``weight`` (+ ``bias``)
==================  =============================================  ==========================

Batch norm is not used by any released model; with it on, convolutions drop
their (redundant) bias. The PyTorch port kept the bias on its ``inter_conv``
blocks under batch norm; here every conv block follows the same rule.
Deconvolutions never get batch norm (neither in the port).
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "LEAKY_SLOPE", "conv", "deconv", "init_weights", "inter_conv", "predict_flow",
    "scale_channels", "upsample_flow",
]

LEAKY_SLOPE = 0.1


def scale_channels(channels: int, width: float) -> int:
    """Channel count of a layer at width multiplier ``width`` (``round(channels · width)``).

    Only feature channels scale; callers never pass image (3), flow (2) or
    correlation (441) channels through this.
    """
    if not (isinstance(width, (int, float)) and not isinstance(width, bool)) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    out = round(channels * width)
    if out < 1:
        raise ValueError(f"width {width} leaves a layer of {channels} channels with none")
    return out


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
         batch_norm: bool = False) -> nn.Sequential:
    """Conv2d (padding (k−1)//2) + LeakyReLU(0.1), optionally with BatchNorm2d between."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                         padding=(kernel_size - 1) // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
    return nn.Sequential(*layers)


def inter_conv(in_channels: int, out_channels: int, kernel_size: int = 3,
               batch_norm: bool = False) -> nn.Sequential:
    """Linear Conv2d (stride 1, no activation) of the SD and fusion decoders, in a Sequential."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, 1,
                                         padding=(kernel_size - 1) // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


def deconv(in_channels: int, out_channels: int) -> nn.Sequential:
    """ConvTranspose2d(kernel 4, stride 2, padding 1): exact ×2 upsampling, + LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=True),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


def predict_flow(in_channels: int) -> nn.Conv2d:
    """3×3 convolution to the 2 flow channels (u, v), linear."""
    return nn.Conv2d(in_channels, 2, 3, 1, 1, bias=True)


def upsample_flow(bias: bool = True) -> nn.ConvTranspose2d:
    """Learned ×2 upsampling of a flow map (2 → 2 channels).

    ``bias=False`` in FlowNetS only (as in the released checkpoints).
    """
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=bias)


def init_weights(module: nn.Module) -> None:
    """Initialise convolutions for training from scratch: Xavier-uniform weights, zero bias.

    (The PyTorch port drew biases from U(0, 1); zero is the usual choice and
    only matters for training from scratch. Released weights replace all of it.)
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
