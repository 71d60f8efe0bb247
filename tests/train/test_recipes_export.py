"""Recipes end to end at a tiny scale, and the float16 export in shards."""

import pytest
import torch

from flownet2_core.models.builders import flownet2_ss
from flownet2_core.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from flownet2_core.train.export import export_half, join_shards
from flownet2_core.train.recipes import RECIPES, recipe_stages, run_recipe
from flownet2_core.train.trainer import StageConfig

TINY = 1 / 16


def _base(**kw):
    d = dict(width=TINY, iterations=1, batch_size=8, size=(64, 96), crop=(64, 64), val_size=(64, 64),
             val_batches=1, texture_count=4, progress=False, motion_scale=0.3)
    d.update(kw)
    return StageConfig(**d)


def test_recipe_stages_chain_and_freeze(tmp_path):
    stages = recipe_stages("flownet2", _base(), tmp_path)
    names = [s for s, _, _ in stages]
    assert names == ["c-chairs", "c-things", "cs-chairs", "cs-things", "css-chairs", "css-things",
                     "css-ft-sd", "sd", "fusion"]
    cfg = dict((s, c) for s, c, _ in stages)
    assert cfg["c-chairs"].schedule == "long" and cfg["c-things"].schedule == "fine"
    assert cfg["cs-chairs"].freeze == ("flownetc",)
    assert cfg["css-ft-sd"].data == "things:2,sdhom:6" and cfg["css-ft-sd"].loss == "robust"
    assert cfg["fusion"].init == (str(tmp_path / "css-ft-sd" / "model.pth.tar"),
                                  str(tmp_path / "sd" / "model.pth.tar"))
    assert cfg["fusion"].freeze == ("flownetc", "flownets_1", "flownets_2", "flownets_d")
    mapped = recipe_stages("flownet2-c", _base(), tmp_path, data_map={"chairs": "flyingchairs"})
    assert mapped[0][1].data == "flyingchairs:1"
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_stages("flownet3", _base(), tmp_path)


def test_small_displacement_stages_train_in_float32_under_bf16(tmp_path):
    """bf16 is the caller's choice for the bulk stages; ft-sd and fusion stay float32."""
    for recipe in ("flownet2", "flownet2-ss-ft-sd"):
        cfg = {s: c for s, c, _ in recipe_stages(recipe, _base(precision="bf16"), tmp_path)}
        fp32 = {s for s, c in cfg.items() if c.precision == "fp32"}
        assert fp32 == ({"css-ft-sd", "fusion"} if recipe == "flownet2" else {"ss-ft-sd"})
        assert all(c.precision == "bf16" for s, c in cfg.items() if s not in fp32)
    plain = recipe_stages("flownet2-ss-ft-sd", _base(), tmp_path)
    assert {c.precision for _, c, _ in plain} == {"fp32"}



def test_recipe_init_comes_first_and_the_recipes_own_warm_starts_win(tmp_path):
    """``init`` (e.g. the shipped model) seeds every stage; where a stage's recipe warm start
    fills the same sub-network (ss-chairs' first net from s-things), the recipe's wins."""
    from flownet2_core.models.builders import build_model
    from flownet2_core.train.trainer import load_init

    base = _base()
    old = build_model("FlowNet2-SS", width=TINY)
    save_checkpoint(tmp_path / "old.pth.tar", old)
    stages = {s: c for s, c, _ in recipe_stages("flownet2-ss", base, tmp_path / "run",
                                                init=(str(tmp_path / "old.pth.tar"),))}
    assert stages["s-chairs"].init == (str(tmp_path / "old.pth.tar"),)
    assert stages["ss-chairs"].init == (str(tmp_path / "old.pth.tar"),
                                        str(tmp_path / "run" / "s-things" / "model.pth.tar"))
    s_things = build_model("FlowNet2-S", width=TINY)
    (tmp_path / "run" / "s-things").mkdir(parents=True)
    save_checkpoint(tmp_path / "run" / "s-things" / "model.pth.tar", s_things)
    ss = build_model("FlowNet2-SS", width=TINY)
    assert load_init(ss, list(stages["ss-chairs"].init)) == ["flownets_0", "flownets_1"]
    sd = ss.state_dict()
    assert all(torch.equal(sd["flownets_0." + k], v) for k, v in s_things.state_dict().items())
    assert all(torch.equal(sd[k], v) for k, v in old.state_dict().items() if k.startswith("flownets_1."))


def test_recipe_checks_every_stage_before_training_the_first(tmp_path):
    """A batch of 4 cannot hold the ft-sd mix (2 things + 6 sdhom): refused before s-chairs runs."""
    with pytest.raises(ValueError, match="not a multiple of the mix 'things:2,sdhom:6'"):
        run_recipe("flownet2-ss-ft-sd", _base(batch_size=4), tmp_path / "run", log=lambda m: None)
    assert not (tmp_path / "run").exists()

@pytest.mark.slow
def test_flownet2_recipe_end_to_end_tiny(tmp_path):
    """Every stage of the full FlowNet2 recipe, one iteration each; the last stage trains only
    the fusion net on top of the ft-sd stack and SD, which stay as they were."""
    results = run_recipe("flownet2", _base(), tmp_path, log=lambda m: None)
    assert [s for s, _ in results] == [s for s, _ in RECIPES["flownet2"]]
    final = load_checkpoint(results[-1][1].model_path)
    assert type(final).__name__ == "FlowNet2"
    ftsd = read_checkpoint(tmp_path / "css-ft-sd" / "model.pth.tar")["state_dict"]
    sd = read_checkpoint(tmp_path / "sd" / "model.pth.tar")["state_dict"]
    fs = final.state_dict()
    assert all(torch.equal(fs[k], v) for k, v in ftsd.items())
    assert all(torch.equal(fs["flownets_d." + k], v) for k, v in sd.items())
    meta = read_checkpoint(results[-1][1].model_path)["flownet2"]["training"]
    assert meta["trained"] == ["flownetfusion"] and meta["iterations"] == 1
    # Re-running the finished recipe trains nothing more.
    again = run_recipe("flownet2", _base(), tmp_path, stages=["fusion"], log=lambda m: None)
    assert again[0][1].iterations == 1


def test_export_half_shards_round_trip(tmp_path):
    model = flownet2_ss(width=TINY)
    save_checkpoint(tmp_path / "m.pth.tar", model, stage="x")
    whole = export_half(tmp_path / "m.pth.tar", tmp_path / "whole")
    assert [p.name for p in whole] == ["whole.pth"]
    parts = export_half(tmp_path / "m.pth.tar", tmp_path / "part", shard_mb=0.02)
    assert len(parts) > 2 and all(p.stat().st_size < 0.02e6 + 60_000 for p in parts)
    joined = join_shards(list(reversed(parts)))
    ref = read_checkpoint(whole[0])
    assert list(joined["state_dict"]) == list(ref["state_dict"])
    assert all(torch.equal(joined["state_dict"][k], v) for k, v in ref["state_dict"].items())
    assert all(v.dtype == torch.float16 for v in joined["state_dict"].values())
    assert joined["flownet2"]["stage"] == "x"
    # float16 weights load into the float32 model within half precision
    back = flownet2_ss(width=TINY)
    back.load_state_dict({k: v.float() for k, v in joined["state_dict"].items()})
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="not one complete set"):
        join_shards(parts[:-1])
