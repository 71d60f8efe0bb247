"""Builders: keyword-only settings, ``weights=`` as a registry entry or a path, settings that
come from the weights (and contradictions refused), fp16 files cast to float32."""

from __future__ import annotations

import collections
import dataclasses
import inspect

import pytest
import torch

from flownet2_core import weights as registry
from flownet2_core.models import (
    BUILDERS,
    build_model,
    flownet2_c,
    flownet2_css,
    flownet2_s,
    flownet2_sss,
    load_weights,
    save_checkpoint,
)
from flownet2_core.models.architectures import MODEL_CLASSES
from flownet2_core.models.checkpoint import CheckpointMismatch

TINY = 1 / 16


def _legacy(path, model):
    """``model`` saved as the released files are (legacy serialization, no metadata)."""
    torch.save({"epoch": 1, "state_dict": collections.OrderedDict(model.state_dict()), "best_EPE": 1.0},
               path, _use_new_zipfile_serialization=False)
    return path


def _save_fp16(path, model):
    """As weights trained here ship: an fp16 state dict written with torch.save."""
    torch.save(collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items()), path)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_architecture_names_agree():
    assert tuple(BUILDERS) == tuple(MODEL_CLASSES) == registry.ARCHITECTURES
    for name, cls in MODEL_CLASSES.items():
        assert cls.arch_name == name


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_settings_are_keyword_only(arch):
    params = inspect.signature(BUILDERS[arch]).parameters
    assert list(params) == ["width", "weights", "batch_norm", "upsample_align_corners", "warp_padding"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in params.values())
    with pytest.raises(TypeError):
        BUILDERS[arch](0.5)


def test_defaults_without_weights():
    with torch.device("meta"):
        m = flownet2_css()
    assert m.width == 1.0 and m.batch_norm is False
    assert m.upsample_align_corners is False and m.warp_padding == "border"
    with torch.device("meta"):
        m = build_model("FlowNet2-CSS", width=3 / 8, batch_norm=True, upsample_align_corners=True,
                        warp_padding="zeros")
    assert (m.width, m.batch_norm, m.upsample_align_corners, m.warp_padding) == (3 / 8, True, True, "zeros")


def test_weights_path_sets_width_and_loads(tmp_path):
    torch.manual_seed(0)
    src = flownet2_s(width=TINY)
    path = _legacy(tmp_path / "s.pth.tar", src)
    m = flownet2_s(weights=path)
    assert m.width == TINY and m.training  # a fresh module's mode, as torchvision's builders
    _same(src, m)
    assert m.warp_padding == "border"      # no metadata: the port's conventions
    assert build_model("FlowNet2-S", weights=str(path), warp_padding="zeros").warp_padding == "zeros"


def test_weights_path_contradictions(tmp_path):
    path = _legacy(tmp_path / "s.pth.tar", flownet2_s(width=TINY))
    with pytest.raises(CheckpointMismatch) as info:
        flownet2_c(weights=path)
    assert str(info.value) == (f"{path}: this file is FlowNet2-S (width 0.0625); flownet2_c() needs "
                               "FlowNet2-C weights")
    with pytest.raises(ValueError, match="this file is FlowNet2-S \\(width 0.0625\\); flownet2_s\\(\\) needs "
                                         "FlowNet2-s weights \\(width 0.375\\)"):
        flownet2_s(width=3 / 8, weights=path)
    with pytest.raises(ValueError, match="without batch norm; flownet2_s\\(\\) asked for batch_norm=True"):
        flownet2_s(weights=path, batch_norm=True)
    with pytest.raises(FileNotFoundError):
        flownet2_s(weights=tmp_path / "missing.pth.tar")


def test_conventions_given_then_file_then_entry(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = flownet2_css(width=TINY, upsample_align_corners=True, warp_padding="zeros")
    path = tmp_path / "mine.pth.tar"
    save_checkpoint(path, model)
    m = flownet2_css(weights=path)   # the file's record
    assert m.upsample_align_corners is True and m.warp_padding == "zeros"
    m = flownet2_css(weights=path, warp_padding="border")   # given beats recorded
    assert m.upsample_align_corners is True and m.warp_padding == "border"
    # A file without a record gets the entry's conventions.
    entry = dataclasses.replace(registry.get_weights("FlowNet2-sss-synth"), width=TINY,
                                conventions=registry.CAFFE_CONVENTIONS)
    bare = tmp_path / "bare.pth"
    _save_fp16(bare, flownet2_sss(width=TINY))
    m = load_weights(entry, path=bare)
    assert m.arch_name == "FlowNet2-SSS"
    assert m.upsample_align_corners is True and m.warp_padding == "zeros"
    m = load_weights(dataclasses.replace(entry, conventions=registry.PORT_CONVENTIONS), path=bare)
    assert m.upsample_align_corners is False and m.warp_padding == "border"


def test_entry_from_flownet2_weights(tmp_path, monkeypatch):
    """weights=<entry> reads the entry's file from FLOWNET2_WEIGHTS; a missing one is one line."""
    entry = registry.get_weights("FlowNet2-CSS-ft-sd")
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    with pytest.raises(ValueError) as info:
        flownet2_css(weights=entry)
    assert len(str(info.value).splitlines()) == 1
    assert str(info.value).startswith("flownet2_css() needs pretrained weights: FLOWNET2_WEIGHTS is not set")
    with pytest.raises(ValueError, match="flownet2_c\\(\\): weights FlowNet2-CSS-ft-sd are FlowNet2-CSS, not "
                                         "FlowNet2-C"):
        flownet2_c(weights=entry)
    torch.manual_seed(0)
    src = flownet2_css(width=TINY)   # the port's entries accept any width of their network
    _legacy(tmp_path / entry.file, src)
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path))
    _same(src, flownet2_css(weights=entry))


def test_packaged_entry_and_fp16(tmp_path, monkeypatch):
    """The trained-here entry: found in the package folder, fp16 on disk, float32 in the model,
    exactly the fp16-rounded weights; its width is enforced."""
    monkeypatch.setattr(registry, "package_dir", lambda: tmp_path)
    entry = dataclasses.replace(registry.get_weights("FlowNet2-sss-synth"), width=TINY)
    with pytest.raises(ValueError, match="flownet2_sss\\(\\) needs pretrained weights: flownet2_core/weights/"
                                         "flownet2-sss-synth.pth is not in this installation"):
        flownet2_sss(weights=entry)
    torch.manual_seed(0)
    src = flownet2_sss(width=TINY)
    _save_fp16(tmp_path / "flownet2-sss-synth.pth", src)
    m = flownet2_sss(weights=entry)
    assert m.arch_name == "FlowNet2-SSS"
    assert m.width == TINY and all(v.dtype == torch.float32 for v in m.state_dict().values())
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v.half().float()), k
    with pytest.raises(ValueError, match="needs FlowNet2-sss weights \\(width 0.375\\)"):
        flownet2_sss(weights=registry.get_weights("FlowNet2-sss-synth"))
    with pytest.raises(ValueError, match="flownet2_css\\(\\): weights FlowNet2-sss-synth are FlowNet2-sss, not "
                                         "FlowNet2-CSS"):
        flownet2_css(weights=registry.get_weights("FlowNet2-sss-synth"))


def test_fp16_checkpoint_dict_with_metadata(tmp_path):
    """A float16 copy in the checkpoint layout (metadata kept) loads too, as float32, with the
    conventions it records."""
    torch.manual_seed(0)
    src = flownet2_s(width=TINY, warp_padding="zeros")
    save_checkpoint(tmp_path / "full.pth.tar", src)
    ckpt = torch.load(tmp_path / "full.pth.tar", weights_only=True)
    ckpt["state_dict"] = collections.OrderedDict((k, v.half()) for k, v in ckpt["state_dict"].items())
    torch.save(ckpt, tmp_path / "half.pth")
    m = flownet2_s(weights=tmp_path / "half.pth")
    assert m.warp_padding == "zeros" and all(v.dtype == torch.float32 for v in m.state_dict().values())
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v.half().float()), k
