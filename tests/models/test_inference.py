"""flownet2_core.inference: size policies (with exact rescaling checked on a stub network),
batching, input forms, options; real models at small widths on awkward sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flownet2_core.inference import FlowNet2Inference
from flownet2_core.models import build_model, save_checkpoint

U, V = 3.0, -2.0


class ConstantFlow(nn.Module):
    """Stub with the model contract: returns u = 3, v = -2 everywhere and records its inputs."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, ...]] = []
        self.last_input = None

    def forward(self, img1, img2):
        if img1.shape[-2] % 64 or img1.shape[-1] % 64:
            raise ValueError("stub: not a multiple of 64")
        self.seen.append(tuple(img1.shape))
        self.last_input = img1
        flow = torch.empty(img1.shape[0], 2, *img1.shape[2:], dtype=img1.dtype)
        flow[:, 0], flow[:, 1] = U, V
        return flow


def _images(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
            rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("h,w,h2,w2", [(100, 100, 128, 128), (240, 320, 256, 320),
                                       (436, 1024, 448, 1024), (64, 128, 64, 128)])
def test_resize_rescales_flow(h, w, h2, w2):
    stub = ConstantFlow()
    a, b = _images(1, h, w)
    flow = FlowNet2Inference(stub, device="cpu")(a, b)
    assert stub.seen == [(1, 3, h2, w2)]
    assert flow.shape == (1, h, w, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow[..., 0], U * w / w2, rtol=1e-6)
    np.testing.assert_allclose(flow[..., 1], V * h / h2, rtol=1e-6)


@pytest.mark.parametrize("h,w,min_size,h2,w2", [(96, 128, 384, 384, 512), (72, 96, 384, 384, 512),
                                                  (100, 100, 200, 256, 256), (436, 1024, 384, 448, 1024)])
def test_min_size_enlarges_small_images_and_returns_their_pixels(h, w, min_size, h2, w2):
    stub = ConstantFlow()
    a, b = _images(1, h, w)
    flow = FlowNet2Inference(stub, device="cpu", min_size=min_size)(a, b)
    assert stub.seen == [(1, 3, h2, w2)]
    assert flow.shape == (1, h, w, 2)
    np.testing.assert_allclose(flow[..., 0], U * w / w2, rtol=1e-6)
    np.testing.assert_allclose(flow[..., 1], V * h / h2, rtol=1e-6)
    runner = FlowNet2Inference(stub, device="cpu", min_size=min_size)
    assert runner.pairs_per_forward(h, w) == FlowNet2Inference(stub, device="cpu").pairs_per_forward(h2, w2)


@pytest.mark.parametrize("h,w,min_size,zoom,h2,w2", [
    (384, 512, 0, 1.25, 512, 640), (384, 512, 384, 1.25, 512, 640), (240, 320, 0, 0.5, 128, 192),
    (100, 100, 0, 2, 256, 256),
    # min_size is a floor, not a second factor: a frame it enlarges is not zoomed again
    (96, 128, 384, 1.25, 384, 512), (300, 400, 384, 1.25, 384, 512), (350, 400, 384, 1.25, 448, 512)])
def test_zoom_runs_the_network_larger_and_returns_the_images_pixels(h, w, min_size, zoom, h2, w2):
    stub = ConstantFlow()
    a, b = _images(1, h, w)
    flow = FlowNet2Inference(stub, device="cpu", min_size=min_size, zoom=zoom)(a, b)
    assert stub.seen == [(1, 3, h2, w2)]
    assert flow.shape == (1, h, w, 2)
    np.testing.assert_allclose(flow[..., 0], U * w / w2, rtol=1e-6)
    np.testing.assert_allclose(flow[..., 1], V * h / h2, rtol=1e-6)


class Gradient(nn.Module):
    """Stub equivariant to mirroring: u, v = central differences of img2's mean along x, y
    (zero padding, so mirrored images give exactly mirrored, sign-flipped fields)."""

    def forward(self, img1, img2):
        g = img2.mean(1, keepdim=True)
        u = torch.nn.functional.pad(g[..., 2:] - g[..., :-2], (1, 1)) / 2
        v = torch.nn.functional.pad(g[..., 2:, :] - g[..., :-2, :], (0, 0, 1, 1)) / 2
        return torch.cat([u, v], 1)


class Skewed(Gradient):
    """Gradient's field plus what no mirror symmetry keeps: a constant offset and a ramp in x."""

    def forward(self, img1, img2):
        x = torch.arange(img1.shape[-1], dtype=img1.dtype) / img1.shape[-1]
        return super().forward(img1, img2) + torch.stack([0.7 + x.expand_as(img1[:, 0]),
                                                          -0.4 + 0 * img1[:, 0]], 1)


@pytest.mark.parametrize("ensemble", [2, 4])
def test_ensemble_averages_the_mirrored_estimates(ensemble):
    """ensemble=N: the flow is the mean of the estimates for the pair and its mirrored copies,
    each turned back (computed here one copy at a time with numpy flips); an equivariant
    network gives its plain flow, a constant offset cancels, all copies run in one pass."""
    a, b = _images(3, 64, 128, seed=3)
    mirrors = {2: [(), (1, 2)], 4: [(), (1, 2), (2,), (1,)]}[ensemble]  # axes of (N, H, W, C)
    plain = FlowNet2Inference(Skewed(), device="cpu", batch_size=3)
    want = np.zeros((3, 64, 128, 2), np.float32)
    for axes in mirrors:
        f = plain(np.flip(a, axes), np.flip(b, axes)) if axes else plain(a, b)
        f = np.flip(f, axes) * np.float32([-1 if 2 in axes else 1, -1 if 1 in axes else 1])
        want += f / len(mirrors)
    got = FlowNet2Inference(Skewed(), device="cpu", batch_size=3, ensemble=ensemble)(a, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # by hand: the offset (0.7, -0.4) cancels, the ramp x / W becomes (2x − W + 1) / 2W, and the
    # equivariant part stays as it is
    x = np.arange(128, dtype=np.float32)
    gradient = FlowNet2Inference(Gradient(), device="cpu")(a, b)
    np.testing.assert_allclose(got[..., 0] - gradient[..., 0], np.broadcast_to((2 * x - 127) / 256, (3, 64, 128)),
                               atol=1e-5)
    np.testing.assert_allclose(got[..., 1], gradient[..., 1], atol=1e-5)
    equivariant = FlowNet2Inference(Gradient(), device="cpu", ensemble=ensemble)(a, b)
    np.testing.assert_allclose(equivariant, gradient, atol=1e-5)
    stub = ConstantFlow()
    flow = FlowNet2Inference(stub, device="cpu", batch_size=3, ensemble=ensemble)(a, b)
    assert stub.seen == [(3 * ensemble, 3, 64, 128)]
    np.testing.assert_array_equal(flow, 0)
    crop = FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="crop", ensemble=ensemble)(*_images(1, 100, 150))
    assert (crop[0, 18:82, 11:139] == 0).all() and np.isnan(crop[0, :18]).all()


def test_crop_policy_and_fills():
    a, b = _images(2, 100, 150)
    top, left = (100 - 64) // 2, (150 - 128) // 2
    inside = (slice(None), slice(top, top + 64), slice(left, left + 128))
    stub = ConstantFlow()
    flow = FlowNet2Inference(stub, device="cpu", size_policy="crop")(a, b)
    assert stub.seen == [(2, 3, 64, 128)]
    assert flow.shape == (2, 100, 150, 2)
    np.testing.assert_array_equal(flow[inside], np.broadcast_to([U, V], (2, 64, 128, 2)))  # not rescaled
    mask = np.ones((100, 150), bool)
    mask[top:top + 64, left:left + 128] = False
    assert np.isnan(flow[:, mask]).all()
    zero = FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="crop", crop_fill="zero")(a, b)
    assert (zero[:, mask] == 0).all()
    edge = FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="crop", crop_fill="edge")(a, b)
    np.testing.assert_array_equal(edge, np.broadcast_to([U, V], edge.shape))
    # The crop is the centre one: the stub saw exactly that window.
    ref = torch.from_numpy(a).permute(0, 3, 1, 2).float()[:, :, top:top + 64, left:left + 128]
    runner = FlowNet2Inference(stub, device="cpu", size_policy="crop")
    runner(a, b)
    torch.testing.assert_close(stub.last_input, ref)
    with pytest.raises(ValueError, match="at least 64"):
        runner(*_images(1, 50, 200))


def test_batching_and_input_forms():
    stub = ConstantFlow()
    runner = FlowNet2Inference(stub, device="cpu", batch_size=2)
    a, b = _images(5, 64, 64)
    assert runner(a, b).shape == (5, 64, 64, 2)
    assert [s[0] for s in stub.seen] == [2, 2, 1]
    single = runner(a[0], b[0])
    assert single.shape == (64, 64, 2)
    ta = torch.from_numpy(a).permute(0, 3, 1, 2)
    tb = torch.from_numpy(b).permute(0, 3, 1, 2)
    assert runner(ta, tb).shape == (5, 64, 64, 2)
    assert runner(ta[0].float(), tb[0].float()).shape == (64, 64, 2)
    assert runner(a[:0], b[:0]).shape == (0, 64, 64, 2)
    # RGB order and 0..255 range reach the network unchanged.
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    runner(red, red)
    assert stub.last_input[0, 0].eq(255).all() and stub.last_input[0, 1:].eq(0).all()


@pytest.mark.parametrize("bad,match", [
    (lambda a: a[..., :2], r"\(H, W, 3\)"),
    (lambda a: a.astype(np.int32), "uint8 or float"),
    (lambda a: a.tolist(), "numpy array or a torch tensor"),
])
def test_input_errors(bad, match):
    runner = FlowNet2Inference(ConstantFlow(), device="cpu")
    a, b = _images(1, 64, 64)
    with pytest.raises(ValueError, match=match):
        runner(bad(a), bad(b))
    with pytest.raises(ValueError, match="differ"):
        runner(a, b[:, :32])


def test_option_errors():
    with pytest.raises(ValueError, match="size_policy"):
        FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="pad")
    with pytest.raises(ValueError, match="crop_fill"):
        FlowNet2Inference(ConstantFlow(), device="cpu", crop_fill="mean")
    for bad in (-1, 2.5, True, "384", 5000):
        with pytest.raises(ValueError, match="min_size"):
            FlowNet2Inference(ConstantFlow(), device="cpu", min_size=bad)
    with pytest.raises(ValueError, match="min_size=256 needs size_policy='resize'"):
        FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="crop", min_size=256)
    for bad in (0, -1, 5, True, "1.25", float("nan")):
        with pytest.raises(ValueError, match="zoom must be a number in"):
            FlowNet2Inference(ConstantFlow(), device="cpu", zoom=bad)
    with pytest.raises(ValueError, match="zoom=1.25 needs size_policy='resize'"):
        FlowNet2Inference(ConstantFlow(), device="cpu", size_policy="crop", zoom=1.25)
    for bad in (0, 3, True, "2", 2.0000001):
        with pytest.raises(ValueError, match="ensemble must be one of 1, 2, 4"):
            FlowNet2Inference(ConstantFlow(), device="cpu", ensemble=bad)
    with pytest.raises(ValueError, match="batch_size"):
        FlowNet2Inference(ConstantFlow(), device="cpu", batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        FlowNet2Inference(ConstantFlow(), device="cpu", dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            FlowNet2Inference(ConstantFlow(), device="cuda")
    with pytest.raises(ValueError, match="CUDA only"):
        FlowNet2Inference(ConstantFlow(), device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        FlowNet2Inference(ConstantFlow(), device="cpu", precision="float16")
    with pytest.raises(ValueError, match="does not combine"):
        FlowNet2Inference(ConstantFlow(), device="cpu", precision="bf16", dtype="float64")


@pytest.mark.parametrize("arch,h,w", [("FlowNet2-S", 436, 1024), ("FlowNet2", 100, 100),
                                      ("FlowNet2-C", 240, 320)])
def test_real_models_on_awkward_sizes(arch, h, w):
    torch.manual_seed(0)
    runner = FlowNet2Inference(build_model(arch, width=1 / 16), device="cpu", batch_size=2)
    a, b = _images(2, h, w, seed=1)
    flow = runner(a, b)
    assert flow.shape == (2, h, w, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_float64_and_channels_last_agree():
    torch.manual_seed(1)
    model = build_model("FlowNet2-CS", width=1 / 16)
    a, b = _images(1, 64, 128, seed=2)
    base = FlowNet2Inference(model, device="cpu")(a, b)
    cl = FlowNet2Inference(model, device="cpu", channels_last=True)(a, b)
    f64 = FlowNet2Inference(model, device="cpu", dtype="float64")(a, b)
    assert f64.dtype == np.float32  # always returned as float32
    np.testing.assert_allclose(cl, base, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f64, base, rtol=1e-3, atol=1e-3)


def test_from_checkpoint(tmp_path):
    torch.manual_seed(2)
    model = build_model("FlowNet2-SD", width=1 / 16)
    save_checkpoint(tmp_path / "sd.pth.tar", model)
    runner = FlowNet2Inference.from_checkpoint(tmp_path / "sd.pth.tar", device="cpu")
    a, b = _images(1, 64, 64)
    np.testing.assert_allclose(runner(a, b), FlowNet2Inference(model, device="cpu")(a, b), rtol=1e-6, atol=1e-7)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("cuda_kernels", [False, True], ids=["twins", "cuda-kernels"])
def test_cuda_precision(precision, cuda_kernels):
    """FlowNet2 on CUDA through the twins (the default) and through the opted-in CUDA kernels."""
    from flownet2_core.ops import use_cuda_kernels

    previous = use_cuda_kernels(cuda_kernels)
    try:
        torch.manual_seed(3)
        runner = FlowNet2Inference(build_model("FlowNet2", width=1 / 8), device="cuda",
                                   precision=precision)
        flow = runner(*_images(2, 100, 130))
    finally:
        use_cuda_kernels(previous)
    assert flow.shape == (2, 100, 130, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_bf16_on_the_cpu_keeps_heads_in_float32_and_the_keys():
    """precision='bf16' on the CPU: autocast with every predict_flow*/upsampled_flow* head in
    float32 (wrapped on the instance: same state-dict keys), flow close to float32's."""
    from flownet2_core.inference import keep_heads_in_float32

    torch.manual_seed(4)
    model = build_model("FlowNet2", width=1 / 8)
    keys = list(model.state_dict())
    heads = [n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1].startswith(("predict_flow", "upsampled_flow"))]
    a, b = _images(1, 128, 192)
    ref = FlowNet2Inference(model, device="cpu")(a, b)
    runner = FlowNet2Inference(model, device="cpu", precision="bf16", channels_last=True)
    assert sum(getattr(m, "_fp32_head", False) for m in runner.model.modules()) == len(heads) > 20
    assert list(runner.model.state_dict()) == keys and keep_heads_in_float32(runner.model) == 0  # not twice
    flow = runner(a, b)
    assert flow.dtype == np.float32 and np.isfinite(flow).all()
    err = np.linalg.norm(flow - ref, axis=-1).mean()
    assert err < 0.05 * np.linalg.norm(ref, axis=-1).mean() + 1e-3, err
    # The heads really run in float32: their outputs under autocast are float32.
    # The upsampling heads compute in float32 too (their weights stay float32) and hand their
    # result on in bfloat16: it only enters the decoder's cat, which then stays bfloat16.
    seen = []
    fusion = runner.model.flownetfusion
    hooks = [fusion.predict_flow0.register_forward_hook(lambda m, i, o: seen.append(("predict", o.dtype))),
             fusion.upsampled_flow2_to_1.register_forward_hook(lambda m, i, o: seen.append(("up", o.dtype)))]
    runner(a, b)
    for h in hooks:
        h.remove()
    assert sorted(seen) == [("predict", torch.float32), ("up", torch.bfloat16)]
    assert fusion.upsampled_flow2_to_1.weight.dtype == torch.float32
    assert fusion.deconv1[0].weight.dtype == torch.bfloat16  # stored in bf16 once


def test_automatic_batch_follows_memory(monkeypatch):
    """batch_size=None: as many pairs per forward as fit a quarter of the available memory at
    ACTIVATION_BYTES_PER_PIXEL × width per pixel, between 1 and MAX_AUTO_BATCH; the result
    is the same flow as one pair at a time."""
    import flownet2_core.inference as inf

    torch.manual_seed(5)
    runner = FlowNet2Inference(build_model("FlowNet2-S", width=0.25), device="cpu")
    per_pair = inf.ACTIVATION_BYTES_PER_PIXEL * 0.25 * 128 * 192  # 100×150 → 128×192 network input
    for free, want in ((10 ** 12, inf.MAX_AUTO_BATCH), (4 * 3 * per_pair, 3), (1, 1)):
        monkeypatch.setattr(inf, "available_memory", lambda device, free=free: free)
        assert runner.pairs_per_forward(100, 150) == want
    assert FlowNet2Inference(ConstantFlow(), device="cpu", batch_size=2).pairs_per_forward(100, 150) == 2
    monkeypatch.setattr(inf, "available_memory", lambda device: 4 * 4 * per_pair)
    assert FlowNet2Inference(runner.model, device="cpu", ensemble=2).pairs_per_forward(100, 150) == 2
    a, b = _images(5, 100, 150)
    monkeypatch.setattr(inf, "available_memory", lambda device: 4 * 2 * per_pair)  # 2 per pass
    together = runner(a, b)
    one = FlowNet2Inference(runner.model, device="cpu", batch_size=1)(a, b)
    np.testing.assert_allclose(together, one, rtol=1e-4, atol=1e-4)
