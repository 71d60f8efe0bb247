"""On-the-fly synthetic training data: exact flow, visibility, kinds, determinism."""

import pytest
import torch

from flownet2_core.ops import resample2d
from flownet2_core.train.synthetic import KINDS, PHOTOS, SHAPE_EXTENT, ShapeBank, SyntheticFlow, TextureBank

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
    assert good < 4.0   # grey levels: bilinear resampling of textures at up to 1.2 texels per pixel
    for dx, factor in ((1.0, 2.5), (0.5, 1.5)):   # even half a pixel off is clearly worse
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
    # the renderer's windows rely on it: nothing beyond 1 unit + 2 texels (2× area rendering)
    c = (torch.arange(64) + 0.5) / 64 * 2 * SHAPE_EXTENT - SHAPE_EXTENT
    r = torch.hypot(c[None, :], c[:, None])
    assert float(m[..., r > 1 + 2 * (2 * SHAPE_EXTENT / 64)].max()) == 0


@pytest.mark.parametrize("kind", ["chairs", "things"])
def test_windowed_rendering_equals_full_frame(kind, textures):
    """Objects are drawn only inside their windows and occlusion is tested only near
    them; a full-frame composite of every layer, and the top layer at every landing
    point, must give the same images, flow and visibility."""
    g = _gen(kind, textures, batch_size=3, motion_scale=1.0)
    out = g.batch(4)
    gen = torch.Generator().manual_seed(g.seed * 1_000_003 + 4 * 7919 + 17)
    p = g._draw(gen, g._kinds_for_batch(gen))
    B, L = p["active"].shape
    h, w = SIZE
    xs, ys = torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32)

    def coverage(inv, b, layer, px, py):   # mask of one layer at points (px, py)
        a = inv[b, layer].float() / SHAPE_EXTENT
        grid = torch.stack((a[0, 0] * px + a[0, 1] * py + a[0, 2],
                            a[1, 0] * px + a[1, 1] * py + a[1, 2]), -1).reshape(1, 1, -1, 2)
        m = g.shapes.masks[int(p["shape_index"][b, layer])][None]
        return torch.nn.functional.grid_sample(m, grid, align_corners=False).reshape(px.shape)

    px, py = xs[None, :].expand(h, w), ys[:, None].expand(h, w)
    for frame, pose, key in ((0, p["pose0"], "img1"), (1, p["pose1"], "img2")):
        inv = torch.linalg.inv(g._pose_matrix(pose))[..., :2, :]
        img = g._background(p, inv, g._layer_gains(p, frame), SIZE)
        for b in range(B):
            for layer in range(1, L):
                if not p["active"][b, layer]:
                    continue
                cov = coverage(inv, b, layer, px, py)
                q = g._units(inv[b, layer], xs, ys)
                col = g._sample(g.textures.textures[int(p["tex_index"][b, layer])],
                                q * float(p["tex_zoom"][b, layer]) + p["tex_offset"][b, layer].float(),
                                "reflection") * g._layer_gains(p, frame)[b, layer, :, None, None]
                img[b] = torch.lerp(img[b], col, cov)
        torch.testing.assert_close(out[key], img.clamp(0, 255), atol=0.05, rtol=0)  # rounding only
    # visibility: the frontmost layer covering the landing point is the pixel's own
    inv1 = torch.linalg.inv(g._pose_matrix(p["pose1"]))[..., :2, :]
    land = (px + out["flow"][:, 0], py + out["flow"][:, 1])
    inv0 = torch.linalg.inv(g._pose_matrix(p["pose0"]))[..., :2, :]
    for b in range(B):
        top1 = torch.zeros(h, w, dtype=torch.long)
        top2 = torch.zeros(h, w, dtype=torch.long)
        for layer in range(1, L):
            if p["active"][b, layer]:
                top1[coverage(inv0, b, layer, px, py) > 0.5] = layer
                top2[coverage(inv1, b, layer, land[0][b], land[1][b]) > 0.5] = layer
        inside = (land[0][b] >= -0.5) & (land[0][b] <= w - 0.5) & (land[1][b] >= -0.5) & (land[1][b] <= h - 0.5)
        assert torch.equal(out["valid"][b, 0], (top1 == top2) & inside)


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


def test_cameras_render_the_view_directly(textures):
    """An integer-translation camera is a crop of the plain render; a random FlowNet
    transform pair gives a pair whose flow warps image 2 back onto image 1."""
    from flownet2_core.train.augment import GeometricAugment

    g = _gen("chairs", textures, batch_size=3, motion_scale=1.0)
    full = g.batch(2)
    top, left, crop = 10, 24, (64, 80)
    shift = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    shift[:, 0, 2], shift[:, 1, 2] = left, top
    view = g.batch(2, cameras=(shift, shift), size=crop)
    cut = (..., slice(top, top + crop[0]), slice(left, left + crop[1]))
    for k in ("img1", "img2", "flow"):
        torch.testing.assert_close(view[k], full[k][cut], atol=0.05, rtol=0)
    # valid: the full frame's, less what now leaves the smaller view
    fx = view["flow"][:, 0] + torch.arange(crop[1])
    fy = view["flow"][:, 1] + torch.arange(crop[0])[:, None]
    inside = (fx >= -0.5) & (fx <= crop[1] - 0.5) & (fy >= -0.5) & (fy <= crop[0] - 0.5)
    assert torch.equal(view["valid"], full["valid"][cut] & inside[:, None])

    a1, a2 = GeometricAugment().sample(3, SIZE, crop, torch.Generator().manual_seed(5))
    aug = g.batch(2, cameras=(a1, a2), size=crop)
    assert not torch.equal(aug["flow"], view["flow"])
    v = aug["valid"].expand(-1, 3, -1, -1)
    err = (resample2d(aug["img2"], aug["flow"]) - aug["img1"]).abs()[v].mean().item()
    off = (resample2d(aug["img2"], aug["flow"] + 0.5) - aug["img1"]).abs()[v].mean().item()
    assert err < 4.0 and off > 2.5 * err
    with pytest.raises(ValueError, match="cameras"):
        g.batch(2, cameras=(a1[:2], a2[:2]), size=crop)
