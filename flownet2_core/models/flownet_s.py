"""FlowNetS ("simple"): one encoder–decoder over the stacked input channels.

Also home of the parts the FlowNet family shares: the encoder's deep end
conv4…conv6_1 (FlowNetS, FlowNetC, FlowNetSD) and the decoder (deconv5…2,
predict_flow6…2, upsampled_flow6_to_5…3_to_2; FlowNetSD adds inter_conv5…2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import (
    conv,
    deconv,
    init_weights,
    predict_flow,
    scale_channels,
    upsample_flow,
)

# The shared parts (add_/run_encoder_tail, add_/run_decoder) are public to the sibling
# networks (flownet_c, flownet_sd); flownet2_core.models does not export them.
__all__ = ["FlowNetS", "add_decoder", "add_encoder_tail", "check_network_input", "run_decoder",
           "run_encoder_tail"]


def check_network_input(x: Tensor, channels: int, multiple: int, who: str) -> None:
    """``ValueError`` unless ``x`` is (B, channels, H, W) floating with H, W multiples of ``multiple``."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"{who}: expected a (B, {channels}, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if x.shape[1] != channels:
        raise ValueError(f"{who}: expected {channels} input channels, got {x.shape[1]}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: expected a floating-point tensor, got {x.dtype}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(f"{who}: H and W must be positive multiples of {multiple}, got {w}×{h}")


def add_encoder_tail(net: nn.Module, width: float, batch_norm: bool) -> None:
    """Register conv4, conv4_1, conv5, conv5_1, conv6, conv6_1 on ``net`` (1/16 … 1/64)."""
    c256, c512, c1024 = (scale_channels(c, width) for c in (256, 512, 1024))
    net.conv4 = conv(c256, c512, 3, 2, batch_norm)
    net.conv4_1 = conv(c512, c512, 3, 1, batch_norm)
    net.conv5 = conv(c512, c512, 3, 2, batch_norm)
    net.conv5_1 = conv(c512, c512, 3, 1, batch_norm)
    net.conv6 = conv(c512, c1024, 3, 2, batch_norm)
    net.conv6_1 = conv(c1024, c1024, 3, 1, batch_norm)


def run_encoder_tail(net: nn.Module, conv3: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(conv4, conv5, conv6) features from the 1/8-resolution ``conv3`` feature."""
    conv4 = net.conv4_1(net.conv4(conv3))
    conv5 = net.conv5_1(net.conv5(conv4))
    return conv4, conv5, net.conv6_1(net.conv6(conv5))


def add_decoder(net: nn.Module, width: float, upsample_bias: bool) -> None:
    """Register the FlowNetS/C decoder on ``net`` (keys in the released order)."""
    c64, c128, c256, c512, c1024 = (scale_channels(c, width) for c in (64, 128, 256, 512, 1024))
    net.deconv5 = deconv(c1024, c512)
    net.deconv4 = deconv(c512 + c512 + 2, c256)
    net.deconv3 = deconv(c512 + c256 + 2, c128)
    net.deconv2 = deconv(c256 + c128 + 2, c64)
    net.predict_flow6 = predict_flow(c1024)
    net.predict_flow5 = predict_flow(c512 + c512 + 2)
    net.predict_flow4 = predict_flow(c512 + c256 + 2)
    net.predict_flow3 = predict_flow(c256 + c128 + 2)
    net.predict_flow2 = predict_flow(c128 + c64 + 2)
    net.upsampled_flow6_to_5 = upsample_flow(upsample_bias)
    net.upsampled_flow5_to_4 = upsample_flow(upsample_bias)
    net.upsampled_flow4_to_3 = upsample_flow(upsample_bias)
    net.upsampled_flow3_to_2 = upsample_flow(upsample_bias)


def run_decoder(net: nn.Module, conv6: Tensor, conv5: Tensor, conv4: Tensor, conv3: Tensor,
                 conv2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Coarse-to-fine refinement; each concat is [encoder feature, deconv, upsampled flow].

    Where ``net`` has ``inter_convK`` (FlowNetSD), flowK is predicted from it
    applied to concatK. Returns (flow2, flow3, flow4, flow5, flow6), finest
    first, at 1/4 … 1/64 resolution.
    """
    flows = [net.predict_flow6(conv6)]
    concat = conv6
    for k, feature in zip((5, 4, 3, 2), (conv5, conv4, conv3, conv2)):
        up = getattr(net, f"upsampled_flow{k + 1}_to_{k}")
        concat = torch.cat((feature, getattr(net, f"deconv{k}")(concat), up(flows[-1])), 1)
        inter = getattr(net, f"inter_conv{k}", None)
        flows.append(getattr(net, f"predict_flow{k}")(concat if inter is None else inter(concat)))
    return tuple(reversed(flows))


class FlowNetS(nn.Module):
    """FlowNetS: encoder conv1 (k7 s2), conv2 (k5 s2), conv3 (k5 s2), conv3_1, conv4…conv6_1.

    Args:
        in_channels: 6 stand-alone ([img1, img2]); 12 inside FlowNet2
            ([img1, img2, warped img2, flow/20, brightness error]).
        width: channel multiplier (1.0 released; 3/8 for the paper's lowercase "s").
        batch_norm: batch norm in the conv blocks (no released model uses it).

    ``forward(x)``: (B, in_channels, H, W), H and W multiples of 64 →
    (flow2, flow3, flow4, flow5, flow6), finest first; flowK is
    (B, 2, H / 2^K, W / 2^K) in units of flow / 20 (div_flow).
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.width = width
        self.batch_norm = batch_norm
        c64, c128, c256 = (scale_channels(c, width) for c in (64, 128, 256))
        bn = batch_norm
        self.conv1 = conv(in_channels, c64, 7, 2, bn)
        self.conv2 = conv(c64, c128, 5, 2, bn)
        self.conv3 = conv(c128, c256, 5, 2, bn)
        self.conv3_1 = conv(c256, c256, 3, 1, bn)
        add_encoder_tail(self, width, bn)
        # The released FlowNetS upsamplers have no bias (C, SD and fusion do).
        add_decoder(self, width, upsample_bias=False)
        init_weights(self)

    def predict_flows(self, x: Tensor) -> tuple[Tensor, ...]:
        """Multi-scale predictions (flow2 … flow6) in flow/20 units; see the class docstring."""
        check_network_input(x, self.in_channels, 64, type(self).__name__)
        out_conv2 = self.conv2(self.conv1(x))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4, out_conv5, out_conv6 = run_encoder_tail(self, out_conv3)
        return run_decoder(self, out_conv6, out_conv5, out_conv4, out_conv3, out_conv2)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.predict_flows(x)
