"""The compiled ops (flownet2_core._C) against their pure-PyTorch twins.

Per op: forward and backward equal to the twin (float64 and float32,
contiguous and not, batch > 1, odd sizes, zero-size), gradcheck in float64,
``torch.library.opcheck``, hand-computed cases. Then: ``backend()``, the
fallback when the library does not load (and ``FLOWNET2_REQUIRE_COMPILED=1``
turning it into an error), FLOP counting, meta tensors and ``torch.compile``,
and the full FlowNet2 forward with compiled ops against the twin ops.

CUDA variants carry the ``cuda`` marker and are skipped without a GPU; they
opt in to the CUDA kernels themselves (``use_cuda_kernels(True)``, an autouse
fixture), which CUDA tensors otherwise do not use until validated on a GPU.
When the library did not load (and FLOWNET2_REQUIRE_COMPILED is not set) the
tests of compiled kernels are skipped with the load error as the reason.

Correlation on CPU with ``kernel_size > 1`` or ``stride1 > 1`` goes to the twin
by design (the compiled CPU kernel is FlowNetC's path only): for those
settings the CPU tests check that routing, the CUDA tests the kernel.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import flownet2_core.ops as ops
from flownet2_core.ops import backend, channel_norm, correlation, resample2d, use_cuda_kernels
from flownet2_core.ops._compiled import CUDA_ENV, CUDA_KERNELS_VALIDATED, REQUIRE_ENV
from flownet2_core.ops.channel_norm import _channel_norm_twin
from flownet2_core.ops.correlation import _correlation_twin
from flownet2_core.ops.resample2d import _resample2d_gather, _resample2d_twin

_BACKEND = backend()
COMPILED = all(v["implementation"] == "compiled" for v in _BACKEND.values())
requires_compiled = pytest.mark.skipif(
    not COMPILED, reason=f"compiled ops unavailable: {_BACKEND['correlation']['reason']}")
pytestmark = requires_compiled

HAS_CUDA_KERNELS = COMPILED and "cuda" in _BACKEND["correlation"]["built"]
CUDA_MARKS = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.skipif(torch.cuda.is_available() and not HAS_CUDA_KERNELS,
                       reason="flownet2_core._C was built without CUDA kernels"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]
needs_cuda_kernels = pytest.mark.parametrize("device", [pytest.param("cuda", marks=CUDA_MARKS)])
TOL = {torch.float64: dict(atol=1e-12, rtol=1e-12), torch.float32: dict(atol=2e-5, rtol=1e-5)}


@pytest.fixture(autouse=True)
def _cuda_kernels_opted_in():
    """These tests are about the compiled kernels: CUDA tensors use them (opt-in)."""
    previous = use_cuda_kernels(True)
    yield
    use_cuda_kernels(previous)


def _op_module(op: str):
    """The module ``flownet2_core.ops.<op>`` (the package attribute of that name is the function)."""
    return importlib.import_module(f"flownet2_core.ops.{op}")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _noncontiguous(x: torch.Tensor) -> torch.Tensor:
    """Same values, strides of a transposed copy (H and W swapped in memory)."""
    out = x.transpose(2, 3).contiguous().transpose(2, 3)
    assert not out.is_contiguous() and torch.equal(out, x)
    return out


def _value_and_grads(fn, inputs, grad_out=None):
    leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = fn(*leaves)
    g = torch.randn(out.shape, generator=_gen(99), dtype=torch.float64).to(out) \
        if grad_out is None else grad_out
    grads = torch.autograd.grad(out, [t for t in leaves if t.requires_grad], g)
    return out.detach(), grads, g


def _assert_close_to_twin(compiled_fn, twin_fn, inputs, dtype):
    out_c, grads_c, g = _value_and_grads(compiled_fn, inputs)
    out_t, grads_t, _ = _value_and_grads(twin_fn, inputs, g)
    assert out_c.shape == out_t.shape and out_c.dtype == out_t.dtype
    torch.testing.assert_close(out_c, out_t, **TOL[dtype])
    for gc, gt in zip(grads_c, grads_t):
        torch.testing.assert_close(gc, gt, **TOL[dtype])


# --------------------------------------------------------------------------------------
# Correlation
# --------------------------------------------------------------------------------------
# (pad, kernel, max displacement, stride1, stride2): FlowNetC's setting scaled
# down, small radii, stride2 1 and 3, input rows no displacement reaches (their
# gradient is zero: stride2 6 over a one-row output): the compiled CPU kernel's
# settings (kernel 1, stride1 1).
CORR_FAST = [
    (20, 1, 20, 1, 2),
    (4, 1, 4, 1, 2),
    (3, 1, 3, 1, 1),
    (2, 1, 6, 1, 3),
    (0, 1, 2, 1, 1),
    (5, 1, 2, 1, 1),
    (0, 1, 6, 1, 6),
    (1, 1, 6, 1, 4),
]
# The general settings (kernel > 1, stride1 > 1, even kernel): CUDA kernel; twin on CPU.
CORR_GENERAL = [
    (3, 2, 2, 2, 1),
    (1, 3, 2, 2, 2),
    (3, 3, 2, 1, 1),
    (4, 1, 4, 2, 2),
]


def _corr_id(config) -> str:
    return "-".join(map(str, config))


# Compiled kernel vs twin: CPU for its settings, CUDA for all.
CORR_CASES = ([pytest.param(c, "cpu", id=f"{_corr_id(c)}-cpu") for c in CORR_FAST]
              + [pytest.param(c, "cuda", id=f"{_corr_id(c)}-cuda", marks=CUDA_MARKS)
                 for c in CORR_FAST + CORR_GENERAL])


class TestCorrelation:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("config, device", CORR_CASES)
    @pytest.mark.parametrize("contiguous", [True, False], ids=["contig", "strided"])
    def test_matches_twin(self, config, dtype, contiguous, device):
        g = _gen(0)
        shape = (2, 5, 13, 19)  # batch > 1, odd sizes, widths not a multiple of the vector
        f1 = torch.randn(shape, generator=g, dtype=dtype).to(device)
        f2 = torch.randn(shape, generator=g, dtype=dtype).to(device)
        if not contiguous:
            f1, f2 = _noncontiguous(f1), _noncontiguous(f2)
        _assert_close_to_twin(lambda a, b: correlation(a, b, *config),
                              lambda a, b: _correlation_twin(a, b, *config), (f1, f2), dtype)

    @pytest.mark.parametrize("device", DEVICES)
    def test_flownetc_shape_matches_twin(self, device):
        # Many channels and FlowNetC's geometry at a small size; float32 as in use.
        g = _gen(1)
        f1 = torch.randn(1, 64, 12, 20, generator=g).to(device)
        f2 = torch.randn(1, 64, 12, 20, generator=g).to(device)
        _assert_close_to_twin(correlation, _correlation_twin, (f1, f2), torch.float32)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_half_types_close_to_float(self, dtype):
        g = _gen(2)
        f1, f2 = (torch.randn(2, 16, 9, 11, generator=g) for _ in range(2))
        ref = _correlation_twin(f1, f2, 4, 1, 4, 1, 2)
        out = correlation(f1.to(dtype), f2.to(dtype), 4, 1, 4, 1, 2)
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)

    def test_zero_batch(self):
        f = torch.randn(0, 4, 9, 10, requires_grad=True)
        out = correlation(f, f, 4, 1, 4, 1, 2)
        assert out.shape == _correlation_twin(f, f, 4, 1, 4, 1, 2).shape == (0, 25, 9, 10)
        out.sum().backward()
        assert f.grad.shape == f.shape

    def test_zero_displacement_is_channel_mean_of_products(self):
        g = _gen(3)
        f1, f2 = torch.randn(2, 7, 6, 9, generator=g), torch.randn(2, 7, 6, 9, generator=g)
        out = correlation(f1, f2, 4, 1, 4, 1, 2)  # 5×5 displacements, centre channel 12
        torch.testing.assert_close(out[:, 12], (f1 * f2).mean(dim=1))

    def test_shifted_copy_peaks_at_its_displacement(self):
        g = _gen(4)
        f1 = torch.randn(1, 16, 12, 12, generator=g)
        # f2(y, x) = f1(y - 2, x + 4): f1 at (y, x) is found at displacement (dy, dx) = (2, -4).
        f2 = torch.roll(f1, shifts=(2, -4), dims=(2, 3))
        out = correlation(f1, f2, 6, 1, 6, 1, 2)  # D = 7, displacements -6..6 step 2
        channel = (1 + 3) * 7 + (-2 + 3)  # (dy/2 + r) * D + (dx/2 + r)
        inner = out[0, channel, 0:8, 4:12]  # where the shifted position stays inside
        torch.testing.assert_close(inner, (f1[0, :, 0:8, 4:12] ** 2).mean(0))
        assert (out[0].argmax(0)[0:8, 4:12] == channel).all()

    def test_outside_is_zero(self):
        f = torch.ones(1, 3, 4, 4)
        out = correlation(f, f, 2, 1, 2, 1, 1)  # 5×5 displacements, radius 2
        # Displacement (-2, -2) at (0, 0) reads outside the image: zero.
        assert out[0, 0, 0, 0] == 0 and out[0, 12, 0, 0] == 1

    @pytest.mark.parametrize("device", DEVICES)
    def test_gradcheck(self, device):
        g = _gen(5)
        configs = [((2, 1, 2, 1, 2), (2, 3, 5, 6)), ((1, 1, 3, 1, 1), (1, 2, 6, 5))]
        if device == "cuda":
            configs.append(((1, 2, 2, 2, 1), (1, 2, 6, 5)))
        for config, shape in configs:
            f1 = torch.randn(shape, generator=g, dtype=torch.float64).to(device).requires_grad_()
            f2 = torch.randn(shape, generator=g, dtype=torch.float64).to(device).requires_grad_()
            assert torch.autograd.gradcheck(lambda a, b: correlation(a, b, *config), (f1, f2))

    @pytest.mark.parametrize("device", DEVICES)
    def test_opcheck(self, device):
        g = _gen(6)
        f1 = torch.randn(2, 3, 7, 9, generator=g).to(device).requires_grad_()
        f2 = torch.randn(2, 3, 7, 9, generator=g).to(device).requires_grad_()
        torch.library.opcheck(torch.ops.flownet2.correlation.default, (f1, f2, 4, 1, 4, 1, 2))
        if device == "cuda":
            torch.library.opcheck(torch.ops.flownet2.correlation.default, (f1, f2, 2, 3, 2, 2, 1))
        grad = torch.randn(2, 25, 7, 9, generator=g).to(device)
        torch.library.opcheck(torch.ops.flownet2._correlation_backward.default,
                              (grad, f1.detach(), f2.detach(), 4, 1, 4, 1, 2))

    @pytest.mark.parametrize("config", CORR_GENERAL, ids=_corr_id)
    def test_general_settings_use_the_twin_on_cpu(self, config, monkeypatch):
        g = _gen(7)
        f1, f2 = (torch.randn(2, 5, 13, 19, generator=g, dtype=torch.float64, requires_grad=True)
                  for _ in range(2))
        calls = []
        twin = _correlation_twin

        def recording_twin(*args):
            calls.append(args[2:])
            return twin(*args)

        monkeypatch.setattr(_op_module("correlation"), "_correlation_twin", recording_twin)
        out = correlation(f1, f2, *config)
        assert calls == [config]
        ref = twin(f1, f2, *config)
        assert torch.equal(out, ref)
        grads = torch.autograd.grad(out.sum(), (f1, f2))
        for a, b in zip(grads, torch.autograd.grad(ref.sum(), (f1, f2))):
            assert torch.equal(a, b)
        # The fast path stays compiled.
        calls.clear()
        correlation(f1, f2, 4, 1, 4, 1, 2)
        assert calls == []
        # The compiled CPU kernels refuse the general settings instead of computing them.
        with pytest.raises(RuntimeError, match="kernel_size 1 and stride1 1 only"):
            torch.ops.flownet2.correlation(f1.detach(), f2.detach(), *config)
        with pytest.raises(RuntimeError, match="kernel_size 1 and stride1 1 only"):
            torch.ops.flownet2._correlation_backward(out.detach(), f1.detach(), f2.detach(),
                                                     *config)

    def test_errors_match_twin(self):
        f = torch.randn(1, 3, 8, 8)
        for args, kwargs in (((f, f[:, :2]), {}), ((f, f), {"stride2": 0}),
                             ((f[:, :, :2, :2], f[:, :, :2, :2], 0, 1, 2), {})):
            with pytest.raises(ValueError) as compiled_err:
                correlation(*args, **kwargs)
            with pytest.raises(ValueError) as twin_err:
                _correlation_twin(*args, **kwargs)
            assert str(compiled_err.value) == str(twin_err.value)

    def test_portable_cpu_path_in_subprocess(self):
        """FLOWNET2_CPU_SIMD=base forces the portable (non-AVX2) kernels; they agree too."""
        code = """
            import torch
            from flownet2_core.ops import correlation, resample2d
            from flownet2_core.ops.correlation import _correlation_twin
            from flownet2_core.ops.resample2d import _resample2d_twin
            g = torch.Generator().manual_seed(0)

            def check(fn, twin, inputs, tol):
                inputs = [t.requires_grad_(True) for t in inputs]
                out, ref = fn(*inputs), twin(*inputs)
                grads = torch.autograd.grad(out.sum(), inputs)
                ref_grads = torch.autograd.grad(ref.sum(), inputs)
                for x, y in zip((out, *grads), (ref, *ref_grads)):
                    torch.testing.assert_close(x, y, atol=tol, rtol=tol)

            for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
                a, b = (torch.randn(2, 9, 11, 21, generator=g, dtype=dtype) for _ in range(2))
                check(lambda x, y: correlation(x, y, 6, 1, 6, 1, 2),
                      lambda x, y: _correlation_twin(x, y, 6, 1, 6, 1, 2), (a, b), tol)
                flow = torch.randn(2, 2, 11, 21, generator=g, dtype=dtype) * 4
                for mode in ("border", "zeros"):
                    check(lambda i, f: resample2d(i, f, mode),
                          lambda i, f: _resample2d_twin(i, f, mode), (a.clone(), flow.clone()), tol)
            print("ok")
        """
        result = _run_python(code, FLOWNET2_CPU_SIMD="base")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------------------
# Resample2d
# --------------------------------------------------------------------------------------
class TestResample2d:
    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    @pytest.mark.parametrize("contiguous", [True, False], ids=["contig", "strided"])
    # (1, 3, …): an image, whose input gradient the CPU kernel scatters into
    # per-thread copies; (3, 4, …): many planes, scattered one plane per task.
    @pytest.mark.parametrize("shape", [(1, 3, 11, 17), (3, 4, 11, 17)], ids=["image", "planes"])
    def test_matches_twin(self, shape, mode, dtype, contiguous, device):
        g = _gen(10)
        img = torch.rand(shape, generator=g, dtype=dtype).to(device)
        # Flows that reach well outside the image, so both modes' edges are exercised.
        flow = (torch.randn(shape[0], 2, *shape[2:], generator=g, dtype=dtype) * 4).to(device)
        if not contiguous:
            img, flow = _noncontiguous(img), _noncontiguous(flow)
        _assert_close_to_twin(lambda i, f: resample2d(i, f, mode),
                              lambda i, f: _resample2d_twin(i, f, mode), (img, flow), dtype)

    def test_mixed_dtypes_promote_like_twin(self):
        img = torch.rand(1, 3, 5, 6, dtype=torch.float32)
        flow = torch.randn(1, 2, 5, 6, dtype=torch.float64)
        out = resample2d(img, flow)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, _resample2d_twin(img, flow))

    @pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 0, 4, 5)])
    def test_zero_size(self, shape):
        img = torch.rand(shape, requires_grad=True)
        flow = torch.randn(shape[0], 2, *shape[2:], requires_grad=True)
        out = resample2d(img, flow)
        assert out.shape == _resample2d_twin(img, flow).shape == img.shape
        out.sum().backward()
        assert img.grad.shape == img.shape and flow.grad.shape == flow.shape

    def test_zero_flow_is_identity(self):
        img = torch.rand(2, 3, 7, 8, generator=_gen(11))
        for mode in ("border", "zeros"):
            assert torch.equal(resample2d(img, torch.zeros(2, 2, 7, 8), mode), img)

    def test_integer_shift(self):
        img = torch.rand(1, 2, 6, 9, generator=_gen(12), dtype=torch.float64)
        flow = torch.zeros(1, 2, 6, 9, dtype=torch.float64)
        flow[:, 0], flow[:, 1] = 2.0, -1.0  # sample at (x + 2, y - 1)
        out = resample2d(img, flow, "zeros")
        assert torch.equal(out[..., 1:, :7], img[..., :5, 2:])
        assert (out[..., 0, :] == 0).all() and (out[..., 7:] == 0).all()

    def test_border_clamps_and_zeros_fill(self):
        img = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4)
        flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
        flow[:, 0] = -10.0  # far left of every pixel
        assert torch.equal(resample2d(img, flow, "border"), img[..., :1].expand(1, 1, 3, 4))
        assert torch.equal(resample2d(img, flow, "zeros"), torch.zeros_like(img))
        flow[:, 0] = -0.5  # half a pixel left: column 0 fades to 0 in "zeros", stays in "border"
        zeros = resample2d(img, flow, "zeros")
        border = resample2d(img, flow, "border")
        torch.testing.assert_close(zeros[..., 0], img[..., 0] / 2)
        torch.testing.assert_close(border[..., 0], img[..., 0])
        torch.testing.assert_close(zeros[..., 1:], (img[..., :-1] + img[..., 1:]) / 2)

    def test_equals_grid_sample_align_corners(self):
        g = _gen(13)
        img = torch.rand(2, 3, 8, 10, generator=g, dtype=torch.float64)
        flow = torch.randn(2, 2, 8, 10, generator=g, dtype=torch.float64) * 3
        ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(10.0), indexing="ij")
        grid = torch.stack((2 * (xs + flow[:, 0]) / 9 - 1, 2 * (ys + flow[:, 1]) / 7 - 1), -1)
        ref = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
        torch.testing.assert_close(resample2d(img, flow, "border"), ref)

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_gradcheck(self, mode, device):
        g = _gen(14)
        img = torch.rand(2, 2, 5, 6, generator=g, dtype=torch.float64).to(device)
        # Non-integer positions (the bilinear kinks) inside and outside the image.
        flow = (torch.rand(2, 2, 5, 6, generator=g, dtype=torch.float64) * 8 - 4 + 0.37).to(device)
        img.requires_grad_(True)
        flow.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda i, f: resample2d(i, f, mode), (img, flow))

    @pytest.mark.parametrize("device", DEVICES)
    def test_opcheck(self, device):
        g = _gen(15)
        img = torch.rand(2, 3, 6, 7, generator=g).to(device).requires_grad_()
        flow = torch.randn(2, 2, 6, 7, generator=g).to(device).requires_grad_()
        for mode in ("border", "zeros"):
            torch.library.opcheck(torch.ops.flownet2.resample2d.default, (img, flow, mode))
        torch.library.opcheck(torch.ops.flownet2._resample2d_backward.default,
                              (torch.randn(2, 3, 6, 7, generator=g).to(device), img.detach(),
                               flow.detach(), "zeros"))

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_non_finite_flow_like_gather_twin(self, mode, device):
        # NaN samples nothing, ±inf clamps or falls outside: the kernels and the gather
        # form of the twin agree value for value, gradients included.
        g = _gen(16)
        img = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64).to(device)
        flow = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64) * 3
        flow[0, 0, 1, 1] = flow[1, 1, 4, 0] = float("nan")
        flow[0, 1, 2, 2] = float("inf")
        flow[1, 0, 0, 5] = -float("inf")
        _assert_close_to_twin(lambda i, f: resample2d(i, f, mode),
                              lambda i, f: _resample2d_gather(i, f, mode),
                              (img, flow.to(device)), torch.float64)

    @needs_cuda_kernels
    def test_cuda_backward_raises_the_nondeterminism_alert(self, device):
        g = _gen(17)
        img = torch.rand(1, 2, 5, 6, generator=g).to(device)
        flow = torch.randn(1, 2, 5, 6, generator=g).to(device)
        grad = torch.randn(1, 2, 5, 6, generator=g).to(device)
        try:
            torch.use_deterministic_algorithms(True)
            with pytest.raises(RuntimeError, match="does not have a deterministic implementation"):
                torch.ops.flownet2._resample2d_backward(grad, img, flow, "border")
            torch.use_deterministic_algorithms(True, warn_only=True)
            with pytest.warns(UserWarning, match="does not have a deterministic implementation"):
                torch.ops.flownet2._resample2d_backward(grad, img, flow, "border")
        finally:
            torch.use_deterministic_algorithms(False)

    @needs_cuda_kernels
    @pytest.mark.parametrize("mode", ["border", "zeros"])
    def test_cuda_deterministic_mode_uses_the_gather_twin(self, mode, device, monkeypatch):
        g = _gen(18)
        img = torch.rand(2, 3, 9, 11, generator=g).to(device)
        flow = (torch.randn(2, 2, 9, 11, generator=g) * 4).to(device)
        out, grads, grad_out = _value_and_grads(lambda i, f: resample2d(i, f, mode), (img, flow))
        calls = []
        gather = _resample2d_gather

        def recording_gather(*args):
            calls.append(args[2])
            return gather(*args)

        monkeypatch.setattr(_op_module("resample2d"), "_resample2d_gather", recording_gather)
        try:
            torch.use_deterministic_algorithms(True)
            det = [_value_and_grads(lambda i, f: resample2d(i, f, mode), (img, flow), grad_out)
                   for _ in range(2)]
            with torch.no_grad():  # no gradient needed: the (deterministic) forward kernel
                resample2d(img, flow, mode)
        finally:
            torch.use_deterministic_algorithms(False)
        assert calls == [mode, mode]
        for a, b in zip(det[0][1], det[1][1]):
            assert torch.equal(a, b)  # bitwise reproducible
        torch.testing.assert_close(det[0][0], out, **TOL[torch.float32])
        for a, b in zip(det[0][1], grads):
            torch.testing.assert_close(a, b, **TOL[torch.float32])

    def test_bad_mode(self):
        img, flow = torch.rand(1, 1, 3, 3), torch.zeros(1, 2, 3, 3)
        with pytest.raises(ValueError, match="padding_mode"):
            resample2d(img, flow, "reflect")
        with pytest.raises(RuntimeError, match="padding_mode"):
            torch.ops.flownet2.resample2d(img, flow, "reflect")


# --------------------------------------------------------------------------------------
# ChannelNorm
# --------------------------------------------------------------------------------------
class TestChannelNorm:
    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("contiguous", [True, False], ids=["contig", "strided"])
    def test_matches_twin(self, dtype, contiguous, device):
        x = torch.randn(3, 5, 9, 13, generator=_gen(20), dtype=dtype)
        x[1, :, 2, 3] = 0  # a zero pixel: gradient 0 there
        x = x.to(device)
        if not contiguous:
            x = _noncontiguous(x)
        _assert_close_to_twin(channel_norm, _channel_norm_twin, (x,), dtype)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_half_types_match_twin(self, dtype):
        x = (torch.randn(2, 2, 5, 7, generator=_gen(21)) * 300).to(dtype)  # squares overflow half
        out, grads, g = _value_and_grads(channel_norm, (x,))
        ref, ref_grads, _ = _value_and_grads(_channel_norm_twin, (x,), g)
        assert out.dtype == dtype and torch.isfinite(out).all()
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(grads[0], ref_grads[0])

    def test_hand_case_and_zero_gradient(self):
        x = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]], requires_grad=True)  # (1, 2, 1, 2)
        out = channel_norm(x)
        assert torch.equal(out.detach(), torch.tensor([[[[5.0, 0.0]]]]))
        out.sum().backward()
        assert torch.equal(x.grad, torch.tensor([[[[0.6, 0.0]], [[0.8, 0.0]]]]))

    @pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5)])
    def test_zero_size(self, shape):
        x = torch.randn(shape, requires_grad=True)
        out = channel_norm(x)
        ref = _channel_norm_twin(x)
        assert out.shape == ref.shape and torch.equal(out, ref)
        out.sum().backward()
        assert x.grad.shape == x.shape

    @pytest.mark.parametrize("device", DEVICES)
    def test_gradcheck(self, device):
        x = torch.randn(2, 3, 4, 5, generator=_gen(22), dtype=torch.float64).to(device)
        assert torch.autograd.gradcheck(channel_norm, (x.requires_grad_(),))

    @pytest.mark.parametrize("device", DEVICES)
    def test_opcheck(self, device):
        x = torch.randn(2, 3, 4, 5, generator=_gen(23)).to(device).requires_grad_()
        torch.library.opcheck(torch.ops.flownet2.channel_norm.default, (x,))
        norm = torch.ops.flownet2.channel_norm(x.detach())
        torch.library.opcheck(torch.ops.flownet2._channel_norm_backward.default,
                              (torch.randn_like(norm), x.detach(), norm))


# --------------------------------------------------------------------------------------
# backend(), fallback, FLOPs, meta / torch.compile
# --------------------------------------------------------------------------------------
def _run_python(code: str, prelude: str = "", **env_updates: str | None
                ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_updates.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, timeout=300)


# Makes `import flownet2_core._C` fail the way a missing build does (ImportError).
_BLOCK_LIBRARY = "import sys; sys.modules['flownet2_core._C'] = None\n"


class TestBackend:
    def test_reports_compiled(self):
        info = backend()
        assert set(info) == {"correlation", "resample2d", "channel_norm"}
        for op, entry in info.items():
            assert entry["implementation"] == "compiled"
            assert "cpu" in entry["devices"] and "cpu" in entry["built"]
            assert ops.implementations()[op].startswith("flownet2_core.ops._compiled.")
            assert entry["reason"] == ("; ".join(entry["notes"]) or None)
            if "cuda" not in entry["built"]:
                assert "without CUDA" in entry["reason"]
        assert "kernel_size > 1 or stride1 > 1" in info["correlation"]["reason"]

    def test_cuda_kernels_are_opt_in(self, monkeypatch):
        """Default, environment variable and argument decide whether CUDA tensors use them."""
        built = "cuda" in backend()["resample2d"]["built"]
        previous = use_cuda_kernels(None)
        try:
            monkeypatch.delenv(CUDA_ENV, raising=False)
            use_cuda_kernels(None)
            info = backend()["resample2d"]
            assert ("cuda" in info["devices"]) == (built and CUDA_KERNELS_VALIDATED)
            if built and not CUDA_KERNELS_VALIDATED:
                assert "not yet validated" in info["reason"] and f"{CUDA_ENV}=1" in info["reason"]
            monkeypatch.setenv(CUDA_ENV, "1")
            use_cuda_kernels(None)  # the environment is read again
            info = backend()["resample2d"]
            assert ("cuda" in info["devices"]) == built
            if built:
                assert f"{CUDA_ENV}=1" in info["reason"]
                assert "use_deterministic_algorithms" in info["reason"]
            monkeypatch.setenv(CUDA_ENV, "0")
            use_cuda_kernels(None)
            assert "cuda" not in backend()["resample2d"]["devices"]
            assert use_cuda_kernels(True) is None  # the argument wins over the environment
            assert ("cuda" in backend()["channel_norm"]["devices"]) == built
            assert use_cuda_kernels(False) is True
            info = backend()["channel_norm"]
            assert "cuda" not in info["devices"]
            if built:
                assert "use_cuda_kernels(False)" in info["reason"]
            with pytest.raises(ValueError, match="True, False or None"):
                use_cuda_kernels("yes")
        finally:
            use_cuda_kernels(previous)

    def test_main_says_which_and_why(self):
        result = subprocess.run([sys.executable, "-m", "flownet2_core.ops"], capture_output=True,
                                text=True, env={**os.environ, CUDA_ENV: "0"}, timeout=300)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        heads = [line for line in lines if not line.startswith(" ")]
        assert [h.split()[:2] for h in heads] == [[op, "compiled"] for op in
                                                  ("correlation", "resample2d", "channel_norm")]
        assert all(h.split("devices: ")[1] == "cpu" for h in heads)  # CUDA switched off
        notes = "\n".join(line.strip() for line in lines if line.startswith("    "))
        assert "kernel_size > 1 or stride1 > 1" in notes
        assert (f"{CUDA_ENV}=0" in notes) or ("without CUDA" in notes)

    @needs_cuda_kernels
    def test_cuda_tensors_use_the_twins_unless_opted_in(self, device, monkeypatch):
        calls = []
        for op in ("correlation", "resample2d", "channel_norm"):
            twin = getattr(_op_module(op), f"_{op}_twin")
            monkeypatch.setattr(_op_module(op), f"_{op}_twin",
                                lambda *a, _op=op, _twin=twin: calls.append(_op) or _twin(*a))
        f = torch.randn(1, 4, 6, 7, device=device)
        flow = torch.randn(1, 2, 6, 7, device=device)

        def run():
            correlation(f, f, 2, 1, 2, 1, 1)
            resample2d(f, flow)
            channel_norm(f)

        use_cuda_kernels(False)
        run()
        assert calls == ["correlation", "resample2d", "channel_norm"]
        calls.clear()
        use_cuda_kernels(True)
        run()
        assert calls == []

    def test_fallback_keeps_twins_and_the_reason(self):
        code = """
            import json, torch
            import flownet2_core.ops as ops
            f = torch.randn(1, 3, 6, 7)
            out = ops.correlation(f, f, 2, 1, 2, 1, 1)  # still works, through the twin
            print(json.dumps({"backend": ops.backend(), "impl": ops.implementations(),
                              "registered": hasattr(torch.ops.flownet2, "correlation"),
                              "shape": list(out.shape)}))
        """
        result = _run_python(code, prelude=_BLOCK_LIBRARY, **{REQUIRE_ENV: None})
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout.strip().splitlines()[-1])
        assert info["shape"] == [1, 25, 6, 7]
        assert not info["registered"]  # nothing half-registered
        for op, entry in info["backend"].items():
            assert entry["implementation"] == "twin" and entry["devices"] == []
            assert entry["notes"] == [entry["reason"]]
            # The original error, verbatim (ModuleNotFoundError, a kind of ImportError).
            assert "import of flownet2_core._C halted" in entry["reason"]
            assert info["impl"][op].endswith(f"_{op}_twin")

    def test_require_compiled_turns_fallback_into_error(self):
        result = _run_python("import flownet2_core.ops\n", prelude=_BLOCK_LIBRARY,
                             **{REQUIRE_ENV: "1"})
        assert result.returncode != 0
        assert "ImportError" in result.stderr and REQUIRE_ENV in result.stderr
        assert "import of flownet2_core._C halted" in result.stderr  # the original error


class TestFlopsMetaCompile:
    def test_flop_counter_counts_correlation(self):
        from torch.utils.flop_counter import FlopCounterMode

        f1 = torch.randn(2, 8, 10, 12, requires_grad=True)
        f2 = torch.randn(2, 8, 10, 12, requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            out = correlation(f1, f2, 4, 1, 4, 1, 2)
        forward = 2 * 2 * 25 * 10 * 12 * 8  # 2 · outputs · C
        assert counter.get_total_flops() == forward
        with FlopCounterMode(display=False) as counter:
            out.sum().backward()
        counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
        assert counts["flownet2._correlation_backward"] == 2 * forward

    def test_flop_counter_counts_a_flownetc_model(self):
        models = pytest.importorskip("flownet2_core.models")
        from torch.utils.flop_counter import FlopCounterMode

        model = models.flownet2_c(width=0.25).eval()
        img = torch.rand(1, 3, 64, 64) * 255
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(img, img)
        counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
        # FlowNetC correlates its conv3 features (1/8 resolution, 256·width channels).
        assert counts["flownet2.correlation"] == 2 * 441 * 8 * 8 * 64

    def test_cpu_kernels_run_on_all_threads(self):
        # at::parallel_for is compiled into the library: built without the
        # parallel backend's flags it silently runs every kernel on one thread.
        if backend()["correlation"]["implementation"] != "compiled":
            pytest.skip("compiled library not loaded")
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(2)
            assert torch.ops.flownet2._parallel_probe(8) == 2
            torch.set_num_threads(1)
            assert torch.ops.flownet2._parallel_probe(8) == 1
        finally:
            torch.set_num_threads(before)

    def test_meta_tensors(self):
        f = torch.empty(2, 16, 24, 32, device="meta")
        assert correlation(f, f).shape == (2, 441, 24, 32)
        assert correlation(f, f, 3, 2, 2, 2, 1).shape == (2, 25, 13, 17)
        assert resample2d(f, torch.empty(2, 2, 24, 32, device="meta")).shape == f.shape
        assert channel_norm(f).shape == (2, 1, 24, 32)

    def test_torch_compile_fullgraph(self):
        def fn(f1, f2, flow):
            cost = correlation(f1, f2, 4, 1, 4, 1, 2)
            warped = resample2d(f2, flow)
            return cost.mean(1, keepdim=True) + channel_norm(warped - f1)

        g = _gen(30)
        f1 = torch.randn(2, 6, 9, 11, generator=g, requires_grad=True)
        f2 = torch.randn(2, 6, 9, 11, generator=g, requires_grad=True)
        flow = torch.randn(2, 2, 9, 11, generator=g, requires_grad=True)
        # aot_eager traces through the fake kernels and the registered autograd
        # without generating C++ (inductor's compile would dominate this file's time).
        compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
        out = compiled(f1, f2, flow)
        ref = fn(f1, f2, flow)
        torch.testing.assert_close(out, ref)
        grads = torch.autograd.grad(out.sum(), (f1, f2, flow))
        ref_grads = torch.autograd.grad(ref.sum(), (f1, f2, flow))
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------------------
# Full FlowNet2 with compiled ops vs twin ops
# --------------------------------------------------------------------------------------
@pytest.fixture
def twin_ops(monkeypatch):
    """Within the test, the op functions dispatch to their twins (returns a context switch)."""
    import importlib

    mods = {op: importlib.import_module(f"flownet2_core.ops.{op}")
            for op in ("correlation", "resample2d", "channel_norm")}
    twins = {op: getattr(mod, f"_{op}_twin") for op, mod in mods.items()}
    compiled = {op: mod._IMPL[op] for op, mod in mods.items()}

    def use(which: str) -> None:
        for op, mod in mods.items():
            monkeypatch.setitem(mod._IMPL, op, twins[op] if which == "twin" else compiled[op])

    return use


def _image_pair(h, w, dtype):
    g = _gen(40)
    a = torch.rand(1, 3, h, w, generator=g, dtype=dtype) * 255
    b = torch.roll(a, shifts=(3, -2), dims=(2, 3)) * 0.9 + 10
    return a, b


@pytest.fixture
def no_tf32(monkeypatch):
    """Full float32 convolutions and matmuls on a GPU (TF32 would blur float32 comparisons)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(precision)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_flownet2_compiled_equals_twin(twin_ops, no_tf32, dtype, device):
    """Full-width FlowNet2 (random weights) on a 64×128 pair, compiled ops vs twin ops."""
    models = pytest.importorskip("flownet2_core.models")
    torch.manual_seed(0)
    model = models.flownet2().to(dtype).to(device).eval()
    img1, img2 = (t.to(device) for t in _image_pair(64, 128, dtype))
    with torch.no_grad():
        twin_ops("compiled")
        flow_compiled = model(img1, img2)
        twin_ops("twin")
        flow_twin = model(img1, img2)
    assert flow_compiled.shape == (1, 2, 64, 128)
    err = (flow_compiled - flow_twin).abs().max().item()
    if dtype == torch.float64:
        assert err <= 1e-8, f"max |Δflow| = {err:.3g} px"
    else:
        scale = flow_twin.abs().max().item()
        assert err <= 1e-5 * scale, f"max |Δflow| = {err:.3g} px vs max |flow| {scale:.3g}"
