"""FlowNetSD ("small displacement"): 3×3 kernels throughout, stride-1 first layer, inter_convs."""

from __future__ import annotations

from torch import Tensor, nn

from .flownet_s import (
    add_encoder_tail,
    check_network_input,
    run_decoder,
    run_encoder_tail,
)
from .layers import (
    conv,
    deconv,
    init_weights,
    inter_conv,
    predict_flow,
    scale_channels,
    upsample_flow,
)

__all__ = ["FlowNetSD"]


class FlowNetSD(nn.Module):
    """FlowNetSD.

    Encoder (all 3×3): conv0 (6→64, s1), conv1 (s2), conv1_1 (→128), conv2
    (s2), conv2_1, conv3 (→256, s2), conv3_1, conv4 (→512, s2), conv4_1, conv5
    (s2), conv5_1, conv6 (→1024, s2), conv6_1. The decoder concatenates
    [encoder feature, deconv, upsampled flow] like FlowNetS but passes each
    concat through a linear ``inter_conv`` before ``predict_flow``.

    Args:
        width: channel multiplier (1.0 released).
        batch_norm: batch norm in the conv and inter_conv blocks.

    ``forward(x)``: x = [img1, img2] as (B, 6, H, W), H and W multiples of 64
    → (flow2, flow3, flow4, flow5, flow6), finest first, flowK of shape
    (B, 2, H / 2^K, W / 2^K).

    Units: with the released weights FlowNetSD predicts **20 × the flow in
    pixels** (the opposite of FlowNetS/C's flow / 20): the original Caffe
    network multiplies its output by 0.05, the PyTorch port's FlowNet2 divides
    it by div_flow = 20, and so do the stacks here.
    """

    def __init__(self, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.width = width
        self.batch_norm = batch_norm
        c64, c128, c256, c512, c1024 = (scale_channels(c, width) for c in (64, 128, 256, 512, 1024))
        bn = batch_norm
        self.conv0 = conv(6, c64, 3, 1, bn)
        self.conv1 = conv(c64, c64, 3, 2, bn)
        self.conv1_1 = conv(c64, c128, 3, 1, bn)
        self.conv2 = conv(c128, c128, 3, 2, bn)
        self.conv2_1 = conv(c128, c128, 3, 1, bn)
        self.conv3 = conv(c128, c256, 3, 2, bn)
        self.conv3_1 = conv(c256, c256, 3, 1, bn)
        add_encoder_tail(self, width, bn)

        cat5, cat4, cat3, cat2 = c512 + c512 + 2, c512 + c256 + 2, c256 + c128 + 2, c128 + c64 + 2
        self.deconv5 = deconv(c1024, c512)
        self.deconv4 = deconv(cat5, c256)
        self.deconv3 = deconv(cat4, c128)
        self.deconv2 = deconv(cat3, c64)
        self.inter_conv5 = inter_conv(cat5, c512, batch_norm=bn)
        self.inter_conv4 = inter_conv(cat4, c256, batch_norm=bn)
        self.inter_conv3 = inter_conv(cat3, c128, batch_norm=bn)
        self.inter_conv2 = inter_conv(cat2, c64, batch_norm=bn)
        self.predict_flow6 = predict_flow(c1024)
        self.predict_flow5 = predict_flow(c512)
        self.predict_flow4 = predict_flow(c256)
        self.predict_flow3 = predict_flow(c128)
        self.predict_flow2 = predict_flow(c64)
        self.upsampled_flow6_to_5 = upsample_flow(True)
        self.upsampled_flow5_to_4 = upsample_flow(True)
        self.upsampled_flow4_to_3 = upsample_flow(True)
        self.upsampled_flow3_to_2 = upsample_flow(True)
        init_weights(self)

    def predict_flows(self, x: Tensor) -> tuple[Tensor, ...]:
        """Multi-scale predictions (flow2 … flow6), 20 × pixels; see the class docstring."""
        check_network_input(x, 6, 64, type(self).__name__)
        out_conv0 = self.conv0(x)
        out_conv1 = self.conv1_1(self.conv1(out_conv0))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4, out_conv5, out_conv6 = run_encoder_tail(self, out_conv3)
        return run_decoder(self, out_conv6, out_conv5, out_conv4, out_conv3, out_conv2)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.predict_flows(x)
