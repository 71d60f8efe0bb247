"""`flownet2 weights inspect` and `flownet2 flow --method flownet2 --weights FILE` end to end."""

import json

import numpy as np
import pytest
import torch

from flownet2_core.cli import main
from flownet2_core.data.synthetic import make_pair
from flownet2_core.io import read_flo, write_image
from flownet2_core.models import flownet2


@pytest.fixture(scope="module")
def released_layout_file(tmp_path_factory):
    """A FlowNet2 (width 3/8, seeded) saved as the released files are: legacy
    serialization, `.pth.tar` name, epoch / state_dict / best_EPE."""
    torch.manual_seed(0)
    model = flownet2(width=3 / 8)
    path = tmp_path_factory.mktemp("w") / "FlowNet2_checkpoint.pth.tar"
    torch.save({"epoch": 7, "state_dict": model.state_dict(), "best_EPE": 1.5}, path,
               _use_new_zipfile_serialization=False)
    return path, model


def test_weights_inspect(capsys, released_layout_file):
    path, model = released_layout_file
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    n = sum(p.numel() for p in model.parameters())
    assert "model:       FlowNet2 (width 0.375) (architecture FlowNet2," in out
    assert f"{n:,}" in out and "width 0.375" in out and "epoch:       7" in out
    import hashlib
    assert hashlib.sha256(path.read_bytes()).hexdigest() in out
    # Released files are full width; this one is not, so it is no registry entry.
    assert "registry:    no entry" in out and "published:" not in out
    assert main(["weights", "inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "FlowNet2" and info["parameters"] == n


def test_weights_inspect_names_the_registry_entry(capsys, released_layout_file, monkeypatch):
    """A file that is a registry entry (name and network) gets the entry's provenance, licence
    and published metrics with their source. The entry is narrowed to this file's width 3/8
    (the real file is 650 MB)."""
    import dataclasses

    from flownet2_core import weights as registry

    path, _ = released_layout_file
    monkeypatch.setitem(registry._ENTRIES, "FlowNet2",
                        dataclasses.replace(registry.get_weights("FlowNet2"), width=3 / 8))
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "registry:    FlowNet2 (nvidia-port; flow method flownet2): NVIDIA/flownet2-pytorch" in out
    assert "runs with:" not in out  # the released weights run as released
    assert "licence:     lmb-freiburg/flownet2: research purposes only" in out
    assert "Sintel clean EPE 2.22 (converted weights, ptlflow)" in out
    assert "Sintel clean EPE (paper) 2.02 (paper)" in out
    assert main(["weights", "inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entry"]["metrics"]["KITTI 2015 Fl-all %"] == {"value": 30.5, "source": "converted weights, ptlflow"}


def test_weights_inspect_the_shipped_file_names_how_its_method_runs_it(capsys):
    from flownet2_core.weights import get_weights

    path = get_weights("FlowNet2-sss-synth").locate(None, who="test")
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "registry:    FlowNet2-sss-synth (trained-here; flow method flownet2-sss-synth)" in out
    assert "runs with:   min_size 384, zoom 1.25, ensemble 2 (its flow method's defaults)" in out
    assert "held-out synthetic EPE 4.164" in out


def test_weights_inspect_bad_file(capsys, tmp_path):
    bad = tmp_path / "x.pth.tar"
    bad.write_bytes(b"\x80\x02not really a checkpoint")
    assert main(["weights", "inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1


def test_flow_with_flownet2_weights(capsys, tmp_path, released_layout_file):
    path, model = released_layout_file
    p = make_pair(0, (64, 96))
    write_image(tmp_path / "a.png", p.img1)
    write_image(tmp_path / "b.png", p.img2)
    status = main(["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.flo"),
                   "--method", "flownet2", "--weights", str(path), "--viz", str(tmp_path / "f.png")])
    assert status == 0, capsys.readouterr().err
    flow = read_flo(tmp_path / "f.flo")
    assert flow.shape == (64, 96, 2) and np.isfinite(flow).all()
    # The CLI gives exactly what the model gives through the inference wrapper.
    from flownet2_core.inference import FlowNet2Inference
    want = FlowNet2Inference(model.eval())(p.img1, p.img2)
    np.testing.assert_allclose(flow, want, rtol=1e-5, atol=1e-5)


def test_flownet2_without_weights_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    p = make_pair(0, (64, 96))
    write_image(tmp_path / "a.png", p.img1)
    write_image(tmp_path / "b.png", p.img2)
    status = main(["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.flo"),
                   "--method", "flownet2"])
    err = capsys.readouterr().err
    assert status == 2 and "FLOWNET2_WEIGHTS" in err and "--weights" in err
    assert not (tmp_path / "f.flo").exists()


@pytest.mark.parametrize("fmt", ["protobuf", "hdf5"])
def test_weights_convert_then_inspect(capsys, tmp_path, fmt):
    from flownet2_core.models import flownet2_css
    from flownet2_core.models.caffe import write_caffemodel

    torch.manual_seed(1)
    model = flownet2_css(width=3 / 8).eval()
    src = tmp_path / ("FlowNet2-css_weights.caffemodel" + (".h5" if fmt == "hdf5" else ""))
    write_caffemodel(src, model, fmt=fmt)
    out = tmp_path / "css.pth.tar"
    assert main(["weights", "convert", str(src), "-o", str(out), "--caffe-conventions"]) == 0
    assert "FlowNet2-css" in capsys.readouterr().out
    assert main(["weights", "inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "FlowNet2-CSS" and info["width"] == 0.375
    assert info["conventions"]["upsample_align_corners"] is True
    assert info["conventions"]["warp_padding"] == "zeros"
    from flownet2_core.models import load_checkpoint
    back = load_checkpoint(out)
    # write_caffemodel flips RGB→BGR as Caffe stores it; convert flips back.
    got = back.state_dict()
    assert got.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)


def test_weights_convert_bad_file(capsys, tmp_path):
    bad = tmp_path / "FlowNet2_weights.caffemodel"
    bad.write_bytes(b"\x0a\x05hello\x12\x03abc" * 3)
    assert main(["weights", "convert", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1


def test_demo_includes_flownet2_methods_with_weights(tmp_path, monkeypatch):
    """With FLOWNET2_WEIGHTS set, the FlowNet2 methods whose files are there join
    the demo's comparison; the others are listed as skipped with the reason."""
    from flownet2_core.demo import flow_methods_demo
    from flownet2_core.models import flownet2_s

    torch.manual_seed(0)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save({"epoch": 0, "state_dict": flownet2_s(width=3 / 8).state_dict(), "best_EPE": 0.0},
               weights / "FlowNet2-S_checkpoint.pth.tar", _use_new_zipfile_serialization=False)
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(weights))
    flow_methods_demo(tmp_path / "demo", size=(64, 96))
    md = (tmp_path / "demo" / "results.md").read_text()
    assert "| flownet2-s |" in md
    assert "- `flownet2`: " in md and "has no FlowNet2_checkpoint.pth.tar" in md
