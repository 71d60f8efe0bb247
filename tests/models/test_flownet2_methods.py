"""The registered FlowNet2 flow methods, one per registry entry with a method: never random
output, weights from a file, FLOWNET2_WEIGHTS or (trained here) the package, the right
architecture (and width, for the Caffe-only and packaged models), the FlowMethod contract,
and the listing of methods whose weights are absent."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
import torch

from flownet2_core.methods import available_methods, get_factory, get_method
from flownet2_core.models import build_model

# What the README and SPEC §1 promise (method → file, architecture, width the file must
# hold); the registry (flownet2_core.weights) must give exactly this.
NAMES = {
    "flownet2": ("FlowNet2", "FlowNet2_checkpoint.pth.tar"),
    "flownet2-c": ("FlowNet2-C", "FlowNet2-C_checkpoint.pth.tar"),
    "flownet2-cs": ("FlowNet2-CS", "FlowNet2-CS_checkpoint.pth.tar"),
    "flownet2-css": ("FlowNet2-CSS", "FlowNet2-CSS_checkpoint.pth.tar"),
    "flownet2-css-ft-sd": ("FlowNet2-CSS", "FlowNet2-CSS-ft-sd_checkpoint.pth.tar"),
    "flownet2-s": ("FlowNet2-S", "FlowNet2-S_checkpoint.pth.tar"),
    "flownet2-sd": ("FlowNet2-SD", "FlowNet2-SD_checkpoint.pth.tar"),
}
# Models only the Caffe release has: method → (release, architecture, width).
CAFFE_NAMES = {
    "flownet2-c-thin": ("FlowNet2-c", "FlowNet2-C", 3 / 8),
    "flownet2-cs-thin": ("FlowNet2-cs", "FlowNet2-CS", 3 / 8),
    "flownet2-css-thin": ("FlowNet2-css", "FlowNet2-CSS", 3 / 8),
    "flownet2-css-ft-sd-thin": ("FlowNet2-css-ft-sd", "FlowNet2-CSS", 3 / 8),
    "flownet2-s-thin": ("FlowNet2-s", "FlowNet2-S", 3 / 8),
    "flownet2-ss-thin": ("FlowNet2-ss", "FlowNet2-SS", 3 / 8),
    "flownet2-sss-thin": ("FlowNet2-sss", "FlowNet2-SSS", 3 / 8),
    "flownet2-kitti": ("FlowNet2-KITTI", "FlowNet2", 1.0),
    "flownet2-sintel": ("FlowNet2-Sintel", "FlowNet2", 1.0),
}
SYNTH = "flownet2-sss-synth"
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
        assert name in methods and "NVIDIA port's weights" in methods[name]
    for name in CAFFE_NAMES:
        assert name in methods
        assert "Caffe release, convert with `flownet2 weights convert`" in methods[name]
    assert "ships in the package" in methods[SYNTH]
    assert {m for m in methods if m.startswith("flownet2")} == set(NAMES) | set(CAFFE_NAMES) | {SYNTH}


def test_methods_are_registry_lookups():
    """Every method runs the entry that names it; the files, networks and releases are the
    ones the README promises."""
    for name, (arch, file) in NAMES.items():
        entry = get_factory(name).weights_entry
        assert (entry.method, entry.origin, entry.arch, entry.width, entry.file) == (
            name, "nvidia-port", arch, 1.0, file)
        assert get_factory(name).arch == arch
    for name, (release, arch, width) in CAFFE_NAMES.items():
        entry = get_factory(name).weights_entry
        assert (entry.method, entry.origin, entry.release, entry.arch, entry.width, entry.file) == (
            name, "caffe-release", release, arch, width, f"{release}_converted.pth.tar")
    entry = get_factory(SYNTH).weights_entry
    assert (entry.name, entry.origin, entry.arch, entry.width, entry.file) == (
        "FlowNet2-sss-synth", "trained-here", "FlowNet2-SSS", 3 / 8, "flownet2-sss-synth.pth")
    assert get_factory(SYNTH).arch == "FlowNet2-SSS"


ALL_FILES = {**{n: f for n, (_, f) in NAMES.items()},
             **{n: f"{r}_converted.pth.tar" for n, (r, _, _) in CAFFE_NAMES.items()}}


@pytest.mark.parametrize("name", sorted(ALL_FILES))
def test_without_weights_raises(name, monkeypatch):
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    with pytest.raises(ValueError, match=f"{name} needs pretrained weights.*FLOWNET2_WEIGHTS"
                                         f".*{ALL_FILES[name]}"):
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


# ----------------------------------------------------------------------------- Caffe-only models


def _converted(tmp_path, arch, width, release, fmt="protobuf", caffe_conventions=False, seed=0):
    """A seeded model written as ``<release>_weights.caffemodel[.h5]`` and converted into
    ``<release>_converted.pth.tar`` (the file name the method looks for)."""
    from flownet2_core.models.caffe import (
        convert_caffe,
        converted_filename,
        write_caffemodel,
    )

    torch.manual_seed(seed)
    model = build_model(arch, width=width).eval()
    src = tmp_path / f"{release}_weights.caffemodel{'.h5' if fmt == 'hdf5' else ''}"
    write_caffemodel(src, model, fmt=fmt)
    out = tmp_path / "weights" / converted_filename(src)
    out.parent.mkdir(exist_ok=True)
    convert_caffe(src, out, caffe_conventions=caffe_conventions)
    return model, out


@pytest.mark.parametrize("name,fmt", [("flownet2-css-thin", "protobuf"), ("flownet2-ss-thin", "hdf5")])
def test_thin_method_from_converted_caffe_file(tmp_path, monkeypatch, name, fmt):
    """A 3/8-width Caffe file converted with --caffe-conventions, found in FLOWNET2_WEIGHTS:
    the method runs the same network with the Caffe conventions the file records."""
    if fmt == "hdf5":
        pytest.importorskip("h5py")
    from flownet2_core.inference import FlowNet2Inference
    from flownet2_core.models.caffe import CAFFE_CONVENTIONS

    release, arch, width = CAFFE_NAMES[name]
    model, out = _converted(tmp_path, arch, width, release, fmt=fmt, caffe_conventions=True)
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(out.parent))
    method = get_method(name, device="cpu")
    assert method.weights == str(out)
    net = method.runner.model
    assert net.arch_name == arch and net.width == width
    assert {k: net.conventions()[k] for k in CAFFE_CONVENTIONS} == CAFFE_CONVENTIONS
    a, b = _pair(h=64, w=64)
    flow = method(a, b)
    assert flow.shape == (64, 64, 2) and np.isfinite(flow).all()
    # The same seeded network with Caffe's conventions gives the same flow.
    expect = build_model(arch, width=width, **CAFFE_CONVENTIONS).eval()
    expect.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(flow, FlowNet2Inference(expect, device="cpu")(a, b))


def test_thin_method_refuses_another_width(tmp_path, monkeypatch):
    _, out = _converted(tmp_path, "FlowNet2-CSS", TINY, "FlowNet2-css")
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(out.parent))
    with pytest.raises(ValueError) as info:
        get_method("flownet2-css-thin")
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text.startswith(str(out))
    assert "this file is FlowNet2-CSS (width 0.0625); method flownet2-css-thin needs FlowNet2-css " \
           "weights (width 0.375)" in text
    # A file of another architecture, through weights=FILE.
    with pytest.raises(ValueError, match="this file is FlowNet2-CSS .*flownet2-ss-thin needs FlowNet2-ss"):
        get_method("flownet2-ss-thin", weights=out)


def test_thin_method_refuses_another_release_of_the_same_network(tmp_path, monkeypatch):
    # FlowNet2-css and FlowNet2-css-ft-sd share architecture and width; the file's
    # recorded release tells them apart.
    _, out = _converted(tmp_path, "FlowNet2-CSS", 3 / 8, "FlowNet2-css")
    with pytest.raises(ValueError) as info:
        get_method("flownet2-css-ft-sd-thin", weights=out)
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text == (
        f"{out}: this file was converted from FlowNet2-css; method flownet2-css-ft-sd-thin "
        "needs FlowNet2-css-ft-sd")
    assert get_method("flownet2-css-thin", weights=out).weights == str(out)


def test_kitti_and_sintel_read_their_converted_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    with pytest.raises(ValueError, match="has no FlowNet2-KITTI_converted.pth.tar; convert "
                                         "FlowNet2-KITTI_weights.caffemodel"):
        get_method("flownet2-kitti")
    # A tiny FlowNet2 under the KITTI name: found, read, and refused for its width
    # (the release's FlowNet2-KITTI is full width) …
    _, out = _converted(tmp_path, "FlowNet2", TINY, "FlowNet2-KITTI")
    assert out.name == "FlowNet2-KITTI_converted.pth.tar"
    with pytest.raises(ValueError, match="this file is FlowNet2 \\(width 0.0625\\); method "
                                         "flownet2-kitti needs FlowNet2 weights \\(width 1\\)"):
        get_method("flownet2-kitti")
    with pytest.raises(ValueError, match="has no FlowNet2-Sintel_converted.pth.tar"):
        get_method("flownet2-sintel")
    # … and, with the width check relaxed to the file's, it runs (a full-width file is 650 MB).
    kitti = get_factory("flownet2-kitti")
    monkeypatch.setattr(kitti, "weights_entry", dataclasses.replace(kitti.weights_entry, width=TINY))
    flow = get_method("flownet2-kitti", device="cpu")(*_pair(h=64, w=64))
    assert flow.shape == (64, 64, 2) and np.isfinite(flow).all()


# ----------------------------------------------------------------------------- trained here, in the package


@pytest.fixture
def package_dir(tmp_path, monkeypatch):
    """An empty stand-in for flownet2_core/weights/ (never write into the package), and the
    synth entry narrowed to a tiny width so that a file for it is quick to write."""
    from flownet2_core import weights as registry

    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(registry, "package_dir", lambda: folder)
    cls = get_factory(SYNTH)
    monkeypatch.setattr(cls, "weights_entry", dataclasses.replace(cls.weights_entry, width=TINY))
    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    return folder


def _save_fp16(path, model):
    """As weights trained here ship: an fp16 state dict written with torch.save."""
    torch.save(collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items()), path)


def _write_packaged(folder, seed=0):
    from flownet2_core.models import flownet2_sss

    torch.manual_seed(seed)
    model = flownet2_sss(width=TINY)
    _save_fp16(folder / "flownet2-sss-synth.pth", model)
    return model


def test_packaged_method_without_its_file_is_listed_unavailable(package_dir, capsys):
    from flownet2_core.cli import main
    from flownet2_core.methods import unavailable_methods

    reason = unavailable_methods()[SYNTH]
    assert reason == ("flownet2_core/weights/flownet2-sss-synth.pth is not in this installation (weights "
                      "trained in this repository ship inside the package once trained)")
    with pytest.raises(ValueError) as info:
        get_method(SYNTH)
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"{SYNTH} needs pretrained weights: {reason}")
    assert main(["methods"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.split()[0] == SYNTH)
    assert line.endswith(f"[unavailable: {reason}]")


def test_packaged_method_runs_from_the_package_with_no_weights_option(package_dir, capsys):
    """The file in the package (fp16 state dict) is found with no weights= and no
    FLOWNET2_WEIGHTS, read safely, cast to float32, and gives the flow of the same network
    with the fp16-rounded weights."""
    from flownet2_core.cli import main
    from flownet2_core.inference import FlowNet2Inference
    from flownet2_core.methods import unavailable_methods
    from flownet2_core.models import flownet2_sss

    model = _write_packaged(package_dir)
    raw = torch.load(package_dir / "flownet2-sss-synth.pth", weights_only=True)
    assert {v.dtype for v in raw.values()} == {torch.float16}
    assert SYNTH not in unavailable_methods()
    method = get_method(SYNTH, device="cpu")
    assert method.weights == str(package_dir / "flownet2-sss-synth.pth")
    net = method.runner.model
    assert net.arch_name == "FlowNet2-SSS" and net.width == TINY
    assert all(p.dtype == torch.float32 for p in net.parameters())
    a, b = _pair(h=64, w=64)
    flow = method(a, b)
    assert flow.shape == (64, 64, 2) and np.isfinite(flow).all()
    rounded = flownet2_sss(width=TINY).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    # run as the method runs it: enlarged to the scale its registry entry names, at its zoom,
    # averaged with the pair turned by 180°
    np.testing.assert_array_equal(flow, FlowNet2Inference(rounded, device="cpu", min_size=384, zoom=1.25,
                                                          ensemble=2)(a, b))
    assert (method.runner.min_size, method.runner.zoom, method.runner.ensemble) == (384, 1.25, 2)
    plain = get_method(SYNTH, device="cpu", min_size=0, zoom=1, ensemble=1)
    np.testing.assert_array_equal(plain(a, b), FlowNet2Inference(rounded, device="cpu")(a, b))
    assert main(["methods"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.split()[0] == SYNTH)
    assert "unavailable" not in line


def test_packaged_method_refuses_another_network(package_dir):
    from flownet2_core.models import flownet2_cs

    _save_fp16(package_dir / "flownet2-sss-synth.pth", flownet2_cs(width=TINY))
    with pytest.raises(ValueError) as info:
        get_method(SYNTH)
    assert str(info.value) == (f"{package_dir / 'flownet2-sss-synth.pth'}: this file is FlowNet2-CS (width "
                               "0.0625); method flownet2-sss-synth needs FlowNet2-SSS (width 0.0625) weights")


def test_listing_follows_flownet2_weights(tmp_path, monkeypatch):
    from flownet2_core.methods import unavailable_methods

    monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
    assert unavailable_methods()["flownet2-s"].startswith("FLOWNET2_WEIGHTS is not set; set it to a directory "
                                                          "holding FlowNet2-S_checkpoint.pth.tar")
    monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path))
    assert unavailable_methods()["flownet2-s"].startswith(f"FLOWNET2_WEIGHTS={tmp_path} has no "
                                                          "FlowNet2-S_checkpoint.pth.tar")
    _write_released(tmp_path / "FlowNet2-S_checkpoint.pth.tar", "FlowNet2-S")
    gone = unavailable_methods()
    assert "flownet2-s" not in gone and "flownet2-c" in gone
    assert not any(m in gone for m in ("tvl1", "dis", "farneback", "deepflow", "pcaflow"))
