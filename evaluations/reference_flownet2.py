"""A straightforward FlowNet2 forward pass, the baseline of ``evaluations.bench_infer``.

Written from ``../shared/SPEC-flownet2.md`` §2–4 the way the PyTorch port's model code runs
(NCHW float32, one module call per layer, a fresh tensor for every activation and
concatenation, the special ops in plain PyTorch: correlation as 441 shifted products,
warping by ``grid_sample``, the channel norm by ``torch.norm``). It reads the weights from a
state dict with the released keys, so it runs exactly the weights our models run, and its
output must equal theirs (``bench_infer`` checks it every time).

Only eval-mode forward passes of FlowNet2, FlowNet2-CSS and FlowNet2-S at any width, without
batch norm (what the released checkpoints are).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["reference_forward", "ARCHS"]

ARCHS = ("FlowNet2", "FlowNet2-CSS", "FlowNet2-S")
DIV_FLOW = 20.0


def _conv(sd: dict, name: str, x: Tensor, stride: int = 1, act: bool = True) -> Tensor:
    w, b = sd[f"{name}.weight"], sd.get(f"{name}.bias")
    y = F.conv2d(x, w, b, stride, (w.shape[-1] - 1) // 2)
    return F.leaky_relu(y, 0.1) if act else y


def _block(sd: dict, name: str, x: Tensor, stride: int = 1) -> Tensor:
    """conv(+LeakyReLU) stored as a Sequential: weights under ``name.0``."""
    return _conv(sd, f"{name}.0", x, stride)


def _deconv(sd: dict, name: str, x: Tensor, act: bool = True) -> Tensor:
    y = F.conv_transpose2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), 2, 1)
    return F.leaky_relu(y, 0.1) if act else y


def _correlation(f1: Tensor, f2: Tensor) -> Tensor:
    """441 channels: mean over C of f1 · f2 shifted by (2dy, 2dx), |d| ≤ 10, zero outside."""
    b, c, h, w = f1.shape
    padded = F.pad(f2, (20, 20, 20, 20))
    out = []
    for dy in range(-10, 11):
        for dx in range(-10, 11):
            shifted = padded[:, :, 20 + 2 * dy:20 + 2 * dy + h, 20 + 2 * dx:20 + 2 * dx + w]
            out.append((f1 * shifted).sum(1, keepdim=True) / c)
    return torch.cat(out, 1)


def _warp(img: Tensor, flow: Tensor) -> Tensor:
    """Bilinear sample of ``img`` at (x + u, y + v), coordinates clamped to the border."""
    b, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing="ij")
    gx = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    gy = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    return F.grid_sample(img, torch.stack((gx, gy), -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def _norm(x: Tensor) -> Tensor:
    return torch.norm(x, p=2, dim=1, keepdim=True)


def _decoder(sd: dict, p: str, feats: list[Tensor], sd_net: bool = False) -> Tensor:
    """flow2 of the FlowNetS/C/SD decoder; ``feats`` = [conv6, conv5, conv4, conv3, conv2]."""
    x = feats[0]
    flow = _conv(sd, f"{p}predict_flow6", x, act=False)
    for k, feat in zip((5, 4, 3, 2), feats[1:]):
        up = _deconv(sd, f"{p}upsampled_flow{k + 1}_to_{k}", flow, act=False)
        x = torch.cat((feat, _deconv(sd, f"{p}deconv{k}.0", x), up), 1)
        y = _conv(sd, f"{p}inter_conv{k}.0", x, act=False) if sd_net else x
        flow = _conv(sd, f"{p}predict_flow{k}", y, act=False)
    return flow


def _tail(sd: dict, p: str, x: Tensor) -> list[Tensor]:
    c4 = _block(sd, f"{p}conv4_1", _block(sd, f"{p}conv4", x, 2))
    c5 = _block(sd, f"{p}conv5_1", _block(sd, f"{p}conv5", c4, 2))
    c6 = _block(sd, f"{p}conv6_1", _block(sd, f"{p}conv6", c5, 2))
    return [c6, c5, c4]


def _flownet_s(sd: dict, p: str, x: Tensor) -> Tensor:
    c2 = _block(sd, f"{p}conv2", _block(sd, f"{p}conv1", x, 2), 2)
    c3 = _block(sd, f"{p}conv3_1", _block(sd, f"{p}conv3", c2, 2))
    return _decoder(sd, p, _tail(sd, p, c3) + [c3, c2])


def _flownet_c(sd: dict, p: str, x1: Tensor, x2: Tensor) -> Tensor:
    def trunk(x):
        c2 = _block(sd, f"{p}conv2", _block(sd, f"{p}conv1", x, 2), 2)
        return c2, _block(sd, f"{p}conv3", c2, 2)

    c2a, c3a = trunk(x1)
    _, c3b = trunk(x2)
    corr = F.leaky_relu(_correlation(c3a, c3b), 0.1)
    c31 = _block(sd, f"{p}conv3_1", torch.cat((_block(sd, f"{p}conv_redir", c3a), corr), 1))
    return _decoder(sd, p, _tail(sd, p, c31) + [c31, c2a])


def _flownet_sd(sd: dict, p: str, x: Tensor) -> Tensor:
    c0 = _block(sd, f"{p}conv0", x)
    c1 = _block(sd, f"{p}conv1_1", _block(sd, f"{p}conv1", c0, 2))
    c2 = _block(sd, f"{p}conv2_1", _block(sd, f"{p}conv2", c1, 2))
    c3 = _block(sd, f"{p}conv3_1", _block(sd, f"{p}conv3", c2, 2))
    return _decoder(sd, p, _tail(sd, p, c3) + [c3, c2], sd_net=True)


def _fusion(sd: dict, p: str, x: Tensor) -> Tensor:
    c0 = _block(sd, f"{p}conv0", x)
    c1 = _block(sd, f"{p}conv1_1", _block(sd, f"{p}conv1", c0, 2))
    c2 = _block(sd, f"{p}conv2_1", _block(sd, f"{p}conv2", c1, 2))
    flow2 = _conv(sd, f"{p}predict_flow2", c2, act=False)
    cat1 = torch.cat((c1, _deconv(sd, f"{p}deconv1.0", c2), _deconv(sd, f"{p}upsampled_flow2_to_1", flow2, False)), 1)
    flow1 = _conv(sd, f"{p}predict_flow1", _conv(sd, f"{p}inter_conv1.0", cat1, act=False), act=False)
    cat0 = torch.cat((c0, _deconv(sd, f"{p}deconv0.0", cat1), _deconv(sd, f"{p}upsampled_flow1_to_0", flow1, False)), 1)
    return _conv(sd, f"{p}predict_flow0", _conv(sd, f"{p}inter_conv0.0", cat0, act=False), act=False)


def _next_input(x1: Tensor, x2: Tensor, flow: Tensor) -> Tensor:
    warped = _warp(x2, flow)
    return torch.cat((x1, x2, warped, flow / DIV_FLOW, _norm(x1 - warped)), 1)


def reference_forward(arch: str, sd: dict, img1: Tensor, img2: Tensor) -> Tensor:
    """Eval-mode flow (B, 2, H, W) in pixels of ``arch`` with state dict ``sd`` on RGB 0..255
    images (B, 3, H, W), H and W multiples of 64 (SPEC §4)."""
    if arch not in ARCHS:
        raise ValueError(f"reference_forward runs {ARCHS}, not {arch!r}")
    mean = (img1.mean((2, 3), keepdim=True) + img2.mean((2, 3), keepdim=True)) / 2
    x1, x2 = (img1 - mean) / 255.0, (img2 - mean) / 255.0

    def up_bilinear(f):
        return F.interpolate(f, scale_factor=4, mode="bilinear", align_corners=False)

    def up_nearest(f):
        return F.interpolate(f, scale_factor=4, mode="nearest")

    if arch == "FlowNet2-S":
        return up_bilinear(_flownet_s(sd, "", torch.cat((x1, x2), 1)) * DIV_FLOW)
    flow = up_bilinear(_flownet_c(sd, "flownetc.", x1, x2) * DIV_FLOW)
    flow = up_bilinear(_flownet_s(sd, "flownets_1.", _next_input(x1, x2, flow)) * DIV_FLOW)
    flow_s2 = up_nearest(_flownet_s(sd, "flownets_2.", _next_input(x1, x2, flow)) * DIV_FLOW)
    if arch == "FlowNet2-CSS":
        return flow_s2
    flow_sd = up_nearest(_flownet_sd(sd, "flownets_d.", torch.cat((x1, x2), 1)) / DIV_FLOW)
    err_s2 = _norm(x1 - _warp(x2, flow_s2))
    err_sd = _norm(x1 - _warp(x2, flow_sd))
    return _fusion(sd, "flownetfusion.", torch.cat((x1, flow_sd, flow_s2, _norm(flow_sd), _norm(flow_s2),
                                                    err_sd, err_s2), 1))
