"""FlowNetFusion: the small full-resolution net that merges the CSS and SD flows."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .flownet_s import check_network_input
from .layers import (
    conv,
    deconv,
    init_weights,
    inter_conv,
    predict_flow,
    scale_channels,
    upsample_flow,
)

__all__ = ["FlowNetFusion"]


class FlowNetFusion(nn.Module):
    """FlowNetFusion.

    conv0 (11→64, s1), conv1 (s2), conv1_1 (→128), conv2 (s2), conv2_1; then
    flow2 at 1/4 → deconv1/upsampled_flow2_to_1 → concat1 [conv1_1 out,
    deconv1, flow2 up] → inter_conv1 → flow1 at 1/2 → deconv0 → concat0
    [conv0 out, deconv0, flow1 up] → inter_conv0 → flow0 at full resolution.

    Args:
        width: channel multiplier (1.0 released).
        batch_norm: batch norm in the conv and inter_conv blocks.

    ``forward(x)``: x is the 11-channel fusion input (B, 11, H, W), H and W
    multiples of 4 → (flow0, flow1, flow2), finest first, flowK of shape
    (B, 2, H / 2^K, W / 2^K). Units: pixels of the input resolution (the
    fusion net has no div_flow scaling; flow0 is FlowNet2's final output).
    """

    def __init__(self, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.width = width
        self.batch_norm = batch_norm
        c16, c32, c64, c128 = (scale_channels(c, width) for c in (16, 32, 64, 128))
        bn = batch_norm
        self.conv0 = conv(11, c64, 3, 1, bn)
        self.conv1 = conv(c64, c64, 3, 2, bn)
        self.conv1_1 = conv(c64, c128, 3, 1, bn)
        self.conv2 = conv(c128, c128, 3, 2, bn)
        self.conv2_1 = conv(c128, c128, 3, 1, bn)
        cat1, cat0 = c128 + c32 + 2, c64 + c16 + 2
        self.deconv1 = deconv(c128, c32)
        self.deconv0 = deconv(cat1, c16)
        self.inter_conv1 = inter_conv(cat1, c32, batch_norm=bn)
        self.inter_conv0 = inter_conv(cat0, c16, batch_norm=bn)
        self.predict_flow2 = predict_flow(c128)
        self.predict_flow1 = predict_flow(c32)
        self.predict_flow0 = predict_flow(c16)
        self.upsampled_flow2_to_1 = upsample_flow(True)
        self.upsampled_flow1_to_0 = upsample_flow(True)
        init_weights(self)

    def predict_flows(self, x: Tensor) -> tuple[Tensor, ...]:
        """(flow0, flow1, flow2) in pixels, finest first; see the class docstring."""
        check_network_input(x, 11, 4, type(self).__name__)
        out_conv0 = self.conv0(x)
        out_conv1 = self.conv1_1(self.conv1(out_conv0))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))

        flow2 = self.predict_flow2(out_conv2)
        concat1 = torch.cat((out_conv1, self.deconv1(out_conv2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((out_conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        flow0 = self.predict_flow0(self.inter_conv0(concat0))
        return flow0, flow1, flow2

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.predict_flows(x)
