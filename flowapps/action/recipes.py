"""Published training recipes for the two streams, as named sets of defaults.

``flownet2 action train --recipe tsn|simonyan`` fills in every setting a recipe fixes; any
option given on the command line (or keyword given to :func:`recipe_config`) still wins.
Solvers count iterations at a batch size; :func:`recipe_config` turns them into epochs of
the training list actually used, so that the network sees as many clips as in the paper
(``epochs = ⌈iterations × batch / videos⌉``, milestones rounded), and keeps the paper's
learning rate and batch size.

``tsn``: Temporal Segment Networks (Wang et al., ECCV 2016), the UCF101 solvers and
train_val prototxts of yjxiong/temporal-segment-networks (BN-Inception, 4 GPUs × 32 clips
per iteration = 128, ``iter_size 1``, models/ucf101/tsn_bn_inception_{rgb,flow}_*.prototxt
at the repository's last commit, 2016-09-14):

===================  ===========================  ===========================
                     RGB (spatial)                flow (temporal)
===================  ===========================  ===========================
base lr, policy      0.001, ×0.1 every 1,500      0.005, ×0.1 at 10,000, 16,000
iterations           3,500                        18,000
momentum, decay      0.9, 5e-4                    0.9, 5e-4
gradient clip        40                           20
segments, length     3, 1 frame                   3, 5 flow fields
scale jitter         {1, .875, .75, .66}          {1, .875, .75}
corner crops, flip   yes (max distortion 1), yes  yes, yes
dropout              0.8                          0.7
first conv lr mult   1 (bias 2)                   5 (bias 10)
batch norm           partial: only the first BN layer learns (the other 68 frozen)
biases               lr × 2, no weight decay (Caffe's convention, every layer)
flow input           —                            (p − 128), no mean subtraction
===================  ===========================  ===========================

The issue that asked for this recipe gave the flow stream's scale jitter as
{1, .875, .75, .66}; the prototxt says {1, .875, .75}, and that is what is used.

``simonyan``: the original two-stream ConvNets (Simonyan & Zisserman, NIPS 2014, §5 and
Table 1): batch 256, momentum 0.9, lr 10⁻²; from scratch (temporal) ×0.1 at 50K and 70K
iterations, stop at 80K; fine-tuned (spatial, ImageNet init) ×0.1 at 14K, stop at 20K;
temporal input L = 10 flow fields with mean-flow subtraction, one random 224 crop with a
flip (no segments, no multi-scale jitter); dropout 0.9 for the net trained from scratch
(the paper's Table 1a shows it helps there), 0.5 for the fine-tuned spatial net. Its
networks (CNN-M) are not built here: the recipe runs with ``--arch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RECIPES", "Solver", "recipe_config", "recipe_table"]


@dataclass(frozen=True)
class Solver:
    """One stream's published settings (iterations at ``batch_size`` clips per iteration)."""

    lr: float
    milestones: tuple[int, ...]          # iterations where lr is multiplied by gamma
    iterations: int
    batch_size: int
    clip_grad: float | None
    new_length: int
    num_segments: int
    crop: str                            # "multiscale" (corner crops + scale jitter) or "random"
    scales: tuple[float, ...]
    dropout: float
    mean_subtraction: bool
    first_conv_lr_mult: float = 1.0
    bias_lr_mult: float = 1.0            # Caffe: 2, and no weight decay on biases
    bias_decay: bool = True
    partial_bn: bool = False
    momentum: float = 0.9
    weight_decay: float = 5e-4
    gamma: float = 0.1


RECIPES: dict[str, dict[str, Solver]] = {
    "tsn": {
        "rgb": Solver(lr=0.001, milestones=(1500, 3000), iterations=3500, batch_size=128, clip_grad=40,
                      new_length=1, num_segments=3, crop="multiscale", scales=(1.0, 0.875, 0.75, 0.66),
                      dropout=0.8, mean_subtraction=False, first_conv_lr_mult=1.0, bias_lr_mult=2.0,
                      bias_decay=False, partial_bn=True),
        "flow": Solver(lr=0.005, milestones=(10000, 16000), iterations=18000, batch_size=128, clip_grad=20,
                       new_length=5, num_segments=3, crop="multiscale", scales=(1.0, 0.875, 0.75),
                       dropout=0.7, mean_subtraction=False, first_conv_lr_mult=5.0, bias_lr_mult=2.0,
                       bias_decay=False, partial_bn=True),
    },
    "simonyan": {
        "rgb": Solver(lr=0.01, milestones=(14000,), iterations=20000, batch_size=256, clip_grad=None,
                      new_length=1, num_segments=1, crop="random", scales=(1.0,), dropout=0.5,
                      mean_subtraction=False),
        "flow": Solver(lr=0.01, milestones=(50000, 70000), iterations=80000, batch_size=256, clip_grad=None,
                       new_length=10, num_segments=1, crop="random", scales=(1.0,), dropout=0.9,
                       mean_subtraction=True),
    },
}


def _epochs(iterations: int, batch_size: int, videos: int) -> float:
    return iterations * batch_size / max(1, videos)


def recipe_config(name: str, modality: str, num_videos: int) -> dict:
    """The :class:`~flowapps.action.train.TrainConfig` fields recipe ``name`` sets for
    ``modality`` (``rgb``/``flow``) with ``num_videos`` training videos (one pass = one
    epoch): its solver with iterations turned into epochs (see module docstring)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    if modality not in ("rgb", "flow"):
        raise ValueError(f"modality must be 'rgb' or 'flow', got {modality!r}")
    if num_videos < 1:
        raise ValueError("the training list is empty")
    s = RECIPES[name][modality]
    epochs = max(1, math.ceil(_epochs(s.iterations, s.batch_size, num_videos)))
    milestones = tuple(sorted({max(1, min(epochs, round(_epochs(m, s.batch_size, num_videos))))
                               for m in s.milestones}))
    return {"recipe": name, "lr": s.lr, "momentum": s.momentum, "weight_decay": s.weight_decay,
            "schedule": "step", "milestones": milestones, "gamma": s.gamma, "epochs": epochs,
            "batch_size": s.batch_size, "clip_grad": s.clip_grad, "new_length": s.new_length,
            "num_segments": s.num_segments, "crop": s.crop, "scales": s.scales, "dropout": s.dropout,
            "mean_subtraction": s.mean_subtraction, "first_conv_lr_mult": s.first_conv_lr_mult,
            "bias_lr_mult": s.bias_lr_mult, "bias_decay": s.bias_decay, "partial_bn": s.partial_bn}


def recipe_table(name: str, num_videos: int) -> str:
    """A Markdown table of both streams' settings under recipe ``name`` (for logs and docs)."""
    rows = {m: recipe_config(name, m, num_videos) for m in ("rgb", "flow")}
    keys = [k for k in rows["rgb"] if k != "recipe"]
    lines = [f"| {name} ({num_videos} videos) | rgb | flow |", "|---|---|---|"]
    lines += [f"| {k} | {rows['rgb'][k]} | {rows['flow'][k]} |" for k in keys]
    return "\n".join(lines) + "\n"
