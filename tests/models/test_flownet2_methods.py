"""The registered FlowNet2 flow methods: never random output, weights from a file or
FLOWNET2_WEIGHTS, the right architecture, the FlowMethod contract."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from flownet2_core.methods import available_methods, get_method
from flownet2_core.models import build_model

NAMES = {
    "flownet2": ("FlowNet2", "FlowNet2_checkpoint.pth.tar"),
    "flownet2-c": ("FlowNet2-C", "FlowNet2-C_checkpoint.pth.tar"),
    "flownet2-cs": ("FlowNet2-CS", "FlowNet2-CS_checkpoint.pth.tar"),
    "flownet2-css": ("FlowNet2-CSS", "FlowNet2-CSS_checkpoint.pth.tar"),
    "flownet2-css-ft-sd": ("FlowNet2-CSS", "FlowNet2-CSS-ft-sd_checkpoint.pth.tar"),
    "flownet2-s": ("FlowNet2-S", "FlowNet2-S_checkpoint.pth.tar"),
    "flownet2-sd": ("FlowNet2-SD", "FlowNet2-SD_checkpoint.pth.tar"),
}
TINY = 1 / 16


def _write_released(path, arch):
    torch.manual_seed(0)
    model = build_model(arch, width=TINY)
    torch.save({"epoch": 1, "state_dict": collections.OrderedDict(model.state_dict()), "best_EPE": 9.0},
               path, _use_new_zipfile_serialization=False)
    return path


def _pair(h=70, w=90, n=None):
    rng = np.random.default_rng(0)
    shape = (h, w, 3) if n is None else (n, h, w, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


def test_all_names_registered():
    methods = available_methods()
    for name in NAMES:
        assert name in methods and "weights" in methods[name]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_without_weights_raises(name, monkeypatch):
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    with pytest.raises(ValueError, match=f"{name} needs pretrained weights.*FLOWNET2_WEIGHTS.*{NAMES[name][1]}"):
        get_method(name)


def test_env_dir_without_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path))
    with pytest.raises(ValueError, match="has no FlowNet2-CSS-ft-sd_checkpoint.pth.tar"):
        get_method("flownet2-css-ft-sd")
    with pytest.raises(ValueError, match="not found"):
        get_method("flownet2", weights=tmp_path / "missing.pth.tar")


def test_weights_file_works(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    path = _write_released(tmp_path / "s.pth.tar", "FlowNet2-S")
    method = get_method("flownet2-s", weights=path, device="cpu", batch_size=2)
    a, b = _pair()
    flow = method(a, b)
    assert flow.shape == (70, 90, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    imgs1, imgs2 = _pair(n=3)
    flows = method.batch(imgs1, imgs2)
    assert flows.shape == (3, 70, 90, 2)
    np.testing.assert_allclose(flows[0], method(imgs1[0], imgs2[0]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        method.batch(imgs1, imgs2[:2])


@pytest.mark.parametrize("name", ["flownet2", "flownet2-css-ft-sd", "flownet2-sd"])
def test_weights_from_env_dir(name, tmp_path, monkeypatch):
    arch, filename = NAMES[name]
    _write_released(tmp_path / filename, arch)
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path))
    method = get_method(name, device="cpu", size_policy="crop")
    flow = method(*_pair(h=64, w=100))
    assert flow.shape == (64, 100, 2)
    assert np.isnan(flow[:, :18]).all() and np.isfinite(flow[:, 18:82]).all()


def test_wrong_architecture(tmp_path):
    path = _write_released(tmp_path / "FlowNet2-C_checkpoint.pth.tar", "FlowNet2-S")
    with pytest.raises(ValueError, match="this file is FlowNet2-S.*flownet2-c needs FlowNet2-C"):
        get_method("flownet2-c", weights=path)
