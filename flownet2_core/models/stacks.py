"""The FlowNet 2.0 models: stand-alone FlowNet2C/S/SD and the stacks CS, CSS, SS, SSS and FlowNet2.

Every model here has the same contract::

    model(img1, img2)   # two (B, 3, H, W) float tensors, RGB 0..255, H and W multiples of 64

* eval mode: (B, 2, H, W) flow in pixels, channel 0 = u (along x), 1 = v
  (along y), mapping pixels of img1 to their position in img2;
* train mode: the multi-scale predictions of the last sub-network, finest
  first, in that sub-network's own units: FlowNetC/FlowNetS give
  (flow2, …, flow6) in flow / 20 (div_flow) at 1/4 … 1/64 resolution;
  FlowNetSD gives (flow2, …, flow6) in 20 × flow (see :class:`FlowNetSD`);
  FlowNetFusion (last in FlowNet2) gives (flow0, flow1, flow2) in pixels at
  1, 1/2, 1/4 resolution. Every sub-network runs with gradients; freezing the
  earlier ones is up to the trainer (``requires_grad_(False)``).

Wiring (SPEC §4, the PyTorch port whose converted checkpoints people use):
frames are normalised by subtracting the per-sample, per-channel mean taken
over both frames together and dividing by 255; these normalised frames are
used everywhere (network inputs, warps, brightness errors). Between C and S,
and S and S, the flow is bilinearly upsampled ×4 and multiplied by 20; the
next net sees [img1, img2, warp(img2, flow), flow / 20, ‖img1 − warp‖]. Into
the fusion net, S2's flow is nearest-upsampled ×4 (× 20) and SD's
nearest-upsampled ×4 (÷ 20); the fusion input is [img1, flow_sd, flow_s2,
‖flow_sd‖, ‖flow_s2‖, err_sd, err_s2] (11 channels). The S stacks of the
Caffe release (FlowNet2-SS, -ss, -sss; no port) put a 6-channel FlowNetS
where the others have FlowNetC and are otherwise wired like CS/CSS, see
:class:`FlowNet2SS`.

Convention: two details differ between the original Caffe networks and the
PyTorch port and are flags on every model, defaulting to the port:

* ``upsample_align_corners=False`` — the port's ``nn.Upsample(mode="bilinear")``
  behaves as align_corners=False on any torch ≥ 0.4; Caffe (and torch ≤ 0.3,
  which the port was written for) interpolate as align_corners=True. It
  affects the bilinear ×4 upsampling only (nearest is unaffected). Which one
  the released weights score better with has not been measured here.
* ``warp_padding="border"`` — the port's Resample2d clamps sampling positions
  to the image; Caffe's FlowWarp fills zeros outside (``"zeros"``). Models
  without a warp (FlowNet2C/S/SD) accept and record the flag but do not use it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import channel_norm, resample2d
from ..ops.resample2d import PADDING_MODES
from .flownet_c import FlowNetC
from .flownet_fusion import FlowNetFusion
from .flownet_s import FlowNetS
from .flownet_sd import FlowNetSD

__all__ = [
    "DIV_FLOW", "FlowNet2", "FlowNet2C", "FlowNet2CS", "FlowNet2CSS", "FlowNet2S",
    "FlowNet2SD", "FlowNet2SS", "FlowNet2SSS", "RGB_MAX", "SIZE_MULTIPLE", "check_image_pair",
]

DIV_FLOW = 20.0
RGB_MAX = 255.0
SIZE_MULTIPLE = 64


def check_image_pair(img1: Tensor, img2: Tensor, who: str = "FlowNet2") -> None:
    """``ValueError`` unless both are (B, 3, H, W) float tensors of one shape, H, W multiples of 64."""
    for name, t in (("img1", img1), ("img2", img2)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{who}: {name} must be a tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != 3:
            raise ValueError(f"{who}: {name} must be (B, 3, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{who}: {name} must be a float tensor (RGB 0..255), got {t.dtype}")
    if img1.shape != img2.shape:
        raise ValueError(f"{who}: img1 and img2 differ in shape: {tuple(img1.shape)} vs {tuple(img2.shape)}")
    if img1.dtype != img2.dtype or img1.device != img2.device:
        raise ValueError(f"{who}: img1 and img2 differ in dtype or device")
    h, w = img1.shape[-2:]
    if h == 0 or w == 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(f"{who}: H and W must be positive multiples of {SIZE_MULTIPLE}, got {w}×{h} "
                         "(use flownet2_core.inference for other sizes)")


class _FlowNet2Mixin:
    """Conventions, input normalisation and the stage glue shared by all models."""

    #: Released name of the architecture ("FlowNet2-CSS", …); set by each class.
    arch_name: str = ""
    #: Pixels per unit of the train-mode outputs: flow / 20 for FlowNetC/S and
    #: the stacks ending in FlowNetS, 20 × flow for FlowNetSD, pixels for
    #: FlowNet2's fusion net. The training loss reads it from the model, so no
    #: caller has to remember which sub-network speaks which unit.
    train_flow_scale: float = DIV_FLOW
    div_flow: float = DIV_FLOW
    rgb_max: float = RGB_MAX

    def _set_conventions(self, upsample_align_corners: bool, warp_padding: str) -> None:
        if not isinstance(upsample_align_corners, bool):
            raise ValueError(f"upsample_align_corners must be a bool, got {upsample_align_corners!r}")
        if warp_padding not in PADDING_MODES:
            raise ValueError(f"warp_padding must be one of {PADDING_MODES}, got {warp_padding!r}")
        self.upsample_align_corners = upsample_align_corners
        self.warp_padding = warp_padding

    def conventions(self) -> dict:
        """The conventions this model runs with (what checkpoints record)."""
        return {
            "input": "RGB 0..255; minus per-sample per-channel mean over both frames; / 255",
            "div_flow": self.div_flow,
            "upsample_align_corners": self.upsample_align_corners,
            "warp_padding": self.warp_padding,
        }

    def _normalize(self, img1: Tensor, img2: Tensor) -> tuple[Tensor, Tensor]:
        check_image_pair(img1, img2, type(self).__name__)
        mean = (img1.mean(dim=(2, 3), keepdim=True) + img2.mean(dim=(2, 3), keepdim=True)) / 2
        return (img1 - mean) / self.rgb_max, (img2 - mean) / self.rgb_max

    def _up_bilinear(self, flow: Tensor) -> Tensor:
        return F.interpolate(flow, scale_factor=4, mode="bilinear",
                             align_corners=self.upsample_align_corners)

    def _standalone_forward(self, img1: Tensor, img2: Tensor, to_pixels: float):
        """One sub-network on the normalised pair: its multi-scale predictions
        in training, else bilinear ×4 of flow2 × ``to_pixels``."""
        x1, x2 = self._normalize(img1, img2)
        flows = self.predict_flows(torch.cat((x1, x2), dim=1))
        if self.training:
            return flows
        return self._up_bilinear(flows[0] * to_pixels)

    @staticmethod
    def _up_nearest(flow: Tensor) -> Tensor:
        return F.interpolate(flow, scale_factor=4, mode="nearest")

    def _brightness_error(self, x1: Tensor, x2: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
        """(warp(img2, flow), ‖img1 − warp‖ over channels)."""
        warped = resample2d(x2, flow, self.warp_padding)
        return warped, channel_norm(x1 - warped)

    def _next_stage_input(self, x1: Tensor, x2: Tensor, flow: Tensor) -> Tensor:
        """12 channels: [img1, img2, warped img2, flow / 20, brightness error]."""
        warped, err = self._brightness_error(x1, x2, flow)
        return torch.cat((x1, x2, warped, flow / self.div_flow, err), dim=1)

    def extra_repr(self) -> str:
        return (f"width={self.width}, batch_norm={self.batch_norm}, "
                f"upsample_align_corners={self.upsample_align_corners}, "
                f"warp_padding={self.warp_padding!r}")


class FlowNet2C(_FlowNet2Mixin, FlowNetC):
    """Stand-alone FlowNetC on an image pair; keys without prefix (FlowNet2-C checkpoint).

    Eval output: bilinear ×4 (flow2 × 20). Train output: (flow2, …, flow6) in flow / 20.
    See the module docstring for the contract and conventions.
    """

    arch_name = "FlowNet2-C"

    def __init__(self, width: float = 1.0, batch_norm: bool = False,
                 upsample_align_corners: bool = False, warp_padding: str = "border") -> None:
        super().__init__(width=width, batch_norm=batch_norm)
        self._set_conventions(upsample_align_corners, warp_padding)

    def forward(self, img1: Tensor, img2: Tensor):  # type: ignore[override]
        return self._standalone_forward(img1, img2, self.div_flow)


class FlowNet2S(_FlowNet2Mixin, FlowNetS):
    """Stand-alone FlowNetS (6 input channels); keys without prefix (FlowNet2-S checkpoint).

    Eval output: bilinear ×4 (flow2 × 20). Train output: (flow2, …, flow6) in flow / 20.
    """

    arch_name = "FlowNet2-S"

    def __init__(self, width: float = 1.0, batch_norm: bool = False,
                 upsample_align_corners: bool = False, warp_padding: str = "border") -> None:
        super().__init__(in_channels=6, width=width, batch_norm=batch_norm)
        self._set_conventions(upsample_align_corners, warp_padding)

    def forward(self, img1: Tensor, img2: Tensor):  # type: ignore[override]
        return self._standalone_forward(img1, img2, self.div_flow)


class FlowNet2SD(_FlowNet2Mixin, FlowNetSD):
    """Stand-alone FlowNetSD; keys without prefix (FlowNet2-SD checkpoint).

    Eval output: bilinear ×4 (flow2 / 20). Train output: (flow2, …, flow6) in 20 × flow.
    """

    arch_name = "FlowNet2-SD"
    train_flow_scale = 1.0 / DIV_FLOW

    def __init__(self, width: float = 1.0, batch_norm: bool = False,
                 upsample_align_corners: bool = False, warp_padding: str = "border") -> None:
        super().__init__(width=width, batch_norm=batch_norm)
        self._set_conventions(upsample_align_corners, warp_padding)

    def forward(self, img1: Tensor, img2: Tensor):  # type: ignore[override]
        # FlowNetSD predicts 20 × the flow, so divide (as FlowNet2 does with its
        # SD branch). The PyTorch port's stand-alone FlowNet2SD multiplies by
        # div_flow here instead, which makes its output 400× too large
        # (NVIDIA/flownet2-pytorch issue #37); this is the corrected version.
        return self._standalone_forward(img1, img2, 1.0 / self.div_flow)


class _FlowNetStack(_FlowNet2Mixin, nn.Module):
    """A first network on the image pair, then ``stacked`` FlowNetS refining its flow.

    The first network is FlowNetC (``flownetc``) or, in the S stacks, a
    6-channel FlowNetS (``flownets_0``); the refining nets are 12-channel
    FlowNetS named ``flownets_1``, ``flownets_2``, … in every stack, so the
    Caffe prefix ``netK_`` is always ``flownets_{K-1}``. Between nets the flow
    is bilinearly upsampled ×4 (× 20) and the next net sees
    [img1, img2, warp(img2, flow), flow / 20, brightness error]. Eval output:
    the last net's flow2 × 20 upsampled ×4, bilinear or nearest
    (``nearest_output``); train output: the last net's (flow2, …, flow6) in
    flow / 20.
    """

    #: Attribute name of the first network: "flownetc" (FlowNetC) or "flownets_0" (FlowNetS, 6 ch).
    first_net: ClassVar[str] = "flownetc"
    #: How many 12-channel FlowNetS follow it (flownets_1 … flownets_<stacked>).
    stacked: ClassVar[int] = 1
    #: Eval output upsampled nearest (the port's FlowNet2-CSS) instead of bilinear.
    nearest_output: ClassVar[bool] = False

    def __init__(self, width: float = 1.0, batch_norm: bool = False,
                 upsample_align_corners: bool = False, warp_padding: str = "border") -> None:
        super().__init__()
        self.width = width
        self.batch_norm = batch_norm
        self._set_conventions(upsample_align_corners, warp_padding)
        if self.first_net == "flownetc":
            first: nn.Module = FlowNetC(width=width, batch_norm=batch_norm)
        else:
            first = FlowNetS(in_channels=6, width=width, batch_norm=batch_norm)
        # Registration order = state-dict order: first net, then flownets_1, flownets_2, …
        self.add_module(self.first_net, first)
        for k in range(1, self.stacked + 1):
            self.add_module(f"flownets_{k}", FlowNetS(in_channels=12, width=width,
                                                      batch_norm=batch_norm))

    def _last_flows(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, ...]:
        """The last net's (flow2, …, flow6), in flow / 20, on the normalised pair."""
        flows = getattr(self, self.first_net)(torch.cat((x1, x2), 1))
        for k in range(1, self.stacked + 1):
            flow = self._up_bilinear(flows[0] * self.div_flow)
            flows = getattr(self, f"flownets_{k}")(self._next_stage_input(x1, x2, flow))
        return flows

    def forward(self, img1: Tensor, img2: Tensor):
        x1, x2 = self._normalize(img1, img2)
        flows = self._last_flows(x1, x2)
        if self.training:
            return flows
        flow = flows[0] * self.div_flow
        return self._up_nearest(flow) if self.nearest_output else self._up_bilinear(flow)


class FlowNet2CS(_FlowNetStack):
    """FlowNetC followed by FlowNetS (``flownetc.``, ``flownets_1.``; FlowNet2-CS checkpoint).

    Eval output: bilinear ×4 (S1's flow2 × 20). Train output: S1's (flow2, …, flow6) in flow / 20.
    """

    arch_name = "FlowNet2-CS"


class FlowNet2CSS(_FlowNetStack):
    """FlowNetC, FlowNetS, FlowNetS (``flownetc.``, ``flownets_1.``, ``flownets_2.``).

    Checkpoints FlowNet2-CSS and FlowNet2-CSS-ft-sd. Eval output: nearest ×4
    (S2's flow2 × 20). Train output: S2's (flow2, …, flow6) in flow / 20.
    """

    arch_name = "FlowNet2-CSS"
    stacked = 2
    nearest_output = True


class FlowNet2SS(_FlowNetStack):
    """FlowNetS on the image pair, then FlowNetS on the stacked input (``flownets_0.``, ``flownets_1.``).

    The Caffe release's FlowNet2-SS and FlowNet2-ss (width 3/8); no PyTorch
    port exists. ``flownets_0`` is a stand-alone-style FlowNetS (conv1 sees the
    6 channels [img1, img2], as FlowNet2-S); ``flownets_1`` is the 12-channel
    FlowNetS of FlowNet2-CS/-CSS, with the same keys and shapes. Wiring from
    FlowNet2-ss_deploy.prototxt.template: the first net's flow2 × 20 is
    upsampled bilinearly (Caffe's Accum layer) and warps img2; the second net
    sees [img1, img2, warped, flow × 0.05, ‖img1 − warped‖]. Eval output:
    bilinear ×4 (the second net's flow2 × 20), as the deploy file's final
    LINEAR Resample (the port's nearest output is a FlowNet2-CSS choice).
    Train output: the second net's (flow2, …, flow6) in flow / 20.
    """

    arch_name = "FlowNet2-SS"
    first_net = "flownets_0"


class FlowNet2SSS(_FlowNetStack):
    """Three FlowNetS (``flownets_0.``, ``flownets_1.``, ``flownets_2.``): FlowNet2-sss of the Caffe release.

    As :class:`FlowNet2SS` with one more 12-channel FlowNetS (its prototxt was
    not seen; assumed wired like FlowNet2-ss). Eval output: bilinear ×4 (the
    third net's flow2 × 20); train output: its (flow2, …, flow6) in flow / 20.
    """

    arch_name = "FlowNet2-SSS"
    first_net = "flownets_0"
    stacked = 2


class FlowNet2(FlowNet2CSS):
    """FlowNet 2.0: CSS and SD branches merged by FlowNetFusion (FlowNet2 checkpoint).

    Sub-networks ``flownetc``, ``flownets_1``, ``flownets_2`` (the CSS branch,
    registered first by :class:`FlowNet2CSS`, so state-dict keys keep the
    released order), ``flownets_d``, ``flownetfusion``. Eval output: the fusion
    net's flow0, in pixels. Train output: the fusion net's (flow0, flow1,
    flow2), in pixels.
    """

    arch_name = "FlowNet2"
    train_flow_scale = 1.0

    def __init__(self, width: float = 1.0, batch_norm: bool = False,
                 upsample_align_corners: bool = False, warp_padding: str = "border") -> None:
        super().__init__(width, batch_norm, upsample_align_corners, warp_padding)
        self.flownets_d = FlowNetSD(width=width, batch_norm=batch_norm)
        self.flownetfusion = FlowNetFusion(width=width, batch_norm=batch_norm)

    def forward(self, img1: Tensor, img2: Tensor):
        x1, x2 = self._normalize(img1, img2)
        flow_s2 = self._up_nearest(self._last_flows(x1, x2)[0] * self.div_flow)
        _, err_s2 = self._brightness_error(x1, x2, flow_s2)
        # FlowNetSD predicts 20 × the flow: divide (SPEC §4, as Caffe and the port do).
        flow_sd = self._up_nearest(self.flownets_d(torch.cat((x1, x2), 1))[0] / self.div_flow)
        _, err_sd = self._brightness_error(x1, x2, flow_sd)
        fusion_in = torch.cat((x1, flow_sd, flow_s2, channel_norm(flow_sd), channel_norm(flow_s2),
                               err_sd, err_s2), dim=1)
        flows = self.flownetfusion(fusion_in)
        if self.training:
            return flows
        return flows[0]
