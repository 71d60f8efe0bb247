"""On-the-fly synthetic training data: exact flow, visibility, kinds, determinism."""

import pytest
import torch

from flownet2_core.ops import resample2d
from flownet2_core.train.synthetic import KINDS, PHOTOS, ShapeBank, SyntheticFlow, TextureBank

SIZE = (96, 128)


@pytest.fixture(scope="module")
def textures():
    return TextureBank.build("train", count=8, size=64, seed=0)


def _gen(kind, textures, **kw):
    kw.setdefault("size", SIZE)
    kw.setdefault("batch_size", 4)
    return SyntheticFlow(kind, textures=textures, **kw)


def test_batch_layout(textures):
    b = _gen("chairs", textures).batch(0)
    assert b["img1"].shape == b["img2"].shape == (4, 3, *SIZE) and b["img1"].dtype == torch.float32
    assert b["flow"].shape == (4, 2, *SIZE) and b["valid"].shape == (4, 1, *SIZE)
    assert b["valid"].dtype == torch.bool
    assert 0 <= float(b["img1"].min()) and float(b["img1"].max()) <= 255
    assert torch.isfinite(b["flow"]).all()
    assert 0.5 < b["valid"].float().mean() < 1.0   # some occlusion, mostly visible


@pytest.mark.parametrize("kind", ["chairs", "sdhom"])
def test_flow_is_exact_where_valid(kind, textures):
    """Warping image 2 back with the flow gives image 1 on valid pixels (up to resampling);
    the same flow off by one pixel, or ignoring occlusion, does much worse."""
    b = _gen(kind, textures, batch_size=6, motion_scale=1.0).batch(3)
    v = b["valid"].expand(-1, 3, -1, -1)

    def err(flow, mask):
        return (resample2d(b["img2"], flow) - b["img1"]).abs()[mask].mean().item()

    good = err(b["flow"], v)
    assert good < 2.5   # grey levels: bilinear resampling of textures at up to 1.2 texels per pixel
    for dx, factor in ((1.0, 3.0), (0.5, 1.5)):   # even half a pixel off is clearly worse
        shifted = b["flow"] + torch.tensor([dx, 0.0]).reshape(1, 2, 1, 1)
        assert err(shifted, v) > factor * good
    assert err(b["flow"], ~v) > 5 * good          # occluded pixels really are occluded


def test_kinds_have_their_displacements(textures):
    mags = {}
    for kind in KINDS:
        b = _gen(kind, textures, batch_size=8, size=(192, 256), motion_scale=1.0).batch(1)
        mags[kind] = b["flow"].norm(dim=1).flatten()
    sd = mags["sdhom"]
    assert sd.median() < 1.5 and torch.quantile(sd, 0.9) < 3.0      # mostly under 1–2 px
    assert mags["chairs"].median() > 2 * sd.median()
    assert torch.quantile(mags["things"], 0.9) > torch.quantile(mags["chairs"], 0.9) * 0.8
    assert mags["chairs"].max() < 40 * 1.5 + 20  # clip 40 px plus rotation/scale about the centre


def test_motion_scale_scales_displacements(textures):
    a = _gen("chairs", textures, motion_scale=1.0).batch(2)["flow"].norm(dim=1).median()
    b = _gen("chairs", textures, motion_scale=2.0).batch(2)["flow"].norm(dim=1).median()
    assert 1.5 < float(b / a) < 2.5


def test_deterministic_and_rows(textures):
    g = _gen("chairs", textures, batch_size=5)
    a, b, c = g.batch(7), g.batch(7), g.batch(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["img1"], c["img1"])
    part = g.batch(7, slice(1, 3))
    assert all(torch.equal(part[k], a[k][1:3]) for k in a)
    with pytest.raises(ValueError, match="select no sample"):
        g.batch(7, slice(5, 9))


def test_mix_proportions_exact_per_batch(textures):
    g = _gen({"things": 2, "sdhom": 6}, textures, batch_size=8)
    kinds = g._kinds_for_batch(torch.Generator().manual_seed(0))
    assert sorted(kinds) == ["sdhom"] * 6 + ["things"] * 2


def test_texture_splits_share_no_photograph():
    assert not set(PHOTOS["train"]) & set(PHOTOS["test"])
    assert not any("motorcycle" in p for p in PHOTOS["train"] + PHOTOS["test"])
    t = TextureBank.build("test", count=4, size=32, seed=1)
    assert t.textures.shape == (4, 3, 32, 32) and float(t.textures.max()) <= 255


def test_shapes_fit_the_unit_disc():
    m = ShapeBank.build(count=6, size=64, seed=0).masks
    assert m.shape == (6, 1, 64, 64)
    assert float(m[..., :2, :].max()) == 0 and float(m[..., :, :2].max()) == 0   # margin clear
    assert all(0.02 < float(x.mean()) < 0.8 for x in m)


def test_bad_arguments(textures):
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        SyntheticFlow("sofas", textures=textures)
    with pytest.raises(ValueError, match="at least 16"):
        SyntheticFlow("chairs", size=(8, 8), textures=textures)
    with pytest.raises(ValueError, match="positive proportion"):
        SyntheticFlow({"chairs": 0}, textures=textures)
    with pytest.raises(ValueError, match="motion_scale"):
        SyntheticFlow("chairs", textures=textures, motion_scale=0)
    with pytest.raises(ValueError, match="split"):
        TextureBank.build("val")
