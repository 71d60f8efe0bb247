"""FlowNet training augmentation: geometric consistency, exact crops, valid masks, photometric, errors."""

from __future__ import annotations

import math

import pytest
import torch

from flownet2_core.ops import resample2d
from flownet2_core.train.augment import (
    FlowAugment, GeometricAugment, PhotometricAugment, affine_flow, affine_sample, center_crop,
)

IDENTITY_GEO = dict(translate=0.0, rotate=0.0, zoom=(1.0, 1.0), squeeze=(1.0, 1.0),
                    rel_translate=0.0, rel_rotate=0.0, rel_zoom=0.0)
IDENTITY_PHOTO = dict(noise=(0.0, 0.0), contrast=(0.0, 0.0), color=(1.0, 1.0), gamma=(1.0, 1.0),
                      brightness=0.0, rel_gamma=0.0, rel_brightness=0.0, rel_contrast=0.0, rel_color=0.0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smooth analytic RGB texture (3, …) in ~0..255: sums of two sinusoids per channel, wavelengths 23–41 px."""
    chans = []
    for l1, a1, l2, a2, ph in [(31, 0.3, 23, 2.0, 0.1), (27, 1.1, 37, -0.7, 1.3), (41, -0.4, 29, 0.9, 2.2)]:
        chans.append(128 + 50 * torch.sin(2 * math.pi * (x * math.cos(a1) + y * math.sin(a1)) / l1 + ph)
                     + 40 * torch.sin(2 * math.pi * (x * math.cos(a2) + y * math.sin(a2)) / l2 + 2 * ph))
    return torch.stack(chans)


def affine_pair(batch_size=4, size=(96, 128)):
    """img2 = img1 moved by a known global affine motion φ (3°, ×1.04, shift (4, −2.5)), both
    rendered analytically, so img1(x) = img2(φ(x)) exactly and flow = φ(x) − x."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    th, s, shift = math.radians(3), 1.04, torch.tensor([4.0, -2.5], dtype=torch.float64)
    c = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    m = s * torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], dtype=torch.float64)
    x = torch.stack((xs, ys), -1)
    phi = (x - c) @ m.T + c + shift
    inv = (x - c - shift) @ torch.linalg.inv(m).T + c
    rep = lambda t: t.float()[None].repeat(batch_size, 1, 1, 1)  # noqa: E731
    return {"img1": rep(texture(xs, ys)), "img2": rep(texture(inv[..., 0], inv[..., 1])),
            "flow": rep((phi - x).permute(2, 0, 1))}


def warp_error(img1, img2, flow, valid):
    """Per-sample mean |img1 − img2(x + flow)| over valid pixels."""
    diff = (resample2d(img2, flow) - img1).abs().mean(dim=1, keepdim=True)
    return (diff * valid).sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3))


def translation(tx, ty, batch_size=1):
    m = torch.eye(3, dtype=torch.float64).repeat(batch_size, 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


# --------------------------------------------------------------------------
class TestConsistency:
    CROP = (64, 96)
    # A visible relative transform, so that forgetting it is visible too.
    GEO = GeometricAugment(rel_translate=0.05, rel_rotate=3.0, rel_zoom=0.05)

    def test_warp_back_reproduces_img1(self):
        batch = affine_pair()
        # The input pair itself warps back to ≈ 0.27 grey levels (bilinear on the texture).
        for seed in range(3):
            out = FlowAugment(self.CROP, self.GEO, photometric=None)(batch, gen(seed))
            valid = out["valid"]
            assert valid.float().mean(dim=(1, 2, 3)).min() > 0.6
            err = warp_error(out["img1"], out["img2"], out["flow"], valid)
            assert err.max() < 0.25, err          # measured ≈ 0.08
            assert (out["flow"][~valid.expand_as(out["flow"])] == 0).all()

    def test_wrong_flow_transforms_fail(self):
        batch = affine_pair()
        a1, a2 = self.GEO.sample(4, (96, 128), self.CROP, gen(5))
        img1 = affine_sample(batch["img1"], a1, self.CROP)
        img2 = affine_sample(batch["img2"], a2, self.CROP)
        flow, valid = affine_flow(batch["flow"], None, a1, a2, self.CROP)
        assert warp_error(img1, img2, flow, valid).max() < 0.25
        # Forgetting A2 (mapping targets back with A1⁻¹, as if image 2 had T1 only).
        flow_a1, valid_a1 = affine_flow(batch["flow"], None, a1, a1, self.CROP)
        assert warp_error(img1, img2, flow_a1, valid_a1 & valid).min() > 2.0      # measured ≈ 8–13
        # Resampling the flow like an image (ignores that zoom and rotation act on the vectors).
        naive = affine_sample(batch["flow"], a1, self.CROP)
        assert warp_error(img1, img2, naive, valid).min() > 2.0                   # measured ≈ 10–16

    def test_keep_inside_corners_and_fallback(self):
        size, crop = (96, 128), (64, 96)
        a1, a2 = GeometricAugment().sample(64, size, crop, gen(1))
        corners = torch.tensor([[0, 0, 1], [95, 0, 1], [0, 63, 1], [95, 63, 1]], dtype=torch.float64)
        for a in (a1, a2):
            p = torch.einsum("bij,kj->bki", a, corners)
            assert (p[..., 0] >= -1e-3).all() and (p[..., 0] <= 127 + 1e-3).all()
            assert (p[..., 1] >= -1e-3).all() and (p[..., 1] <= 95 + 1e-3).all()
        assert not torch.allclose(a1, a1[:1].expand_as(a1))      # really random
        # A zoom < 1 never fits a crop as large as the input: fall back to the plain crop.
        a1, a2 = GeometricAugment(zoom=(0.5, 0.6)).sample(3, (40, 50), (40, 50), gen(2))
        eye = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
        assert torch.equal(a1, eye) and torch.equal(a2, eye)
        # keep_inside=False takes the first draw even when it leaves the image.
        a1, _ = GeometricAugment(zoom=(0.5, 0.6), keep_inside=False).sample(3, (40, 50), (40, 50), gen(2))
        assert not torch.allclose(a1, eye)


# --------------------------------------------------------------------------
class TestExactCrop:
    def _batch(self, b=2, size=(37, 50)):
        g = gen(0)
        h, w = size
        return {"img1": torch.rand(b, 3, h, w, generator=g) * 255, "img2": torch.rand(b, 3, h, w, generator=g) * 255,
                "flow": torch.randn(b, 2, h, w, generator=g) * 3,
                "valid": torch.rand(b, 1, h, w, generator=g) > 0.2}

    def test_identity_settings_give_exact_crop(self):
        batch, crop = self._batch(), (20, 31)      # odd margins: window starts at (8, 9)
        sl = (slice(None), slice(None), slice(8, 28), slice(9, 40))
        aug = FlowAugment(crop, GeometricAugment(**IDENTITY_GEO, invalidate_out_of_view=False),
                          PhotometricAugment(**IDENTITY_PHOTO))
        out = aug(batch, gen(3))
        for k in ("img1", "img2", "flow", "valid"):
            assert torch.equal(out[k], batch[k][sl]), k
        # With the out-of-view rule, only targets leaving the crop become invalid (flow zeroed there).
        out = FlowAugment(crop, GeometricAugment(**IDENTITY_GEO), None)(batch, gen(3))
        f = batch["flow"][sl]
        tx = f[:, 0] + torch.arange(31.0)
        ty = f[:, 1] + torch.arange(20.0)[:, None]
        inside = ((tx >= 0) & (tx <= 30) & (ty >= 0) & (ty <= 19))[:, None]
        assert torch.equal(out["valid"], batch["valid"][sl] & inside)
        assert torch.equal(out["flow"], torch.where(out["valid"], f, 0.0))
        assert torch.equal(out["img1"], batch["img1"][sl])

    def test_disabled_is_center_crop(self):
        batch = self._batch()
        out = FlowAugment((20, 31), enabled=False)(batch, gen(0))
        sl = (slice(None), slice(None), slice(8, 28), slice(9, 40))
        for k in ("img1", "img2", "flow", "valid"):
            assert torch.equal(out[k], batch[k][sl]), k
        assert torch.equal(center_crop(batch, (20, 31))["flow"], batch["flow"][sl])
        no_valid = {k: v for k, v in batch.items() if k != "valid"}
        assert center_crop(no_valid, (20, 31))["valid"].all()

    def test_integer_translation_samples_a_crop(self):
        batch = self._batch()
        a = translation(5.0, 3.0, 2)
        got = affine_sample(batch["img1"], a, (20, 31))
        torch.testing.assert_close(got, batch["img1"][:, :, 3:23, 5:36], atol=1e-3, rtol=0)
        flow, valid = affine_flow(batch["flow"], batch["valid"], a, a, (20, 31), invalidate_out_of_view=False)
        ref = batch["flow"][:, :, 3:23, 5:36]
        assert torch.equal(valid, batch["valid"][:, :, 3:23, 5:36])
        torch.testing.assert_close(flow, torch.where(valid, ref, 0.0), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------
class TestTranslation:
    def test_relative_translation_shifts_flow_exactly(self):
        g = gen(4)
        flow = torch.randn(2, 2, 30, 40, generator=g) * 2
        a1 = translation(4.0, 2.0, 2)
        t = torch.tensor([3.25, -2.5], dtype=torch.float64)
        a2 = a1 @ translation(-t[0], -t[1], 2)        # A2 = A1 ∘ R⁻¹ with R = translation by t
        out, valid = affine_flow(flow, None, a1, a2, (24, 32), invalidate_out_of_view=False)
        assert valid.all()
        ref = flow[:, :, 2:26, 4:36] + t.float().view(1, 2, 1, 1)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)

    def test_sampled_relative_translation(self):
        geo = GeometricAugment(**{**IDENTITY_GEO, "rel_translate": 0.05}, invalidate_out_of_view=False,
                               keep_inside=False)
        batch = TestExactCrop()._batch(b=3)
        a1, a2 = geo.sample(3, (37, 50), (20, 31), gen(7))
        rel = a2.inverse() @ a1                        # R: should be a pure translation
        t = rel[:, :2, 2]
        assert torch.allclose(rel[:, :2, :2], torch.eye(2, dtype=torch.float64).expand(3, 2, 2))
        assert (t.abs() > 1e-3).all()
        out = FlowAugment((20, 31), geo, None)(batch, gen(7))
        ref = batch["flow"][:, :, 8:28, 9:40] + t.float()[:, :, None, None]
        v = out["valid"].expand_as(ref)
        torch.testing.assert_close(out["flow"][v], ref[v], atol=1e-4, rtol=0)
        torch.testing.assert_close(out["img1"], batch["img1"][:, :, 8:28, 9:40], atol=1e-3, rtol=0)


# --------------------------------------------------------------------------
class TestValid:
    def test_pixels_outside_image1_are_invalid(self):
        flow = torch.zeros(1, 2, 20, 30)
        a = translation(7.0, -2.5)                     # crop (20, 26) at x 7..32 > 29, y −2.5..16.5
        out, valid = affine_flow(flow, None, a, a, (20, 26), invalidate_out_of_view=False)
        x = torch.arange(26.0) + 7
        y = torch.arange(20.0)[:, None] - 2.5
        inside = (x <= 29) & (y >= 0)
        assert torch.equal(valid[0, 0], inside)
        assert (out == 0).all()

    def test_invalid_input_propagates_without_leaking(self):
        flow = torch.full((1, 2, 20, 30), 1.5)
        valid = torch.ones(1, 1, 20, 30, dtype=torch.bool)
        valid[..., 5:8, 10:13] = False
        flow[..., 5:8, 10:13] = 1e9                     # .flo "unknown" values
        flow[0, 0, 6, 11] = float("nan")
        a = translation(2.0, 1.0)
        out, v = affine_flow(flow, valid, a, a, (16, 24), invalidate_out_of_view=False)
        ref = torch.ones(16, 24, dtype=torch.bool)
        ref[4:7, 8:11] = False                          # integer shift: exactly the moved block
        assert torch.equal(v[0, 0], ref)
        assert torch.isfinite(out).all() and (out[~v.expand_as(out)] == 0).all()
        torch.testing.assert_close(out[v.expand_as(out)], torch.full((2 * int(ref.sum()),), 1.5), atol=1e-5, rtol=0)
        # Half-pixel shift: the block grows by one pixel (bilinear footprint).
        a = translation(2.5, 1.0)
        _, v = affine_flow(flow, valid, a, a, (16, 24), invalidate_out_of_view=False)
        ref = torch.ones(16, 24, dtype=torch.bool)
        ref[4:7, 7:11] = False
        assert torch.equal(v[0, 0], ref)

    def test_out_of_view_targets(self):
        flow = torch.zeros(1, 2, 20, 30)
        flow[:, 0] = 4.5                                # everything moves 4.5 px right
        a = translation(3.0, 2.0)
        crop = (16, 24)
        out, v = affine_flow(flow, None, a, a, crop)
        assert torch.equal(v[0, 0], (torch.arange(24.0) + 4.5 <= 23).expand(16, 24))
        _, v = affine_flow(flow, None, a, a, crop, invalidate_out_of_view=False)
        assert v.all()
        # The relative transform moves targets too: shifting image 2 by −5 px brings them back.
        a2 = a @ translation(5.0, 0.0)
        out, v = affine_flow(flow, None, a, a2, crop)
        assert torch.equal(v[0, 0], (torch.arange(24.0) - 0.5 >= 0).expand(16, 24))
        torch.testing.assert_close(out[:, 0][v[:, 0]], torch.full((int(v.sum()),), -0.5))


# --------------------------------------------------------------------------
class TestDeterminism:
    def test_same_seed_same_output(self):
        batch = affine_pair(batch_size=2, size=(48, 64))
        batch["valid"] = torch.ones(2, 1, 48, 64, dtype=torch.bool)
        aug = FlowAugment((32, 48))
        a, b, c = aug(batch, gen(11)), aug(batch, gen(11)), aug(batch, gen(12))
        for k in ("img1", "img2", "flow", "valid"):
            assert torch.equal(a[k], b[k]), k
        assert not torch.equal(a["img1"], c["img1"]) and not torch.equal(a["flow"], c["flow"])
        assert set(aug(batch)) == {"img1", "img2", "flow", "valid"}      # default generator
        assert batch["valid"].all()                                    # input untouched

    def test_other_keys_pass_through(self):
        batch = affine_pair(batch_size=1, size=(48, 64))
        batch["name"] = ["pair-0"]
        assert FlowAugment((32, 48))(batch, gen(0))["name"] == ["pair-0"]


# --------------------------------------------------------------------------
class TestPhotometric:
    def test_range_and_shared_draw(self):
        g = gen(3)
        img = torch.rand(6, 3, 24, 32, generator=g) * 255
        img[:, :, :4] = 0.0
        img[:, :, 4:8] = 255.0
        photo = PhotometricAugment(noise=(0.0, 0.0), rel_gamma=0.0, rel_brightness=0.0, rel_contrast=0.0,
                                   rel_color=0.0)
        o1, o2 = photo.apply(img, img.clone(), gen(5))
        assert torch.equal(o1, o2)
        assert o1.min() >= 0 and o1.max() <= 255 and not torch.allclose(o1, img, atol=1.0)
        # The defaults (noise, relative changes) stay in range and differ between the images.
        p1, p2 = PhotometricAugment().apply(img, img.clone(), gen(5))
        for o in (p1, p2):
            assert o.min() >= 0 and o.max() <= 255 and torch.isfinite(o).all()
        assert (p1 - p2).abs().mean() > 0.1
        # Image 1 does not depend on the relative settings (same draws).
        q1, _ = PhotometricAugment(noise=(0.0, 0.0)).apply(img, img, gen(5))
        assert torch.equal(q1, o1)

    def test_formula_with_fixed_values(self):
        img = torch.rand(2, 3, 8, 8, generator=gen(0)) * 255
        photo = PhotometricAugment(**{**IDENTITY_PHOTO, "gamma": (1.2, 1.2), "contrast": (-0.5, -0.5)})
        o1, o2 = photo.apply(img, img, gen(1))
        ref = (0.5 + ((img / 255) ** 1.2 - 0.5) * 0.5).clamp(0, 1) * 255
        torch.testing.assert_close(o1, ref, atol=1e-3, rtol=0)
        torch.testing.assert_close(o2, ref, atol=1e-3, rtol=0)
        # A colour change keeps each pixel's R+G+B (Caffe's compensation) unless clamped.
        photo = PhotometricAugment(**{**IDENTITY_PHOTO, "color": (0.5, 2.0)})
        dim = img * 0.3
        o1, _ = photo.apply(dim, dim, gen(2))
        torch.testing.assert_close(o1.sum(1), dim.sum(1), atol=1e-2, rtol=1e-4)
        assert not torch.allclose(o1, dim, atol=1.0)

    def test_sample_shapes_and_ranges(self):
        p = PhotometricAugment().sample(500, gen(0))
        assert p["color"].shape == (2, 500, 3) and p["gamma"].shape == (2, 500)
        assert 0.7 <= p["gamma"][0].min() and p["gamma"][0].max() <= 1.5
        assert 0.2 <= p["contrast"][0].min() and p["contrast"][0].max() <= 1.4
        assert 0.0 <= p["noise_sigma"][0].min() and p["noise_sigma"][0].max() <= 0.04
        assert torch.equal(p["noise_sigma"][0], p["noise_sigma"][1])
        assert 0.15 < p["brightness"][0].std() < 0.25


# --------------------------------------------------------------------------
class TestErrors:
    @pytest.mark.parametrize("kwargs", [
        dict(translate=-0.1), dict(rotate=float("nan")), dict(zoom=(2.0, 1.0)), dict(zoom=(0.0, 1.0)),
        dict(squeeze=(1.0,)), dict(rel_zoom=-1.0), dict(tries=0), dict(tries=2.5),
    ])
    def test_bad_geometric(self, kwargs):
        with pytest.raises(ValueError, match="GeometricAugment"):
            GeometricAugment(**kwargs)

    @pytest.mark.parametrize("kwargs", [
        dict(noise=(-0.1, 0.1)), dict(contrast=(-1.5, 0.0)), dict(color=(0.0, 2.0)), dict(gamma=(1.5, 0.7)),
        dict(brightness=-0.2), dict(rel_color="x"),
    ])
    def test_bad_photometric(self, kwargs):
        with pytest.raises(ValueError, match="PhotometricAugment"):
            PhotometricAugment(**kwargs)

    def test_bad_crop_and_batch(self):
        batch = affine_pair(batch_size=1, size=(32, 40))
        with pytest.raises(ValueError, match="larger than the input"):
            FlowAugment((33, 40))(batch, gen(0))
        with pytest.raises(ValueError, match="larger than the input"):
            FlowAugment((16, 48), enabled=False)(batch, gen(0))
        for crop in [(16,), (16, 0), (16.5, 20), "ab"]:
            with pytest.raises(ValueError, match="crop"):
                FlowAugment(crop)
        with pytest.raises(ValueError, match="flow"):
            FlowAugment((16, 16))({"img1": batch["img1"], "img2": batch["img2"]}, gen(0))
        with pytest.raises(ValueError, match="flow must be"):
            FlowAugment((16, 16))({**batch, "flow": batch["flow"][:, :1]}, gen(0))
        with pytest.raises(ValueError, match="valid"):
            FlowAugment((16, 16))({**batch, "valid": torch.ones(1, 1, 32, 40)}, gen(0))
        with pytest.raises(ValueError, match="img2"):
            FlowAugment((16, 16))({**batch, "img2": batch["img2"][..., :-1]}, gen(0))
        with pytest.raises(ValueError, match="generator"):
            FlowAugment((16, 16))(batch, 0)
        with pytest.raises(ValueError, match="GeometricAugment"):
            FlowAugment((16, 16), geometric=PhotometricAugment())
        with pytest.raises(ValueError, match="a1"):
            affine_flow(batch["flow"], None, torch.eye(3), torch.eye(3)[None], (8, 8))


# --------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_cuda(gen_device):
    batch = {k: v.cuda() for k, v in affine_pair().items()}
    geo = TestConsistency.GEO
    aug = FlowAugment((64, 96), geo)
    g = torch.Generator(device=gen_device).manual_seed(0)
    out = aug(batch, g)
    assert all(v.device.type == "cuda" for v in out.values())
    again = aug(batch, torch.Generator(device=gen_device).manual_seed(0))
    assert all(torch.equal(out[k], again[k]) for k in out)
    # Consistency on the GPU, geometric only.
    out = FlowAugment((64, 96), geo, None)(batch, torch.Generator(device=gen_device).manual_seed(1))
    assert warp_error(out["img1"], out["img2"], out["flow"], out["valid"]).max() < 0.25
    if gen_device == "cpu":   # same CPU draws → same transforms as a CPU run
        cpu = FlowAugment((64, 96), geo, None)({k: v.cpu() for k, v in batch.items()}, gen(1))
        torch.testing.assert_close(out["flow"].cpu(), cpu["flow"], atol=1e-3, rtol=0)


def test_pixel_noise_is_gaussian_independent_between_the_images_and_reproducible():
    """The per-pixel noise (windows of a fixed bank of normals): mean 0, std 1, the two images'
    noise uncorrelated (a shared, shifted pattern would be a false match for a flow network),
    reproducible from the generator's state and different for the next draw; the photometric
    step turns it into grey-level noise of σ·255 on a flat image."""
    from flownet2_core.train.augment import PhotometricAugment, gaussian_noise

    shape = (4, 3, 64, 96)
    g = gen(3)
    a = gaussian_noise(shape, 0, g, torch.device("cpu"), torch.float32)
    b = gaussian_noise(shape, 1, g, torch.device("cpu"), torch.float32)
    c = gaussian_noise(shape, 0, g, torch.device("cpu"), torch.float32)
    for x in (a, b):
        assert abs(float(x.mean())) < 0.02 and abs(float(x.std()) - 1) < 0.02
    # Largest normalised cross-correlation over shifts is at chance level (FFT over all shifts).
    fa, fb = torch.fft.rfft(a.flatten()), torch.fft.rfft(b.flatten())
    xc = torch.fft.irfft(fa.conj() * fb, n=a.numel()) / a.numel()
    assert float(xc.abs().max()) < 6 / math.sqrt(a.numel())
    assert not torch.equal(a, c)
    g2 = gen(3)
    assert torch.equal(gaussian_noise(shape, 0, g2, torch.device("cpu"), torch.float32), a)
    flat = torch.full((2, 3, 64, 96), 128.0)
    photo = PhotometricAugment(noise=(0.02, 0.02), contrast=(0.0, 0.0), color=(1.0, 1.0), gamma=(1.0, 1.0),
                               brightness=0.0, rel_gamma=0.0, rel_brightness=0.0, rel_contrast=0.0, rel_color=0.0)
    n1, n2 = photo.apply(flat, flat, gen(1))
    for n in (n1, n2):
        assert abs(float((n - 128).std()) - 0.02 * 255) < 0.2
    assert float(((n1 - 128) * (n2 - 128)).mean()) < 0.1 * (0.02 * 255) ** 2
