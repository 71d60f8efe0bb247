"""The weights registry (flownet2_core.weights): torch-free, every entry well formed, the
look-ups, where files are found (FLOWNET2_WEIGHTS, the package) and the one-line reasons when
they are not, and the packaging of weights trained here."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from flownet2_core import weights as registry
from flownet2_core.weights import (
    ARCHITECTURES,
    ORIGINS,
    REGISTRY,
    WEIGHTS_ENV,
    Weights,
    converted_file,
    display_name,
    get_weights,
    identify,
    list_weights,
    weights_for_method,
)

ROOT = Path(__file__).resolve().parents[1]


def test_importing_and_listing_methods_needs_no_torch():
    code = ("import sys\n"
            "import flownet2_core.weights\n"
            "from flownet2_core.methods import available_methods, unavailable_methods\n"
            "assert 'flownet2-sss-synth' in available_methods() and unavailable_methods()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_entry_is_well_formed(name):
    w = REGISTRY[name]
    assert w.name == name and w.arch in ARCHITECTURES and w.origin in ORIGINS
    assert 0 < w.width <= 1 and w.summary and "\n" not in w.summary and w.source
    assert set(w.conventions) == {"upsample_align_corners", "warp_padding"}
    assert isinstance(w.conventions["upsample_align_corners"], bool)
    assert w.conventions["warp_padding"] in ("border", "zeros")
    for metric, m in w.metrics.items():
        assert set(m) == {"value", "source"}, metric
        assert isinstance(m["value"], float) and m["source"].strip(), metric
    assert os.path.basename(w.file) == w.file
    if w.origin == "nvidia-port":
        assert w.file == f"{name}_checkpoint.pth.tar" and w.width == 1.0 and not w.release
    if w.origin == "caffe-release":
        assert name == f"caffe/{w.release}" and w.file == converted_file(w.release)
    if w.origin == "trained-here":
        assert w.file.endswith(".pth") and w.packaged and w.location == f"flownet2_core/weights/{w.file}"
    else:
        assert "research purposes only" in w.licence and w.location == f"$FLOWNET2_WEIGHTS/{w.file}"
    json.dumps(w.to_dict())


def test_names_files_and_methods_are_unique():
    entries = list(REGISTRY.values())
    for attr in ("file", "method"):
        values = [getattr(w, attr) for w in entries if getattr(w, attr)]
        assert len(values) == len(set(values)), attr
    assert len(entries) == 7 + 17 + 1


def test_released_files_hold_the_networks_of_spec_section_1():
    """SPEC §1: FlowNet2 → FlowNet2; -C → FlowNet2C; -CS → FlowNet2CS; -CSS and -CSS-ft-sd →
    FlowNet2CSS; -S → FlowNet2S; -SD → FlowNet2SD."""
    port = {w.file: w.arch for w in list_weights(origin="nvidia-port")}
    assert port == {
        "FlowNet2_checkpoint.pth.tar": "FlowNet2", "FlowNet2-C_checkpoint.pth.tar": "FlowNet2-C",
        "FlowNet2-CS_checkpoint.pth.tar": "FlowNet2-CS", "FlowNet2-CSS_checkpoint.pth.tar": "FlowNet2-CSS",
        "FlowNet2-CSS-ft-sd_checkpoint.pth.tar": "FlowNet2-CSS", "FlowNet2-S_checkpoint.pth.tar": "FlowNet2-S",
        "FlowNet2-SD_checkpoint.pth.tar": "FlowNet2-SD",
    }


def test_caffe_release_networks():
    caffe = {w.release: (w.arch, w.width, w.method) for w in list_weights(origin="caffe-release")}
    lower = 3 / 8
    assert caffe["FlowNet2-ss"] == ("FlowNet2-SS", lower, "flownet2-ss-thin")
    assert caffe["FlowNet2-sss"] == ("FlowNet2-SSS", lower, "flownet2-sss-thin")
    assert caffe["FlowNet2-SS"] == ("FlowNet2-SS", 1.0, None)
    assert caffe["FlowNet2-KITTI"] == ("FlowNet2", 1.0, "flownet2-kitti")
    for release, (arch, width, _) in caffe.items():
        base = release.removesuffix("-ft-sd")
        if "KITTI" not in base and "Sintel" not in base:
            assert display_name(arch, width) == base, release


def test_published_figures_and_their_sources():
    m = get_weights("FlowNet2").metrics
    assert m["Sintel clean EPE"] == {"value": 2.22, "source": "converted weights, ptlflow"}
    assert m["Sintel final EPE"]["value"] == 3.64 and m["KITTI 2015 Fl-all %"]["value"] == 30.5
    assert m["Sintel clean EPE (paper)"] == {"value": 2.02, "source": "paper"}
    assert get_weights("caffe/FlowNet2-s").metrics["runtime ms"]["value"] == pytest.approx(1000 / 140)
    assert get_weights("FlowNet2-C").metrics == {}   # none transcribed


def test_trained_here_entry():
    w = get_weights("FlowNet2-sss-synth")
    assert (w.arch, w.width, w.origin, w.method, w.file) == (
        "FlowNet2-SSS", 3 / 8, "trained-here", "flownet2-sss-synth", "flownet2-sss-synth.pth")
    assert w.display_name == "FlowNet2-sss" and w.conventions == registry.PORT_CONVENTIONS
    assert w.summary.startswith("FlowNet2-sss (width 3/8) trained here on synthetic data (stage-wise")
    assert w.training_data == ("synthetic chairs/things/sdhom generated on the fly "
                               "(flownet2_core.train.synthetic)")
    # One network at a time: every stage names the one it trained, in stack order.
    stages = list(w.recipe["stages"])
    nets = [s.split(":")[0].split(" ")[0] for s in stages]
    assert nets == sorted(nets) and set(nets) == {"flownets_0", "flownets_1", "flownets_2"}
    # Filled in from the runs that made the shipped file.
    assert w.iterations == sum(w.recipe["stages"].values())
    assert w.wall_time_s > 0 and all(m["source"].startswith("evaluations.eval_trained") for m in w.metrics.values())
    assert weights_for_method("flownet2-sss-synth") is w
    # The Caffe release's FlowNet2-sss is the same network, but not this entry.
    assert get_weights("caffe/FlowNet2-sss").method == "flownet2-sss-thin"
    assert [x.name for x in list_weights(arch="FlowNet2-SSS", origin="trained-here")] == ["FlowNet2-sss-synth"]
    assert not list_weights(arch="FlowNet2-SS", origin="trained-here")   # the first version is gone
    assert "FlowNet2-css-synth" not in REGISTRY and not list_weights(arch="FlowNet2-CSS", origin="trained-here")


def test_entries_are_immutable():
    w = get_weights("FlowNet2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.width = 0.5
    with pytest.raises(TypeError):
        w.metrics["x"] = {"value": 1.0, "source": "me"}
    with pytest.raises(TypeError):
        REGISTRY["x"] = w
    assert {w: 1}[get_weights("FlowNet2")] == 1   # hashable (by name)
    assert pickle.loads(pickle.dumps(w)) == w   # e.g. to worker processes
    variant = dataclasses.replace(w, width=0.25, metrics={"a": {"value": 1.0, "source": "b"}})
    assert variant.width == 0.25 and w.width == 1.0 and variant.metrics["a"]["value"] == 1.0


def test_lookups():
    assert [w.name for w in list_weights(arch="FlowNet2-SSS")] == ["caffe/FlowNet2-sss", "FlowNet2-sss-synth"]
    assert {w.origin for w in list_weights(with_method=True)} == set(ORIGINS)
    assert len(list_weights(with_method=True)) == 17
    with pytest.raises(ValueError, match="unknown weights 'FlowNet3'; known: FlowNet2, "):
        get_weights("FlowNet3")
    with pytest.raises(ValueError, match="unknown origin"):
        list_weights(origin="somewhere")
    with pytest.raises(ValueError, match="no weights entry for flow method 'tvl1'"):
        weights_for_method("tvl1")


def test_identify():
    assert identify("/a/FlowNet2-CSS-ft-sd_checkpoint.pth.tar", "FlowNet2-CSS", 1.0).name == "FlowNet2-CSS-ft-sd"
    assert identify("/a/FlowNet2-CSS-ft-sd_checkpoint.pth.tar", "FlowNet2-CSS", 3 / 8) is None
    assert identify("/a/FlowNet2-CSS-ft-sd_checkpoint.pth.tar", "FlowNet2-CSS", 1.0, batch_norm=True) is None
    assert identify("renamed.pth.tar", "FlowNet2-CSS", 1.0) is None
    assert identify("renamed.pth.tar", "FlowNet2-CSS", 3 / 8, release="FlowNet2-css-ft-sd").name == \
        "caffe/FlowNet2-css-ft-sd"
    assert identify("FlowNet2-css_converted.pth.tar", "FlowNet2-CSS", 3 / 8, release="FlowNet2-css-ft-sd").name \
        == "caffe/FlowNet2-css-ft-sd"   # the recorded release wins over the name
    assert identify("x", "FlowNet2-CSS", 1.0, release="FlowNet2-css") is None   # another width
    assert identify("flownet2-sss-synth.pth", "FlowNet2-SSS", 3 / 8).name == "FlowNet2-sss-synth"
    assert identify("flownet2-sss-synth.pth", "FlowNet2-SS", 3 / 8) is None   # another network
    assert identify("FlowNet2-ss_converted.pth.tar", "FlowNet2-SS", 3 / 8).name == "caffe/FlowNet2-ss"


def test_display_name():
    assert display_name("FlowNet2-CSS", 3 / 8) == "FlowNet2-css"
    assert display_name("FlowNet2", 3 / 8) == "FlowNet2 (width 0.375)"
    assert display_name("FlowNet2-S", 0.25) == "FlowNet2-S (width 0.25)"
    assert display_name("FlowNet2-SD", 1.0) == "FlowNet2-SD"


# ----------------------------------------------------------------------------- finding files


def test_locate_external(tmp_path, monkeypatch):
    w = get_weights("FlowNet2-CSS-ft-sd")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    reason = w.unavailable_reason()
    assert reason == ("FLOWNET2_WEIGHTS is not set; set it to a directory holding "
                      "FlowNet2-CSS-ft-sd_checkpoint.pth.tar or pass weights=FILE (CLI: --weights FILE)")
    with pytest.raises(ValueError) as info:
        w.locate()
    assert str(info.value).startswith(f"flownet2-css-ft-sd needs pretrained weights: {reason}. Weights are "
                                      "not downloaded")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert w.unavailable_reason() == (f"FLOWNET2_WEIGHTS={tmp_path} has no FlowNet2-CSS-ft-sd_checkpoint.pth.tar; "
                                      "put the released file there under that name or pass weights=FILE")
    assert "convert FlowNet2-KITTI_weights.caffemodel[.h5] into it with `flownet2 weights convert`" in \
        get_weights("caffe/FlowNet2-KITTI").unavailable_reason()
    (tmp_path / w.file).write_bytes(b"x")
    assert w.unavailable_reason() is None and w.locate() == str(tmp_path / w.file)
    # An explicit file beats the folder, and must exist.
    other = tmp_path / "other.pth.tar"
    other.write_bytes(b"x")
    assert w.locate(other) == str(other)
    with pytest.raises(ValueError, match="^builder: weights file not found: .*missing"):
        w.locate(tmp_path / "missing", who="builder")


def test_locate_packaged(tmp_path, monkeypatch):
    """Weights trained here are looked for in the package only (never FLOWNET2_WEIGHTS)."""
    w = get_weights("FlowNet2-sss-synth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    (tmp_path / w.file).write_bytes(b"x")
    empty = tmp_path / "package"
    empty.mkdir()
    monkeypatch.setattr(registry, "package_dir", lambda: empty)
    reason = w.unavailable_reason()
    assert reason.startswith("flownet2_core/weights/flownet2-sss-synth.pth is not in this installation")
    with pytest.raises(ValueError) as info:
        w.locate()
    assert len(str(info.value).splitlines()) == 1
    assert str(info.value).startswith(f"flownet2-sss-synth needs pretrained weights: {reason}")
    (empty / w.file).write_bytes(b"x")
    assert w.unavailable_reason() is None and w.locate() == str(empty / w.file)


def test_package_dir_is_the_package_folder():
    assert registry.package_dir() == Path(registry.__file__).parent


def test_packaged_weights_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.pth" in config["tool"]["setuptools"]["package-data"]["flownet2_core.weights"]
    assert (ROOT / "flownet2_core" / "weights" / "__init__.py").is_file()   # a package, so data has a home


def test_a_new_entry_needs_only_data(monkeypatch):
    """What adding an entry takes: a Weights value in the table."""
    w = Weights(name="FlowNet2-s-mine", file="flownet2-s-mine.pth", arch="FlowNet2-S", width=3 / 8,
                origin="trained-here", method="flownet2-s-mine", summary="mine",
                recipe={"schedule": "S_short", "batch": 8}, iterations=1000, wall_time_s=12.5,
                training_data="generated pairs", metrics={"Chairs EPE": {"value": 3.0, "source": "measured here"}})
    d = w.to_dict()
    assert d["recipe"] == {"schedule": "S_short", "batch": 8} and d["display_name"] == "FlowNet2-s"
    assert json.loads(json.dumps(d))["metrics"]["Chairs EPE"]["value"] == 3.0
    monkeypatch.setitem(registry._ENTRIES, w.name, w)
    assert get_weights("FlowNet2-s-mine") is w and weights_for_method("flownet2-s-mine") is w
    assert identify("/x/flownet2-s-mine.pth", "FlowNet2-S", 3 / 8) is w


@pytest.mark.parametrize("bad,match", [({"origin": "downloaded"}, "origin must be one of"),
                                       ({"arch": "FlowNet3"}, "unknown architecture 'FlowNet3'"),
                                       ({"width": 0.0}, "width must be positive"),
                                       ({"release": "FlowNet2-s"}, "goes with origin caffe-release only")])
def test_malformed_entries_are_refused(bad, match):
    fields = {"name": "x", "file": "x.pth", "arch": "FlowNet2-S", "width": 1.0, "origin": "trained-here", **bad}
    with pytest.raises(ValueError, match=match):
        Weights(**fields)
