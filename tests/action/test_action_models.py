"""Recognizer shapes and consensus, torchvision backbones, cross-modality initialisation."""

import pytest
import torch
import torchvision

from flowapps.action.models import (Recognizer, TinyBackbone, build_backbone, build_recognizer,
                                    cross_modality_weight, load_imagenet_state_dict)


def test_tiny_recognizer_shapes_and_consensus():
    torch.manual_seed(0)
    model = build_recognizer("tiny", 7, 20, dropout=0.5, log=lambda m: None).eval()
    x = torch.randn(2, 3, 20, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    # Consensus = average of per-segment scores (linear head, dropout off in eval).
    per_segment = torch.stack([model(x[:, k]) for k in range(3)], 1)
    torch.testing.assert_close(out, per_segment.mean(1), atol=1e-5, rtol=1e-5)
    assert model(x[:, 0]).shape == (2, 7)  # (N, C, H, W) = one segment
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, 20, 32))


def test_tiny_features_do_not_depend_on_the_batch():
    net = TinyBackbone(6).eval()
    x = torch.randn(4, 6, 32, 32)
    torch.testing.assert_close(net(x)[:1], net(x[:1]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch,dim", [("resnet18", 512), ("resnet50", 2048), ("resnet101", 2048), ("vgg16", 4096)])
def test_torchvision_backbones(arch, dim):
    messages = []
    model = build_recognizer(arch, 101, 20, dropout=0.7, log=messages.append)
    assert model.fc.in_features == dim and model.fc.out_features == 101
    assert isinstance(model.dropout, torch.nn.Dropout) and model.dropout.p == 0.7
    assert "random initialisation" in messages[0]
    first = model.backbone.features[0] if arch.startswith("vgg") else model.backbone.conv1
    assert first.in_channels == 20
    if arch == "resnet18":
        assert model.eval()(torch.randn(2, 20, 64, 64)).shape == (2, 101)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    sd = torchvision.models.resnet18().state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet18-imagenet.pth"
    torch.save(sd, path)
    return path, sd


def test_cross_modality_initialisation(resnet18_file):
    path, sd = resnet18_file
    messages = []
    net, dim = build_backbone("resnet18", 20, pretrained=path, log=messages.append)
    w = net.conv1.weight.detach()
    assert w.shape == (64, 20, 7, 7)
    want = sd["conv1.weight"].mean(1, keepdim=True)
    for c in range(20):
        torch.testing.assert_close(w[:, c:c + 1], want)
    torch.testing.assert_close(net.layer4[1].conv2.weight.detach(), sd["layer4.1.conv2.weight"])
    assert "cross-modality" in messages[0] and str(path) in messages[0]
    assert cross_modality_weight(sd["conv1.weight"], 4).shape == (64, 4, 7, 7)


def test_spatial_stream_loads_imagenet_weights(resnet18_file):
    path, sd = resnet18_file
    net, _ = build_backbone("resnet18", 3, pretrained=path, log=lambda m: None)
    torch.testing.assert_close(net.conv1.weight.detach(), sd["conv1.weight"])


def test_pretrained_errors(resnet18_file, tmp_path):
    path, _ = resnet18_file
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("resnet18", 20, pretrained=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="resnet18-imagenet.pth"):
        build_backbone("resnet50", 20, pretrained=path, log=lambda m: None)
    with pytest.raises(ValueError, match="tiny"):
        build_backbone("tiny", 20, pretrained=path)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="junk.pth"):
        load_imagenet_state_dict(junk)
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(1)}}, nested)
    assert list(load_imagenet_state_dict(nested)) == ["conv1.weight"]
    with pytest.raises(ValueError, match="unknown architecture"):
        build_backbone("alexnet", 3)


def test_recognizer_checks():
    with pytest.raises(ValueError, match="classes"):
        Recognizer(TinyBackbone(3), 64, 1)
    with pytest.raises(ValueError, match="dropout"):
        Recognizer(TinyBackbone(3), 64, 5, dropout=1.0)
