"""Two-stream networks: backbone → segment consensus → head (mmaction2's recognizer).

Backbones are torchvision's ResNets and VGG-16 (first convolution rebuilt for the
stream's channel count, ImageNet head removed) and :class:`TinyBackbone`, a five-layer
network for tests and demos on small generated clips.

ImageNet initialisation comes only from a local file (``pretrained=FILE``: a torchvision
state dict of the same architecture, e.g. ``resnet50-11ad3fa6.pth``); nothing is
downloaded. For the temporal stream the file's first convolution is adapted by TSN's
*cross-modality initialisation*: average its kernels over the three RGB inputs and
replicate the average over the 2L flow channels. Without a file the network starts
from random weights, and :func:`build_recognizer` says so in the log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from . import ARCHS

__all__ = ["ARCHS", "TinyBackbone", "Recognizer", "build_backbone", "build_recognizer",
           "cross_modality_weight", "load_imagenet_state_dict", "default_dropout"]


def default_dropout(modality: str) -> float:
    """TSN's dropout before the classifier: 0.8 for the spatial stream, 0.7 for the temporal."""
    return 0.8 if modality == "rgb" else 0.7


class TinyBackbone(nn.Module):
    """A small conv net for tests and demos: (N, C, H, W) → (N, 4·width) features.

    About 9 M multiply-adds for a 20 × 48 × 48 input at the default width 16
    (ResNet-18 needs 1.8 G at 224 × 224).

    Five 3×3 convolutions (the first 5×5), strides 2, 1, 2, 2, 1, each followed by
    GroupNorm and ReLU, then global average pooling. GroupNorm, not BatchNorm, so a
    sample's features never depend on the rest of its batch: a DDP run with the batch
    split over processes computes the same function as one process.
    """

    def __init__(self, in_channels: int, width: int = 16):
        super().__init__()
        chans = [in_channels, width, width, 2 * width, 4 * width, 4 * width]
        strides = [2, 1, 2, 2, 1]
        layers: list[nn.Module] = []
        for i, s in enumerate(strides):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(chans[i], chans[i + 1], k, s, k // 2, bias=False),
                       nn.GroupNorm(8, chans[i + 1]), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.out_features = chans[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class Recognizer(nn.Module):
    """Backbone → segment consensus (average) → head (dropout + linear).

    Input ``(N, K, C, H, W)`` (K segments) or ``(N, C, H, W)`` (K = 1); output logits
    ``(N, num_classes)``. Consensus averages the K feature vectors, which with a linear
    head equals TSN's average of the K segments' class scores.
    """

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"need at least 2 classes, got {num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat_dim, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.01)  # TSN's head initialisation
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5:
            raise ValueError(f"expected (N, K, C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
        n, k = x.shape[:2]
        feats = self.backbone(x.flatten(0, 1))            # (N·K, F)
        feats = feats.view(n, k, -1).mean(dim=1)           # segment consensus
        return self.fc(self.dropout(feats))


def load_imagenet_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A torchvision ImageNet state dict from a local file (``torch.load(weights_only=True)``).

    Accepts a bare state dict or one nested under ``state_dict``/``model``; strips
    DataParallel's ``module.`` prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such pretrained weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — any unpickling problem is a bad file
        raise ValueError(f"{path}: not a PyTorch state dict ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def cross_modality_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """TSN's cross-modality initialisation of a first convolution.

    ``weight`` (O, 3, k, k) from ImageNet → (O, in_channels, k, k): the mean over the
    RGB inputs, replicated over ``in_channels``.
    """
    if weight.dim() != 4:
        raise ValueError(f"expected a conv weight (O, I, k, k), got shape {tuple(weight.shape)}")
    return weight.mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1).contiguous()


def _first_conv_name(arch: str) -> str:
    return "features.0" if arch.startswith("vgg") else "conv1"


def build_backbone(arch: str, in_channels: int, pretrained: str | os.PathLike | None = None,
                   log: Callable[[str], None] = print) -> tuple[nn.Module, int]:
    """(backbone, feature dimension): ``(N, in_channels, H, W)`` → ``(N, F)``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    if arch == "tiny":
        if pretrained:
            raise ValueError("the tiny backbone has no ImageNet weights; drop --pretrained")
        net = TinyBackbone(in_channels)
        log(f"tiny: random initialisation (a test-size backbone without ImageNet weights), "
            f"{in_channels} input channels")
        return net, net.out_features
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    conv_name = _first_conv_name(arch)
    parent = model.features if arch.startswith("vgg") else model
    old = model.features[0] if arch.startswith("vgg") else model.conv1
    if in_channels != 3:
        new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                        bias=old.bias is not None)
        setattr(parent, "0" if arch.startswith("vgg") else "conv1", new)
    if pretrained:
        sd = load_imagenet_state_dict(pretrained)
        key = f"{conv_name}.weight"
        if key not in sd:
            raise ValueError(f"{pretrained}: no {key!r}; is it a torchvision {arch} state dict?")
        if in_channels != 3:
            if sd[key].shape[1] != 3:
                raise ValueError(f"{pretrained}: {key} has {sd[key].shape[1]} input channels, expected 3 (RGB)")
            sd[key] = cross_modality_weight(sd[key], in_channels)
        own = model.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        wrong = [k for k in own if k in sd and sd[k].shape != own[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"{pretrained}: does not match torchvision {arch} (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}, other shapes {wrong[:3]})")
        model.load_state_dict(sd)
        how = "cross-modality initialisation of conv1" if in_channels != 3 else "ImageNet weights"
        log(f"{arch}: initialised from {pretrained} ({how}, {in_channels} input channels)")
    else:
        log(f"{arch}: random initialisation (no --pretrained file): expect accuracies well below "
            f"the ImageNet-initialised numbers in the literature")
    if arch.startswith("vgg"):
        # Keep fc6/fc7; the recognizer's head (dropout + linear) replaces dropout + fc8.
        model.classifier = model.classifier[:5]
        dim = 4096
    else:
        dim = model.fc.in_features
        model.fc = nn.Identity()
    return model, dim


def build_recognizer(arch: str, num_classes: int, in_channels: int, *, dropout: float = 0.5,
                     pretrained: str | os.PathLike | None = None,
                     log: Callable[[str], None] = print) -> Recognizer:
    """A :class:`Recognizer` for one stream (``in_channels`` 3 for rgb, 2L for flow)."""
    backbone, dim = build_backbone(arch, in_channels, pretrained, log)
    return Recognizer(backbone, dim, num_classes, dropout)
