"""Forward passes: every builder at full width on a 128×192 pair (eval and train), the stack
wiring against a transcription of SPEC §4 (and of FlowNet2-ss's deploy prototxt for the S
stacks), float64, conventions flags, input errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from flownet2_core.models import BUILDERS, build_model
from flownet2_core.ops import channel_norm, resample2d

H, W = 128, 192


def _pair(b=1, h=H, w=W, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(b, 3, h, w, generator=g, dtype=dtype) * 255
    # A shifted, slightly changed copy, so the pair looks like motion.
    b2 = torch.roll(a, shifts=(2, -3), dims=(2, 3)) * 0.95 + 5
    return a, b2


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def full_model(request):
    torch.manual_seed(0)
    return request.param, BUILDERS[request.param]()


def test_full_width_eval_and_train(full_model):
    arch, model = full_model
    a, b = _pair()
    model.eval()
    with torch.inference_mode():
        flow = model(a, b)
    assert flow.shape == (1, 2, H, W) and flow.dtype == torch.float32
    assert torch.isfinite(flow).all()
    model.train()
    outs = model(a, b)
    model.eval()
    assert isinstance(outs, tuple) and all(torch.isfinite(o).all() for o in outs)
    if arch == "FlowNet2":  # fusion: flow0, flow1, flow2
        assert [tuple(o.shape) for o in outs] == [(1, 2, H >> k, W >> k) for k in range(3)]
    else:  # flow2 … flow6
        assert [tuple(o.shape) for o in outs] == [(1, 2, H >> k, W >> k) for k in range(2, 7)]
    assert outs[0].requires_grad


# --------------------------------------------------------------------------------------
# Wiring: an independent transcription of SPEC §4 built from the sub-networks and ops
# --------------------------------------------------------------------------------------
def spec_forward(model, img1, img2, align_corners, padding):
    bsz = img1.shape[0]
    frames = torch.stack((img1, img2), dim=2)  # (B, 3, 2, H, W), like the port
    mean = frames.reshape(bsz, 3, -1).mean(-1).view(bsz, 3, 1, 1)
    x1, x2 = (img1 - mean) / 255.0, (img2 - mean) / 255.0
    x = torch.cat((x1, x2), 1)

    def up_bilinear(f):
        return F.interpolate(f, scale_factor=4, mode="bilinear", align_corners=align_corners)

    def up_nearest(f):
        return F.interpolate(f, scale_factor=4, mode="nearest")

    def err(flow):
        warped = resample2d(x2, flow, padding)
        return warped, channel_norm(x1 - warped)

    def next_input(flow):
        warped, e = err(flow)
        return torch.cat((x, warped, flow / 20.0, e), 1)

    arch = model.arch_name
    if arch in ("FlowNet2-C", "FlowNet2-S"):
        return up_bilinear(model.predict_flows(x)[0] * 20)
    if arch == "FlowNet2-SD":
        return up_bilinear(model.predict_flows(x)[0] / 20)
    if arch in ("FlowNet2-SS", "FlowNet2-SSS"):
        # FlowNet2-ss_deploy.prototxt.template: S0 on [img1, img2]; bilinear ×4 (Accum) of
        # flow2 × 20 between nets; the final flow resampled LINEAR (bilinear).
        s0 = model.flownets_0(x)[0]
        s1 = model.flownets_1(next_input(up_bilinear(s0 * 20)))[0]
        if arch == "FlowNet2-SS":
            return up_bilinear(s1 * 20)
        return up_bilinear(model.flownets_2(next_input(up_bilinear(s1 * 20)))[0] * 20)
    flow_c = up_bilinear(model.flownetc(x)[0] * 20)
    s1 = model.flownets_1(next_input(flow_c))[0]
    if arch == "FlowNet2-CS":
        return up_bilinear(s1 * 20)
    s2 = model.flownets_2(next_input(up_bilinear(s1 * 20)))[0]
    if arch == "FlowNet2-CSS":
        return up_nearest(s2 * 20)
    flow_s2 = up_nearest(s2 * 20)
    flow_sd = up_nearest(model.flownets_d(x)[0] / 20)
    fusion_in = torch.cat((x1, flow_sd, flow_s2, channel_norm(flow_sd), channel_norm(flow_s2),
                           err(flow_sd)[1], err(flow_s2)[1]), 1)
    assert fusion_in.shape[1] == 11
    return model.flownetfusion(fusion_in)[0]


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("align_corners,padding", [(False, "border"), (True, "zeros")])
def test_wiring_matches_spec(arch, align_corners, padding):
    torch.manual_seed(1)
    model = build_model(arch, width=1 / 16, upsample_align_corners=align_corners,
                        warp_padding=padding).double().eval()
    a, b = _pair(b=2, h=64, w=64, seed=3, dtype=torch.float64)
    with torch.no_grad():
        got = model(a, b)
        want = spec_forward(model, a, b, align_corners, padding)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_conventions_change_the_output():
    torch.manual_seed(2)
    a, b = _pair(h=64, w=64, seed=4, dtype=torch.float64)
    base = build_model("FlowNet2-CS", width=1 / 16).double().eval()
    state = base.state_dict()
    outs = {}
    for align, pad in [(False, "border"), (True, "border"), (False, "zeros")]:
        m = build_model("FlowNet2-CS", width=1 / 16, upsample_align_corners=align, warp_padding=pad)
        m.double().eval().load_state_dict(state)
        with torch.no_grad():
            outs[(align, pad)] = m(a, b)
        assert m.conventions()["upsample_align_corners"] is align
        assert f"warp_padding={pad!r}" in repr(m)
    assert not torch.allclose(outs[(False, "border")], outs[(True, "border")])
    assert not torch.allclose(outs[(False, "border")], outs[(False, "zeros")])


def test_mean_normalisation_per_sample_over_both_frames():
    """Adding one constant per sample and channel to both frames changes nothing."""
    torch.manual_seed(3)
    model = build_model("FlowNet2", width=1 / 16).double().eval()
    a, b = _pair(b=2, h=64, w=64, seed=5, dtype=torch.float64)
    shift = torch.tensor([[10.0, -20.0, 5.0], [-3.0, 7.0, 30.0]], dtype=torch.float64).view(2, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(a + shift, b + shift), model(a, b), rtol=1e-9, atol=1e-9)
        # …but a constant on one frame only is a brightness change, which it sees.
        assert not torch.allclose(model(a + shift, b), model(a, b))


def test_batch_items_are_independent():
    torch.manual_seed(4)
    model = build_model("FlowNet2-CSS", width=1 / 16).double().eval()
    a, b = _pair(b=3, h=64, w=64, seed=6, dtype=torch.float64)
    with torch.no_grad():
        whole = model(a, b)
        one = model(a[1:2], b[1:2])
    torch.testing.assert_close(whole[1:2], one, rtol=1e-10, atol=1e-10)


def test_gradients_flow_in_float64():
    torch.manual_seed(5)
    model = build_model("FlowNet2", width=1 / 16).double().train()
    a, b = _pair(h=64, w=64, seed=7, dtype=torch.float64)
    loss = sum(o.abs().mean() for o in model(a, b))
    loss.backward()
    grads = [p.grad for p in model.flownetfusion.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(torch.isfinite(p.grad).all() for p in model.flownetc.parameters() if p.grad is not None)


def test_batch_norm_model_runs():
    torch.manual_seed(6)
    model = build_model("FlowNet2", width=1 / 16, batch_norm=True)
    a, b = _pair(b=2, h=64, w=64, seed=8)
    outs = model.train()(a, b)
    assert torch.isfinite(outs[0]).all()
    with torch.no_grad():
        assert model.eval()(a, b).shape == (2, 2, 64, 64)


@pytest.mark.parametrize("bad,match", [
    (lambda a: a[..., :100], "multiples of 64"),
    (lambda a: a[:, :1], r"\(B, 3, H, W\)"),
    (lambda a: a[0], r"\(B, 3, H, W\)"),
    (lambda a: a.to(torch.uint8), "float"),
])
def test_input_errors(bad, match):
    model = build_model("FlowNet2-S", width=1 / 16).eval()
    a, b = _pair(h=64, w=128)
    with pytest.raises(ValueError, match=match):
        model(bad(a), bad(b))
    with pytest.raises(ValueError, match="differ"):
        model(a, b[..., :64])


def test_convention_flag_validation():
    with pytest.raises(ValueError, match="warp_padding"):
        build_model("FlowNet2", width=1 / 16, warp_padding="reflect")
    with pytest.raises(ValueError, match="upsample_align_corners"):
        build_model("FlowNet2-C", width=1 / 16, upsample_align_corners="yes")
