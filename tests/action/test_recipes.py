"""The published recipes (``--recipe tsn|simonyan``): their numbers, the TSN parameter groups,
partial batch norm, and 0-based (denseflow) stack folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn

from flowapps.action.commands import ACTION
from flowapps.action.models import build_recognizer
from flowapps.action.recipes import RECIPES, recipe_config
from flowapps.action.train import TrainConfig, _apply_partial_bn, frozen_batchnorms, param_groups
from flownet2_core.cli import build_parser


def run(*argv):
    args = build_parser({"action": ACTION}).parse_args(["action", *map(str, argv)])
    return args._run(args)


def test_tsn_solver_iterations_become_epochs_of_the_training_list():
    """UCF101 split 1 (9,537 training videos), TSN's 128 clips per iteration, by hand:
    flow 18,000 its → ⌈241.6⌉ = 242 epochs, ×0.1 at 10,000 / 16,000 → 134 / 215;
    rgb 3,500 → 47 epochs, steps every 1,500 → 20 / 40."""
    flow = recipe_config("tsn", "flow", 9537)
    assert (flow["epochs"], flow["milestones"], flow["lr"], flow["batch_size"]) == (242, (134, 215), 0.005, 128)
    assert (flow["clip_grad"], flow["new_length"], flow["num_segments"], flow["dropout"]) == (20, 5, 3, 0.7)
    assert flow["scales"] == (1.0, 0.875, 0.75) and flow["crop"] == "multiscale"
    assert flow["first_conv_lr_mult"] == 5 and flow["bias_lr_mult"] == 2 and flow["bias_decay"] is False
    assert flow["partial_bn"] is True and flow["mean_subtraction"] is False
    rgb = recipe_config("tsn", "rgb", 9537)
    assert (rgb["epochs"], rgb["milestones"], rgb["lr"], rgb["clip_grad"]) == (47, (20, 40), 0.001, 40)
    assert rgb["scales"] == (1.0, 0.875, 0.75, 0.66) and rgb["first_conv_lr_mult"] == 1 and rgb["dropout"] == 0.8
    sim = recipe_config("simonyan", "flow", 9537)  # 80K its × 256 → 2,148 epochs, steps 50K / 70K
    assert (sim["epochs"], sim["milestones"], sim["new_length"], sim["mean_subtraction"]) == (
        2148, (1342, 1879), 10, True)
    assert sim["partial_bn"] is False and sim["num_segments"] == 1
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_config("i3d", "flow", 10)


def _tsn_flow_model():
    cfg = TrainConfig(stacks="s", out="o", **{k: v for k, v in recipe_config("tsn", "flow", 100).items()})
    model = build_recognizer("resnet18", 101, 10, dropout=cfg.dropout, log=lambda _: None)
    return cfg, model


def test_tsn_parameter_groups_are_what_the_prototxt_says():
    """First conv weight lr × 5; biases × 2 and no decay; the first BN layer × 1 and no
    decay; every other BN layer frozen and in no group; the rest × 1 with decay."""
    cfg, model = _tsn_flow_model()
    for bn in frozen_batchnorms(model):
        bn.requires_grad_(False)
    groups = param_groups(model, cfg)
    where = {id(p): (g["lr_mult"], g["weight_decay"]) for g in groups for p in g["params"]}
    bb = model.backbone
    assert where[id(bb.conv1.weight)] == (5.0, 5e-4)
    assert where[id(model.fc.bias)] == (2.0, 0.0) and where[id(model.fc.weight)] == (1.0, 5e-4)
    assert where[id(bb.bn1.weight)] == (1.0, 0.0) and where[id(bb.bn1.bias)] == (1.0, 0.0)
    assert where[id(bb.layer1[0].conv1.weight)] == (1.0, 5e-4)
    frozen = frozen_batchnorms(model)
    assert len(frozen) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) - 1 and bb.bn1 not in frozen
    assert all(id(p) not in where for bn in frozen for p in bn.parameters())
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == set(where)


def test_partial_bn_keeps_the_frozen_statistics():
    cfg, model = _tsn_flow_model()
    before = {n: b.clone() for n, b in model.named_buffers() if "running_mean" in n}
    model.train()
    _apply_partial_bn(model, cfg)
    model(torch.randn(2, 10, 64, 64))
    after = dict(model.named_buffers())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {"backbone.bn1.running_mean"}
    assert model.backbone.bn1.training and not model.backbone.layer1[0].bn1.training


def test_recipe_from_the_command_line_with_an_override(small_stacks, tmp_path):
    """--recipe tsn fills the settings (epochs from the 9 training videos), --epochs and
    --batch-size given win; the run trains and records its recipe and parameter groups."""
    assert run("train", "--stacks", small_stacks, "--modality", "flow", "-o", tmp_path / "f", "--recipe", "tsn",
               "--arch", "tiny", "--crop-size", "32", "--epochs", "1", "--batch-size", "2", "--workers", "0",
               "--no-progress") == 0
    cfg = json.loads((tmp_path / "f" / "config.json").read_text())
    assert cfg["recipe"] == "tsn" and cfg["epochs"] == 1 and cfg["batch_size"] == 2
    assert (cfg["lr"], cfg["clip_grad"], cfg["new_length"], cfg["num_segments"]) == (0.005, 20, 5, 3)
    assert cfg["first_conv_lr_mult"] == 5 and cfg["partial_bn"] is True and cfg["scales"] == [1.0, 0.875, 0.75]
    # Without --epochs, TSN's 18,000 iterations × 128 clips over the 9 training videos.
    args = build_parser({"action": ACTION}).parse_args(
        ["action", "train", "--stacks", str(small_stacks), "--modality", "flow", "-o", str(tmp_path / "g"),
         "--recipe", "tsn"])
    from flowapps.action.commands import _train_config

    full = _train_config(args, TrainConfig)
    assert full.epochs == 256000 and full.milestones == (142222, 227556)  # 1,280,000 / 9, 2,048,000 / 9


def test_zero_based_denseflow_folder_reads_with_start_index(small_stacks, tmp_path):
    """The same stacks renumbered from 0 (today's open-mmlab/denseflow) give the same input
    with --start-index 0; read as 1-based they fail with a line saying how to read them."""
    from flowapps.action.data import ClipDataset, StreamConfig, read_annotations, split_list

    zero = tmp_path / "zero"
    shutil.copytree(small_stacks, zero)
    for folder in {p.parent for p in zero.rglob("flow_x_*.jpg")}:
        for prefix in ("flow_x_", "flow_y_", "img_"):
            files = sorted(folder.glob(f"{prefix}*.jpg"))
            for f in files:  # ascending: k → k-1 never overwrites an unmoved file
                k = int(f.stem[len(prefix):])
                f.rename(folder / f"{prefix}{k - 1:05d}.jpg")
    recs = read_annotations(split_list(small_stacks, 1, "test", "flow"))
    for modality in ("flow", "rgb"):
        one = ClipDataset(recs, small_stacks, StreamConfig(modality=modality, new_length=4 if modality == "flow" else 1,
                                                            crop_size=32), train=False)
        cfg0 = StreamConfig(modality=modality, new_length=4 if modality == "flow" else 1, crop_size=32, start_index=0)
        x1, y1 = one[0]
        x0, y0 = ClipDataset(recs, zero, cfg0, train=False)[0]
        assert y0 == y1 and torch.equal(x0, x1)
    from flowapps.action.data import load_rgb
    from flowapps.stacks.rawframes import count_outputs, read_flow_stack

    folder = zero / recs[0].frame_dir
    frames, fields = count_outputs(folder)
    with pytest.raises(FileNotFoundError, match="numbers its files from 0 \\(pass --start-index 0\\)"):
        read_flow_stack(folder, 1, fields)  # read 1-based, the last field is missing
    with pytest.raises(FileNotFoundError, match="numbers its files from 0"):
        load_rgb(folder, frames)
    with pytest.raises(FileNotFoundError, match="numbers its files from 1 \\(pass --start-index 1\\)"):
        read_flow_stack(small_stacks / recs[0].frame_dir, 1, 1, first=0)


def test_every_recipe_covers_both_streams():
    for name, streams in RECIPES.items():
        assert set(streams) == {"rgb", "flow"}, name
        for modality in streams:
            TrainConfig(stacks="s", out="o", modality=modality, **recipe_config(name, modality, 50))
    assert np.isclose(RECIPES["tsn"]["flow"].lr / RECIPES["tsn"]["rgb"].lr, 5)


def test_bound_comes_from_the_manifest_or_is_given():
    from flowapps.action.train import stream_config

    cfg = TrainConfig(stacks="s", out="o")
    assert stream_config(cfg, {"bound": 15.0}).bound == 15.0 and stream_config(cfg, None).bound == 20.0
    given = TrainConfig(stacks="s", out="o", bound=10.0)
    assert stream_config(given, None).bound == 10.0 and stream_config(given, None).flow_scale == 10.0
    with pytest.raises(ValueError, match="--bound 10 disagrees with the stacks' manifest.json \\(bound 20\\)"):
        stream_config(given, {"bound": 20.0})
