"""The benchmark's baseline (evaluations.reference_flownet2, a plain forward pass written from the
SPEC) computes what our models compute with the same weights: the benchmark's ratios compare
equal work."""

import pytest
import torch

from evaluations.reference_flownet2 import ARCHS, reference_forward
from flownet2_core.models import build_model


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_equals_our_model(arch):
    torch.manual_seed(7)
    model = build_model(arch, width=1 / 8).eval()
    img1, img2 = torch.rand(2, 1, 3, 128, 192).mul(255).unbind(0)
    with torch.no_grad():
        ours = model(img1, img2)
        ref = reference_forward(arch, model.state_dict(), img1, img2)
    assert ref.shape == ours.shape == (1, 2, 128, 192)
    assert ours.abs().mean() > 0.05  # a test that can fail: the flow is not ~0
    torch.testing.assert_close(ref, ours, rtol=1e-4, atol=1e-4)
