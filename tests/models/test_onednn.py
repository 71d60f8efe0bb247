"""Convolutions with weights packed once for oneDNN (CPU inference): the same numbers as the
plain layers, the same state dict, renewed when the weights change, out of autograd's way."""

import copy

import pytest
import torch
from torch import nn

from flownet2_core import onednn
from flownet2_core.inference import FlowNet2Inference
from flownet2_core.models import build_model

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this PyTorch build has no oneDNN")


def _cl(x):
    return x.contiguous(memory_format=torch.channels_last)


def _pair(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g) * 255, torch.rand(1, 3, h, w, generator=g) * 255


def test_layers_give_the_plain_layers_numbers_with_the_activation_fused():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.LeakyReLU(0.1, inplace=True))
    deblock = nn.Sequential(nn.ConvTranspose2d(16, 4, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True))
    head = nn.Conv2d(4, 2, 3, 1, 1, bias=False)
    net = nn.Sequential(block, deblock, head).eval().to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    assert onednn.pack_convolutions(net) == 3
    assert onednn.pack_convolutions(net) == 0  # already wrapped
    with torch.inference_mode():
        for h, w in ((16, 24), (30, 18)):  # packed for the first size, right for others too
            x = _cl(torch.randn(2, 8, h, w))
            torch.testing.assert_close(net(x), plain(x), rtol=1e-5, atol=1e-5)
    assert net.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in net.state_dict().items())


def test_new_weights_are_packed_again():
    conv = nn.Conv2d(4, 4, 3, 1, 1).eval()
    onednn.pack_convolutions(conv)
    x = _cl(torch.randn(1, 4, 8, 8))
    with torch.inference_mode():
        before = conv(x)
    fresh = nn.Conv2d(4, 4, 3, 1, 1)
    conv.load_state_dict(fresh.state_dict())
    with torch.inference_mode():
        after = conv(x)
        torch.testing.assert_close(after, fresh.eval()(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)


def test_autograd_and_unsupported_calls_take_the_plain_path():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.LeakyReLU(0.1))
    up = nn.ConvTranspose2d(4, 2, 4, 2, 1)
    onednn.pack_convolutions(net)
    onednn.pack_convolutions(up)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    up(net(x), output_size=[16, 16]).sum().backward()  # training still works, output_size honoured
    assert x.grad is not None and net[0].weight.grad is not None
    net.double()  # float64: not a oneDNN type here, the plain layers run
    x64 = x.detach().double()
    with torch.inference_mode():
        torch.testing.assert_close(net(x64), nn.functional.leaky_relu(
            nn.functional.conv2d(x64, net[0].weight, net[0].bias, padding=1), 0.1))


def test_runner_packs_by_default_on_the_cpu_and_keeps_the_flow():
    torch.manual_seed(0)
    model = build_model("FlowNet2-CS", width=0.125).eval()
    packed = FlowNet2Inference(copy.deepcopy(model), device="cpu", batch_size=1)
    plain = FlowNet2Inference(copy.deepcopy(model), device="cpu", batch_size=1, prepack=False)
    assert packed.prepacked > 0 and plain.prepacked == 0
    assert FlowNet2Inference(copy.deepcopy(model), device="cpu", channels_last=False).prepacked == 0
    a, b = _pair(128, 192)
    torch.testing.assert_close(packed.predict(a, b), plain.predict(a, b), rtol=0, atol=1e-4)
    bf16 = FlowNet2Inference(copy.deepcopy(model), device="cpu", batch_size=1, precision="bf16")
    assert bf16.prepacked > 0
    assert (bf16.predict(a, b) - plain.predict(a, b)).abs().mean() < 0.05


def test_a_deep_copy_is_its_own_model():
    """After packing (and running) a copy packs its own weights; changing them leaves the original."""
    torch.manual_seed(0)
    r = FlowNet2Inference(build_model("FlowNet2-S", width=0.125).eval(), device="cpu", batch_size=1,
                          precision="bf16")
    a, b = _pair(64, 128)
    first = r.predict(a, b)
    twin = copy.deepcopy(r.model)
    with torch.inference_mode():
        torch.testing.assert_close(twin(_cl(a), _cl(b)), r.model(_cl(a), _cl(b)))
        for p in twin.parameters():
            p.zero_()
        assert twin(_cl(a), _cl(b)).abs().max() == 0
    torch.testing.assert_close(r.predict(a, b), first)


def test_packed_layers_follow_a_later_cast_of_their_weights():
    """Wrapped in float32 first, then cast to bfloat16 for a bf16 runner: the packed copy
    follows the weights (computes in bfloat16), as the plain layer under autocast would."""
    from flownet2_core.inference import cast_convolutions

    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, 1, 1).eval()
    plain = copy.deepcopy(conv)
    onednn.pack_convolutions(conv)
    x = _cl(torch.randn(1, 8, 12, 12))
    with torch.inference_mode():
        conv(x)
        cast_convolutions(conv, torch.bfloat16)
        got = conv(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            want = plain(x)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=0.02, atol=0.02)
