"""FlowNetC ("correlation"): siamese encoder, correlation layer, FlowNetS decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import Correlation
from .flownet_s import (
    add_decoder,
    add_encoder_tail,
    check_network_input,
    run_decoder,
    run_encoder_tail,
)
from .layers import LEAKY_SLOPE, conv, init_weights, scale_channels

__all__ = ["FlowNetC"]


class FlowNetC(nn.Module):
    """FlowNetC.

    conv1 (k7 s2), conv2 (k5 s2), conv3 (k5 s2) run on both images with shared
    weights; the correlation of the two conv3 outputs (pad 20, kernel 1, max
    displacement 20, strides 1 and 2 → 441 channels, never scaled by width)
    goes through LeakyReLU(0.1) and is concatenated after ``conv_redir``
    (1×1, image 1 only): conv3_1 sees [redir, corr]. Then conv4 … conv6_1 and
    the FlowNetS decoder, whose finest concat uses image 1's conv2 output.

    Args:
        width: channel multiplier (1.0 released; 3/8 for the paper's "c").
        batch_norm: batch norm in the conv blocks (no released model uses it).

    ``forward(x)``: x = [img1, img2] as (B, 6, H, W), H and W multiples of 64
    → (flow2, flow3, flow4, flow5, flow6), finest first, flowK of shape
    (B, 2, H / 2^K, W / 2^K) in units of flow / 20.
    """

    def __init__(self, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.width = width
        self.batch_norm = batch_norm
        c64, c128, c256 = (scale_channels(c, width) for c in (64, 128, 256))
        c_redir = scale_channels(32, width)
        bn = batch_norm
        self.conv1 = conv(3, c64, 7, 2, bn)
        self.conv2 = conv(c64, c128, 5, 2, bn)
        self.conv3 = conv(c128, c256, 5, 2, bn)
        self.conv_redir = conv(c256, c_redir, 1, 1, bn)
        self.corr = Correlation(pad_size=20, kernel_size=1, max_displacement=20, stride1=1, stride2=2)
        self.conv3_1 = conv(c_redir + self.corr.out_channels, c256, 3, 1, bn)
        add_encoder_tail(self, width, bn)
        add_decoder(self, width, upsample_bias=True)
        init_weights(self)

    def predict_flows(self, x: Tensor) -> tuple[Tensor, ...]:
        """Multi-scale predictions (flow2 … flow6) in flow/20 units; see the class docstring."""
        check_network_input(x, 6, 64, type(self).__name__)
        if self.batch_norm:
            # Separate passes, so batch statistics are per image as in the port.
            conv2a = self.conv2(self.conv1(x[:, :3]))
            conv3a = self.conv3(conv2a)
            conv3b = self.conv3(self.conv2(self.conv1(x[:, 3:])))
        else:
            # Both images through the shared encoder in one batch (same result, bigger GEMMs).
            bsz = x.shape[0]
            out_conv2 = self.conv2(self.conv1(torch.cat((x[:, :3], x[:, 3:]), dim=0)))
            out_conv3 = self.conv3(out_conv2)
            conv2a = out_conv2[:bsz]
            conv3a, conv3b = out_conv3[:bsz], out_conv3[bsz:]
        corr = F.leaky_relu(self.corr(conv3a, conv3b), LEAKY_SLOPE)
        out_conv3_1 = self.conv3_1(torch.cat((self.conv_redir(conv3a), corr), 1))
        out_conv4, out_conv5, out_conv6 = run_encoder_tail(self, out_conv3_1)
        return run_decoder(self, out_conv6, out_conv5, out_conv4, out_conv3_1, conv2a)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.predict_flows(x)
