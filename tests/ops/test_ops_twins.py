"""The pure-PyTorch twins of the three special ops, called directly.

The public functions dispatch to the compiled kernels when they load, so
checking them would not check the twins, which are the reference the
compiled kernels are compared with (``test_compiled_ops.py``) and the
fallback. Here each twin (``_correlation_twin``; ``_resample2d_twin`` and its
deterministic form ``_resample2d_gather``; ``_channel_norm_twin``) meets a
slow loop reference, hand cases, exceptions, gradcheck in float64,
non-contiguous inputs and dtype parametrisation. The public functions and
modules are checked for what is theirs: argument errors (the same as the
twins') and the module wrappers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from flownet2_core.ops import (
    ChannelNorm,
    Correlation,
    Resample2d,
    channel_norm,
    correlation,
    correlation_output_shape,
    implementations,
    resample2d,
)
from flownet2_core.ops.channel_norm import _channel_norm_twin
from flownet2_core.ops.correlation import _correlation_twin
from flownet2_core.ops.resample2d import _resample2d_gather, _resample2d_twin


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# --------------------------------------------------------------------------------------
# Correlation
# --------------------------------------------------------------------------------------
def correlation_loop(f1, f2, pad, k, md, s1, s2):
    """Literal transcription of the Caffe layer: padded coordinates, top-left patch at
    (y·s1 + md, x·s1 + md), zero outside the padded array, ÷ (k²·C), dy-major channels."""
    b, c, h, w = f1.shape
    f1p = F.pad(f1, (pad,) * 4)
    f2p = F.pad(f2, (pad,) * 4)
    ph, pw = f1p.shape[-2:]
    kr = (k - 1) // 2
    oh = math.ceil((h + 2 * pad - 2 * (md + kr)) / s1)
    ow = math.ceil((w + 2 * pad - 2 * (md + kr)) / s1)
    r = md // s2
    d = 2 * r + 1
    out = torch.zeros(b, d * d, oh, ow, dtype=f1.dtype)

    def at(t, y, x):
        if 0 <= y < ph and 0 <= x < pw:
            return t[:, :, y, x]
        return torch.zeros(b, c, dtype=t.dtype)

    for y in range(oh):
        for x in range(ow):
            y1, x1 = y * s1 + md, x * s1 + md
            for p in range(-r, r + 1):
                for o in range(-r, r + 1):
                    acc = torch.zeros(b, dtype=f1.dtype)
                    for j in range(k):
                        for i in range(k):
                            acc += (at(f1p, y1 + j, x1 + i) * at(f2p, y1 + j + s2 * p, x1 + i + s2 * o)).sum(1)
                    out[:, (p + r) * d + (o + r), y, x] = acc / (k * k * c)
    return out


class TestCorrelation:
    # (pad, kernel, max_disp, stride1, stride2)
    CONFIGS = (
        (20, 1, 20, 1, 2),  # FlowNetC
        (3, 3, 2, 1, 1),
        (4, 1, 4, 2, 2),
        (2, 2, 2, 1, 1),   # even kernel
        (3, 3, 3, 2, 1),
        (0, 1, 2, 1, 1),   # no padding: output shrinks
        (4, 1, 4, 1, 3),   # max_disp not a multiple of stride2
    )

    @pytest.mark.parametrize("cfg", CONFIGS)
    def test_against_loop_reference(self, cfg):
        f1, f2 = _randn(2, 3, 7, 9, seed=1), _randn(2, 3, 7, 9, seed=2)
        out = _correlation_twin(f1, f2, *cfg)
        ref = correlation_loop(f1, f2, *cfg)
        assert out.shape == ref.shape == (2, *correlation_output_shape(7, 9, *cfg))
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)

    def test_flownetc_shape(self):
        f = torch.randn(2, 16, 12, 20)
        out = _correlation_twin(f, f)
        assert out.shape == (2, 441, 12, 20)
        assert Correlation().out_channels == 441

    def test_zero_displacement_is_mean_of_products(self):
        f1, f2 = _randn(2, 5, 8, 10, seed=3), _randn(2, 5, 8, 10, seed=4)
        out = _correlation_twin(f1, f2)
        torch.testing.assert_close(out[:, 220], (f1 * f2).mean(1))  # (dy, dx) = (0, 0): 10·21 + 10

    def test_channel_order_and_zero_outside(self):
        # f1 = f2 = ones: a channel is 1 where the displaced position lies inside the image, else 0.
        h, w = 6, 50
        ones = torch.ones(1, 4, h, w, dtype=torch.float64)
        out = _correlation_twin(ones, ones)
        for dy, dx in [(-1, 0), (0, 3), (2, -4), (1, 10)]:
            ch = (dy + 10) * 21 + (dx + 10)
            ys = torch.arange(h).view(h, 1) + 2 * dy
            xs = torch.arange(w).view(1, w) + 2 * dx
            inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).double()
            torch.testing.assert_close(out[0, ch], inside)

    def test_shift_is_found_in_the_right_channel(self):
        # f2 = f1 shifted by (+2 rows, -4 cols): f2[y + 2, x - 4] = f1[y, x] → dy = +1, dx = -2.
        f1 = _randn(1, 64, 16, 16, seed=5)
        f2 = torch.zeros_like(f1)
        f2[:, :, 2:, :-4] = f1[:, :, :-2, 4:]
        out = _correlation_twin(f1, f2)
        ch = (1 + 10) * 21 + (-2 + 10)
        # Valid where the source pixel exists: y in [0, 14), x in [4, 16).
        torch.testing.assert_close(out[0, ch, :14, 4:], (f1[0, :, :14, 4:] ** 2).mean(0))
        # With 64 random channels the matching displacement wins clearly everywhere.
        assert out[0, :, :14, 4:].argmax(0).eq(ch).all()

    def test_module_matches_function(self):
        f1, f2 = _randn(1, 3, 9, 9, seed=6), _randn(1, 3, 9, 9, seed=7)
        mod = Correlation(pad_size=3, kernel_size=3, max_displacement=2, stride1=1, stride2=1)
        torch.testing.assert_close(mod(f1, f2), correlation(f1, f2, 3, 3, 2, 1, 1))
        assert "max_displacement=2" in repr(mod)

    def test_non_contiguous(self):
        base = _randn(2, 9, 3, 11, seed=8)
        f1 = base.permute(0, 2, 1, 3)  # (2, 3, 9, 11), non-contiguous
        f2 = _randn(2, 11, 9, 3, seed=9).transpose(1, 3)  # (2, 3, 9, 11)
        assert not f1.is_contiguous() and not f2.is_contiguous()
        torch.testing.assert_close(_correlation_twin(f1, f2, 4, 1, 4, 1, 2),
                                   _correlation_twin(f1.contiguous(), f2.contiguous(), 4, 1, 4, 1, 2))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtypes(self, dtype):
        f1, f2 = _randn(1, 4, 6, 6, seed=10, dtype=dtype), _randn(1, 4, 6, 6, seed=11, dtype=dtype)
        out = _correlation_twin(f1, f2, 4, 1, 4, 1, 2)
        assert out.dtype == dtype
        ref = correlation_loop(f1.double(), f2.double(), 4, 1, 4, 1, 2)
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("cfg", [(2, 1, 2, 1, 1), (2, 3, 2, 1, 2), (1, 1, 2, 2, 1)])
    def test_gradcheck(self, cfg):
        f1 = _randn(1, 2, 4, 5, seed=12).requires_grad_()
        f2 = _randn(1, 2, 4, 5, seed=13).requires_grad_()
        assert torch.autograd.gradcheck(lambda a, b: _correlation_twin(a, b, *cfg), (f1, f2))

    @pytest.mark.parametrize("fn", [_correlation_twin, correlation], ids=["twin", "public"])
    def test_exceptions(self, fn):
        f = torch.randn(1, 3, 8, 8)
        with pytest.raises(ValueError, match="differ in shape"):
            fn(f, torch.randn(1, 3, 8, 9))
        with pytest.raises(ValueError, match="B, C, H, W"):
            fn(f[0], f[0])
        with pytest.raises(ValueError, match="floating"):
            fn(f.long(), f.long())
        with pytest.raises(ValueError, match="kernel_size"):
            fn(f, f, kernel_size=0)
        with pytest.raises(ValueError, match="stride2"):
            Correlation(stride2=0)
        with pytest.raises(ValueError, match="too small"):
            fn(f, f, pad_size=0, max_displacement=20)


# --------------------------------------------------------------------------------------
# Resample2d
# --------------------------------------------------------------------------------------
def resample_loop(img, flow, padding_mode):
    """Per-pixel bilinear sampling at (x + u, y + v); "border" clamps the position,
    "zeros" counts neighbours outside the image as 0."""
    b, c, h, w = img.shape
    out = torch.zeros_like(img)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                px = x + float(flow[n, 0, y, x])
                py = y + float(flow[n, 1, y, x])
                if padding_mode == "border":
                    px = min(max(px, 0.0), w - 1.0)
                    py = min(max(py, 0.0), h - 1.0)
                x0, y0 = math.floor(px), math.floor(py)
                ax, ay = px - x0, py - y0
                acc = torch.zeros(c, dtype=img.dtype)
                for yy, wy in ((y0, 1 - ay), (y0 + 1, ay)):
                    for xx, wx in ((x0, 1 - ax), (x0 + 1, ax)):
                        if 0 <= yy < h and 0 <= xx < w and wx * wy != 0:
                            acc += wx * wy * img[n, :, yy, xx]
                out[n, :, y, x] = acc
    return out


# The grid_sample twin and its gather form (deterministic backward, used on GPUs under
# torch.use_deterministic_algorithms); both must meet every reference.
RESAMPLE_TWINS = pytest.mark.parametrize("twin", [_resample2d_twin, _resample2d_gather],
                                         ids=["grid_sample", "gather"])


class TestResample2d:
    @RESAMPLE_TWINS
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_against_loop_reference(self, mode, twin):
        img = _randn(2, 3, 6, 7, seed=20)
        flow = _randn(2, 2, 6, 7, seed=21) * 3  # reaches outside the image
        torch.testing.assert_close(twin(img, flow, mode), resample_loop(img, flow, mode),
                                   rtol=1e-12, atol=1e-12)

    @RESAMPLE_TWINS
    def test_equals_grid_sample_align_corners_true(self, twin):
        img = _randn(2, 3, 9, 13, seed=22)
        flow = _randn(2, 2, 9, 13, seed=23) * 4
        h, w = 9, 13
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
        gx = 2 * (xs + flow[:, 0]) / (w - 1) - 1
        gy = 2 * (ys + flow[:, 1]) / (h - 1) - 1
        for mode in ("border", "zeros"):
            ref = F.grid_sample(img, torch.stack((gx, gy), -1), mode="bilinear", padding_mode=mode,
                                align_corners=True)
            torch.testing.assert_close(twin(img, flow, mode), ref)

    @RESAMPLE_TWINS
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_zero_flow_is_identity(self, mode, twin):
        img = _randn(2, 4, 5, 8, seed=24)
        torch.testing.assert_close(twin(img, torch.zeros(2, 2, 5, 8, dtype=torch.float64), mode),
                                   img, rtol=0, atol=1e-14)

    @RESAMPLE_TWINS
    def test_integer_shift(self, twin):
        img = _randn(1, 2, 6, 8, seed=25)
        flow = torch.zeros(1, 2, 6, 8, dtype=torch.float64)
        flow[:, 0] = 2.0  # u = +2: out[y, x] = img[y, x + 2]
        flow[:, 1] = -1.0  # v = -1: out[y, x] = img[y - 1, ...]
        out = twin(img, flow, "zeros")
        torch.testing.assert_close(out[..., 1:, :-2], img[..., :-1, 2:])
        assert (out[..., 0, :] == 0).all() and (out[..., :, -2:] == 0).all()

    @RESAMPLE_TWINS
    def test_border_clamp_vs_zeros(self, twin):
        img = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4) + 1
        flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
        flow[:, 0] = 100.0  # far to the right
        border = twin(img, flow, "border")
        zeros = twin(img, flow, "zeros")
        torch.testing.assert_close(border, img[..., -1:].expand_as(img))  # last column repeated
        assert (zeros == 0).all()
        # Half a pixel beyond the last column: border gives the edge value, zeros fades to half.
        flow[:, 0] = 0.5
        torch.testing.assert_close(twin(img, flow, "zeros")[..., -1], img[..., -1] / 2)
        torch.testing.assert_close(twin(img, flow, "border")[..., -1], img[..., -1])

    @RESAMPLE_TWINS
    def test_size_one_dimensions(self, twin):
        img = _randn(1, 2, 1, 5, seed=26)
        flow = torch.zeros(1, 2, 1, 5, dtype=torch.float64)
        flow[:, 1] = 0.25
        torch.testing.assert_close(twin(img, flow, "border"), img)
        torch.testing.assert_close(twin(img, flow, "zeros"), img * 0.75)

    @RESAMPLE_TWINS
    def test_non_contiguous(self, twin):
        img = _randn(3, 6, 2, 5, seed=27).permute(0, 2, 1, 3)  # (3, 2, 6, 5)
        flow = _randn(3, 6, 2, 5, seed=28).permute(0, 2, 1, 3)
        assert not img.is_contiguous() and not flow.is_contiguous()
        torch.testing.assert_close(twin(img, flow, "zeros"),
                                   twin(img.contiguous(), flow.contiguous(), "zeros"))

    def test_module_matches_function(self):
        img, flow = _randn(2, 2, 6, 5, seed=27), _randn(2, 2, 6, 5, seed=28)
        mod = Resample2d("zeros")
        torch.testing.assert_close(mod(img, flow), resample2d(img, flow, "zeros"))
        assert "zeros" in repr(mod)

    @RESAMPLE_TWINS
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtypes(self, dtype, twin):
        img = _randn(1, 3, 4, 4, seed=29, dtype=dtype)
        flow = _randn(1, 2, 4, 4, seed=30, dtype=dtype)
        out = twin(img, flow)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), resample_loop(img.double(), flow.double(), "border"),
                                   rtol=1e-5, atol=1e-5)

    @RESAMPLE_TWINS
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_gradcheck(self, mode, twin):
        img = _randn(1, 2, 4, 5, seed=31).requires_grad_()
        # Keep positions away from integer coordinates and the clamp, where bilinear
        # sampling has kinks that finite differences cannot see through.
        flow = (torch.full((1, 2, 4, 5), 0.3, dtype=torch.float64)
                + 0.2 * torch.rand(1, 2, 4, 5, generator=_gen(32), dtype=torch.float64))
        flow[:, :, -1, :] *= -1
        flow[:, :, :, -1] *= -1
        flow.requires_grad_()
        assert torch.autograd.gradcheck(lambda i, f: twin(i, f, mode), (img, flow))

    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_gather_gradients_equal_grid_sample(self, mode):
        # Positions inside, outside and clamped, all away from the kinks.
        img = _randn(2, 3, 7, 9, seed=33).requires_grad_()
        flow = (_randn(2, 2, 7, 9, seed=34) * 4 + 0.37).requires_grad_()
        grad = _randn(2, 3, 7, 9, seed=35)
        grads = [torch.autograd.grad(twin(img, flow, mode), (img, flow), grad)
                 for twin in (_resample2d_twin, _resample2d_gather)]
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

    def test_gather_non_finite_positions(self):
        # A NaN position samples nothing; ±inf clamps ("border") or falls outside ("zeros"),
        # as the compiled kernels do (test_compiled_ops checks them against this).
        img = torch.arange(1.0, 13.0, dtype=torch.float64).view(1, 1, 3, 4)
        flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
        flow[0, 0, 1, 1] = math.nan
        flow[0, 1, 2, 2] = math.inf
        flow[0, 0, 0, 0] = -math.inf
        zeros = _resample2d_gather(img, flow, "zeros")
        border = _resample2d_gather(img, flow, "border")
        assert torch.isfinite(zeros).all() and torch.isfinite(border).all()
        assert zeros[0, 0, 1, 1] == 0 and zeros[0, 0, 2, 2] == 0 and zeros[0, 0, 0, 0] == 0
        assert border[0, 0, 1, 1] == 0 and border[0, 0, 2, 2] == img[0, 0, 2, 2]
        assert border[0, 0, 0, 0] == img[0, 0, 0, 0]

    @pytest.mark.parametrize("fn", [_resample2d_twin, _resample2d_gather, resample2d],
                             ids=["twin", "gather", "public"])
    def test_exceptions(self, fn):
        img, flow = torch.randn(1, 3, 4, 4), torch.randn(1, 2, 4, 4)
        with pytest.raises(ValueError, match="padding_mode"):
            fn(img, flow, "reflect")
        with pytest.raises(ValueError, match="padding_mode"):
            Resample2d("reflect")
        with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
            fn(img, torch.randn(1, 3, 4, 4))
        with pytest.raises(ValueError, match="differ"):
            fn(img, torch.randn(1, 2, 4, 5))
        with pytest.raises(ValueError, match="4-D"):
            fn(img[0], flow[0])
        with pytest.raises(ValueError, match="floating"):
            fn(img.long(), flow)


# --------------------------------------------------------------------------------------
# ChannelNorm
# --------------------------------------------------------------------------------------
def channel_norm_loop(x):
    """Per-pixel square root of the sum of squares, one pixel at a time, in float64."""
    b, c, h, w = x.shape
    out = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for n in range(b):
        for y in range(h):
            for i in range(w):
                out[n, 0, y, i] = math.sqrt(sum(float(x[n, k, y, i]) ** 2 for k in range(c)))
    return out


class TestChannelNorm:
    def test_against_loop_reference(self):
        x = _randn(2, 5, 3, 4, seed=40)
        out = _channel_norm_twin(x)
        assert out.shape == (2, 1, 3, 4)
        torch.testing.assert_close(out, channel_norm_loop(x), rtol=1e-14, atol=1e-14)

    def test_hand_case(self):
        torch.testing.assert_close(_channel_norm_twin(torch.tensor([[[[3.0]], [[4.0]]]])),
                                   torch.tensor([[[[5.0]]]]))

    def test_exact_at_zero_and_finite_gradient(self):
        x = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
        out = _channel_norm_twin(x)
        assert (out == 0).all()  # no epsilon under the root
        out.sum().backward()
        assert torch.isfinite(x.grad).all() and (x.grad == 0).all()

    def test_gradient_mixed_zero_and_nonzero(self):
        x = _randn(1, 3, 2, 2, seed=41)
        x[:, :, 0, 0] = 0
        x.requires_grad_()
        _channel_norm_twin(x).sum().backward()
        assert torch.isfinite(x.grad).all() and (x.grad[..., 0, 0] == 0).all()
        expect = x.detach() / channel_norm_loop(x.detach())
        torch.testing.assert_close(x.grad[..., 1:, :], expect[..., 1:, :])

    def test_gradcheck(self):
        x = _randn(2, 3, 3, 4, seed=42).requires_grad_()
        assert torch.autograd.gradcheck(_channel_norm_twin, (x,))

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_does_not_overflow(self, dtype):
        x = torch.full((1, 2, 1, 1), 300.0, dtype=dtype)  # 300² > float16 max
        out = _channel_norm_twin(x)
        assert out.dtype == dtype and torch.isfinite(out).all()
        assert abs(float(out) - 300 * math.sqrt(2)) < 2  # bfloat16 keeps 8 bits: 424 ± 1

    def test_non_contiguous(self):
        x = _randn(2, 4, 5, 3, seed=43).transpose(1, 3)  # (2, 3, 5, 4)
        assert not x.is_contiguous()
        torch.testing.assert_close(_channel_norm_twin(x), channel_norm_loop(x), rtol=1e-14, atol=1e-14)

    def test_module_matches_function(self):
        x = _randn(2, 3, 5, 4, seed=44)
        torch.testing.assert_close(ChannelNorm()(x), channel_norm(x))

    @pytest.mark.parametrize("fn", [_channel_norm_twin, channel_norm], ids=["twin", "public"])
    def test_exceptions(self, fn):
        with pytest.raises(ValueError, match="B, C, H, W"):
            fn(torch.randn(3, 4, 5))
        with pytest.raises(ValueError, match="floating"):
            fn(torch.ones(1, 2, 3, 3, dtype=torch.long))


def test_dispatch_table_names_every_op():
    impl = implementations()
    assert set(impl) == {"correlation", "resample2d", "channel_norm"}
    assert all(isinstance(v, str) and v for v in impl.values())


def test_public_functions_agree_with_the_twins():
    """Whatever the public functions dispatch to (compiled kernels or the twins themselves)
    agrees with the twins; test_compiled_ops.py checks the compiled kernels in depth."""
    f = _randn(1, 2, 4, 4, seed=50)
    torch.testing.assert_close(_correlation_twin(f, f, 2, 1, 2, 1, 1), correlation(f, f, 2, 1, 2, 1, 1))
    torch.testing.assert_close(_resample2d_twin(f, f), resample2d(f, f))
    torch.testing.assert_close(_channel_norm_twin(f), channel_norm(f))
