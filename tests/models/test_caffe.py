"""Caffe weight conversion: protobuf/HDF5 readers, the layer-name mapping of every family
member (and its inverse), the BGR → RGB flip, widths read from the blobs, metadata, and
every bad-file case."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pytest
import torch

from flownet2_core.models import (
    BUILDERS,
    build_model,
    display_name,
    load_checkpoint,
    read_checkpoint,
)
from flownet2_core.models.caffe import (
    CAFFE_CONVENTIONS,
    caffe_layer_map,
    caffe_to_state_dict,
    convert_caffe,
    converted_filename,
    load_caffe,
    read_caffe_weights,
    release_name,
    state_dict_to_caffe,
    write_caffemodel,
)
from flownet2_core.models.caffe_proto import CaffeLayer, encode_net, read_net

DATA = os.path.join(os.path.dirname(__file__), "data", "caffe")
TINY = 1 / 8          # conv6_1 has 128 channels: fast, and an exact width
LOWER = 3 / 8         # the paper's lowercase models
ARCHS = list(BUILDERS)


def _seeded(arch, width=TINY, seed=0):
    torch.manual_seed(seed)
    model = build_model(arch, width=width).eval()
    # Non-zero biases everywhere (init_weights zeroes them), so a lost or misplaced bias shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.uniform_(-0.1, 0.1)
    return model


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]), k


def _images(seed=1, size=64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, size, size, generator=g) * 255,
            torch.rand(1, 3, size, size, generator=g) * 255)


@pytest.fixture(scope="module")
def tiny():
    return {arch: _seeded(arch) for arch in ARCHS}


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("arch", ARCHS)
def test_protobuf_round_trip_every_member(tmp_path, tiny, arch):
    model = tiny[arch]
    src = tmp_path / f"{arch}_weights.caffemodel"
    write_caffemodel(src, model)
    out = tmp_path / "out.pth.tar"
    summary = convert_caffe(src, out)
    assert summary["model"] == arch and summary["width"] == TINY
    assert summary["format"] == "protobuf" and summary["release"] == arch
    assert summary["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert summary["layers_ignored"] == ["img0s_aug", "scale_conv1"]
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    loaded = load_checkpoint(out).eval()
    assert type(loaded) is type(model)
    _same_state(model, loaded)
    # Port conventions unless asked otherwise.
    assert loaded.upsample_align_corners is False and loaded.warp_padding == "border"
    meta = read_checkpoint(out)["flownet2"]
    assert meta["converted_from"]["sha256"] == summary["source_sha256"]
    assert meta["converted_from"]["format"] == "protobuf"
    assert meta["converted_from"]["bgr_to_rgb"] is True
    assert meta["conventions_preset"] == "pytorch-port"
    assert math.isnan(read_checkpoint(out)["best_EPE"])


@pytest.mark.parametrize("arch", ["FlowNet2-C", "FlowNet2-S", "FlowNet2-SD", "FlowNet2-CSS",
                                  "FlowNet2-SS"])
def test_lowercase_width_read_from_legacy_v1_file(tmp_path, arch):
    model = _seeded(arch, width=LOWER, seed=3)
    src = tmp_path / "lower.caffemodel"
    write_caffemodel(src, model, v1=True)   # legacy `layers` = 2, num/channels/height/width shapes
    converted, report = load_caffe(src)
    assert report["width"] == LOWER
    assert report["display_name"] == "FlowNet2-" + arch.split("-")[1].lower()
    _same_state(model, converted)


def test_lowercase_channel_counts_match_the_release_prototxt():
    # FlowNet2-ss_deploy.prototxt.template (3/8 width) has, in both FlowNetS (conv1… and
    # net2_conv1…), conv1..conv6_1 num_output 24, 48, 96, 96, 192, 192, 192, 192, 384, 384
    # and deconv5..2 192, 96, 48, 24; conv1 sees [img0, img1] (6 channels), net2_conv1
    # [img0, img1, warped, flow × 0.05, brightness error] (12).
    with torch.device("meta"):
        sd = build_model("FlowNet2-SS", width=LOWER).state_dict()
    for prefix, in_channels in (("flownets_0.", 6), ("flownets_1.", 12)):
        convs = [sd[f"{prefix}{n}.0.weight"].shape[0] for n in (
            "conv1", "conv2", "conv3", "conv3_1", "conv4", "conv4_1", "conv5", "conv5_1", "conv6", "conv6_1")]
        assert convs == [24, 48, 96, 96, 192, 192, 192, 192, 384, 384]
        assert [sd[f"{prefix}deconv{k}.0.weight"].shape[1] for k in (5, 4, 3, 2)] == [192, 96, 48, 24]
        assert sd[f"{prefix}conv1.0.weight"].shape[1] == in_channels


@pytest.mark.parametrize("arch", ARCHS)
def test_hdf5_round_trip_every_member(tmp_path, tiny, arch):
    h5py = pytest.importorskip("h5py")
    model = tiny[arch]
    src = tmp_path / f"{arch}_weights.caffemodel.h5"
    write_caffemodel(src, model, fmt="hdf5")
    with h5py.File(src, "r") as f:   # the layout Caffe writes: data/<layer>/0, 1
        first = caffe_layer_map(arch)[0][1][0]
        assert set(f["data"][first].keys()) == {"0", "1"}
    out = tmp_path / "out.pth.tar"
    summary = convert_caffe(src, out, caffe_conventions=True)
    assert summary["format"] == "hdf5" and summary["release"] == arch
    loaded = load_checkpoint(out)
    _same_state(model, loaded)
    assert loaded.upsample_align_corners is True and loaded.warp_padding == "zeros"
    assert read_checkpoint(out)["flownet2"]["conventions_preset"] == "caffe"


def test_hdf5_lowercase_width(tmp_path):
    pytest.importorskip("h5py")
    model = _seeded("FlowNet2-CS", width=LOWER, seed=5)
    src = tmp_path / "FlowNet2-cs_weights.caffemodel.h5"
    write_caffemodel(src, model, fmt="hdf5")
    summary = convert_caffe(src, tmp_path / "o.pth.tar")
    assert summary["width"] == LOWER and summary["display_name"] == "FlowNet2-cs"
    assert summary["release"] == "FlowNet2-cs"
    _same_state(model, load_checkpoint(tmp_path / "o.pth.tar"))


def test_protobuf_and_hdf5_agree(tmp_path, tiny):
    pytest.importorskip("h5py")
    write_caffemodel(tmp_path / "a.caffemodel", tiny["FlowNet2-SD"])
    write_caffemodel(tmp_path / "a.caffemodel.h5", tiny["FlowNet2-SD"], fmt="hdf5")
    a, b = read_caffe_weights(tmp_path / "a.caffemodel"), read_caffe_weights(tmp_path / "a.caffemodel.h5")
    assert a.format == "protobuf" and b.format == "hdf5" and set(a) == set(b)
    for k in a:
        assert len(a[k]) == len(b[k])
        for x, y in zip(a[k], b[k]):
            np.testing.assert_array_equal(x, y)


def test_unpacked_floats_and_dims_are_read(tmp_path):
    w = np.arange(2 * 3 * 1 * 2, dtype=np.float32).reshape(2, 3, 1, 2)
    b = np.array([0.5, -1.5], np.float32)
    layers = [CaffeLayer("conv1", "Convolution", [w, b])]
    for v1 in (False, True):
        path = tmp_path / f"u{v1}.caffemodel"
        path.write_bytes(encode_net(layers, v1=v1, packed=False))
        (got,) = read_net(path)
        assert got.name == "conv1" and got.type == "Convolution"
        np.testing.assert_array_equal(got.blobs[0], w)
        np.testing.assert_array_equal(got.blobs[1].reshape(-1), b)


# ----------------------------------------------------------------------------- BGR → RGB


# CS and CSS add nothing here: FlowNet2 has their C and both stacked S nets (and SD, fusion).
@pytest.mark.parametrize("arch", ["FlowNet2-C", "FlowNet2-S", "FlowNet2-SD", "FlowNet2",
                                  "FlowNet2-SS", "FlowNet2-SSS"])
def test_bgr_flip_against_caffe_semantics(tmp_path, tiny, arch):
    """Converted weights fed RGB == the original model; raw Caffe weights fed BGR == the same."""
    model = tiny[arch]
    src = tmp_path / "m.caffemodel"
    write_caffemodel(src, model)
    converted, _ = load_caffe(src)
    raw, _ = load_caffe(src, bgr_to_rgb=False)   # Caffe's channel order: expects BGR
    first = {"FlowNet2-SD": "conv0.0.weight"}.get(arch, "conv1.0.weight")
    first = {"FlowNet2": "flownetc.", "FlowNet2-SS": "flownets_0.",
             "FlowNet2-SSS": "flownets_0."}.get(arch, "") + first
    assert not torch.equal(raw.state_dict()[first], model.state_dict()[first])
    img1, img2 = _images(seed=7)
    with torch.no_grad():
        rgb = model(img1, img2)
        assert torch.equal(converted(img1, img2), rgb)   # identical outputs after conversion
        bgr = raw(img1.flip(1), img2.flip(1))
        torch.testing.assert_close(bgr, rgb, rtol=1e-4, atol=1e-4)
        if arch == "FlowNet2-C":   # and the check is sensitive to the channel order
            assert not torch.allclose(raw(img1, img2), rgb, rtol=1e-4, atol=1e-4)


FIRST_LAYERS = {  # Caffe layer → (our key, colour channels flipped)
    "FlowNet2": {"conv1": ("flownetc.conv1.0.weight", 3), "net2_conv1": ("flownets_1.conv1.0.weight", 9),
                 "net3_conv1": ("flownets_2.conv1.0.weight", 9),
                 "netsd_conv0": ("flownets_d.conv0.0.weight", 6),
                 "fuse_conv0": ("flownetfusion.conv0.0.weight", 3)},
    # The first FlowNetS of an S stack sees both images (6 channels, all flipped).
    "FlowNet2-SSS": {"conv1": ("flownets_0.conv1.0.weight", 6),
                     "net2_conv1": ("flownets_1.conv1.0.weight", 9),
                     "net3_conv1": ("flownets_2.conv1.0.weight", 9)},
}


@pytest.mark.parametrize("arch", sorted(FIRST_LAYERS))
def test_flip_touches_only_colour_channels(tmp_path, tiny, arch):
    model = tiny[arch]
    src = tmp_path / "m.caffemodel"
    write_caffemodel(src, model)
    blobs = read_caffe_weights(src)
    sd = model.state_dict()
    for layer, (key, n) in FIRST_LAYERS[arch].items():
        caffe = torch.from_numpy(blobs[layer][0])
        expect = sd[key].clone()
        for g in range(n // 3):
            expect[:, 3 * g:3 * g + 3] = expect[:, 3 * g:3 * g + 3].flip(1)
        assert torch.equal(caffe, expect), layer
        # flow, flow-norm and brightness-error channels are never flipped
        assert torch.equal(caffe[:, n:], sd[key][:, n:]), layer


# ----------------------------------------------------------------------------- names


def test_layer_names_verified_against_release_prototxts():
    full = {mod: names for mod, names, _ in caffe_layer_map("FlowNet2")}
    assert full["flownetc.conv_redir.0"][0] == "conv_redir"
    assert full["flownetc.predict_flow6"][0] == "Convolution1"
    assert full["flownetc.predict_flow2"][0] == "Convolution5"
    assert full["flownetc.upsampled_flow6_to_5"][0] == "upsample_flow6to5"
    assert full["flownets_1.predict_flow6"][0] == "net2_predict_conv6"
    assert full["flownets_1.upsampled_flow6_to_5"][0] == "net2_net2_upsample_flow6to5"
    assert full["flownets_1.upsampled_flow3_to_2"][0] == "net2_net2_upsample_flow3to2"
    assert full["flownets_2.upsampled_flow4_to_3"][0] == "net3_net3_upsample_flow4to3"
    assert full["flownets_2.conv3_1.0"][0] == "net3_conv3_1"
    assert full["flownets_d.inter_conv5.0"][0] == "netsd_interconv5"
    assert full["flownets_d.predict_flow2"][0] == "netsd_Convolution5"
    assert full["flownets_d.upsampled_flow6_to_5"][0] == "netsd_upsample_flow6to5"
    assert full["flownetfusion.predict_flow2"][0] == "fuse__Convolution5"
    assert full["flownetfusion.predict_flow1"][0] == "fuse__Convolution6"
    assert full["flownetfusion.predict_flow0"][0] == "fuse__Convolution7"
    assert full["flownetfusion.upsampled_flow1_to_0"][0] == "fuse_upsample_flow1to0"
    sd = {mod: names for mod, names, _ in caffe_layer_map("FlowNet2-SD")}
    assert sd["conv0.0"][0] == "conv0" and sd["inter_conv2.0"][0] == "interconv2"
    assert sd["predict_flow6"][0] == "Convolution1"
    s = {mod: names for mod, names, _ in caffe_layer_map("FlowNet2-S")}
    assert s["predict_flow6"] == ("Convolution1", "predict_conv6")
    assert s["upsampled_flow3_to_2"] == ("upsample_flow3to2",)


def _ss_release_layers(prefixes):
    """The weighted layers of FlowNet2-ss_deploy.prototxt.template (lmb-freiburg release, as
    mirrored in cdancette/flownet-tools), in file order, without scale_conv1: per FlowNetS the
    encoder, then predict_conv6, and per level deconvK, upsample, predict_convK."""
    out = []
    for p in prefixes:
        up = p + p   # net2_net2_upsample_flow6to5; the first (un-prefixed) net: upsample_flow6to5
        out += [p + n for n in ("conv1", "conv2", "conv3", "conv3_1", "conv4", "conv4_1", "conv5",
                                "conv5_1", "conv6", "conv6_1", "predict_conv6")]
        for k, step in zip((5, 4, 3, 2), ("6to5", "5to4", "4to3", "3to2")):
            out += [f"{p}deconv{k}", f"{up}upsample_flow{step}", f"{p}predict_conv{k}"]
    return out


def test_s_stack_layer_names_verified_against_release_prototxt(tmp_path):
    """FlowNet2-ss: the first FlowNetS is un-prefixed with predict_conv6..2; the second net2_.
    FlowNet2-sss (prototxt not seen) is assumed to add net3_ like FlowNet2-CSS."""
    ss = [names[0] for _, names, _ in caffe_layer_map("FlowNet2-SS")]
    assert sorted(ss) == sorted(_ss_release_layers(["", "net2_"]))
    sss = [names[0] for _, names, _ in caffe_layer_map("FlowNet2-SSS")]
    assert sorted(sss) == sorted(_ss_release_layers(["", "net2_", "net3_"]))
    rows = {mod: (names, flip) for mod, names, flip in caffe_layer_map("FlowNet2-SS")}
    assert rows["flownets_0.conv1.0"] == (("conv1",), "rgb2")
    assert rows["flownets_1.conv1.0"] == (("net2_conv1",), "rgb3")
    assert rows["flownets_0.predict_flow6"][0][0] == "predict_conv6"
    assert rows["flownets_0.upsampled_flow6_to_5"][0] == ("upsample_flow6to5",)
    assert rows["flownets_1.upsampled_flow3_to_2"][0][0] == "net2_net2_upsample_flow3to2"
    # A file in the release's layer order converts (the order of layers never matters).
    model = _seeded("FlowNet2-SS")
    by_name = {layer.name: layer for layer in state_dict_to_caffe(model)}
    path = tmp_path / "FlowNet2-ss_weights.caffemodel"
    path.write_bytes(encode_net([by_name[n] for n in _ss_release_layers(["", "net2_"])]))
    converted, report = load_caffe(path)
    assert report["model"] == "FlowNet2-SS" and report["used"][0] == "conv1"
    _same_state(model, converted)


@pytest.mark.parametrize("arch", ARCHS)
def test_mapping_covers_every_key_once(arch):
    with torch.device("meta"):
        keys = list(build_model(arch).state_dict())
    rows = caffe_layer_map(arch)
    caffe_names = [names[0] for _, names, _ in rows]
    assert len(caffe_names) == len(set(caffe_names))
    mapped = set()
    for mod, _, _ in rows:
        mapped |= {f"{mod}.weight", f"{mod}.bias"}
    assert set(keys) <= mapped
    # Only the bias-free FlowNetS upsamplers are mapped without a key of ours.
    extra = {k for k in mapped - set(keys)}
    assert all("upsampled_flow" in k and k.endswith(".bias") for k in extra)


def test_alternative_predict_names_of_flownet_s(tmp_path):
    """FlowNet2-S alone also accepts predict_conv6..2 (the name in the first net of FlowNet2-ss)."""
    model = _seeded("FlowNet2-S", width=LOWER)
    layers = state_dict_to_caffe(model)
    rename = {f"Convolution{i + 1}": f"predict_conv{k}" for i, k in enumerate((6, 5, 4, 3, 2))}
    for layer in layers:
        layer.name = rename.get(layer.name, layer.name)
    path = tmp_path / "s.caffemodel"
    path.write_bytes(encode_net(layers))
    converted, report = load_caffe(path)
    assert "predict_conv6" in report["used"]
    _same_state(model, converted)


def test_s_upsampler_biases_dropped_and_nonzero_ones_reported(tmp_path):
    model = _seeded("FlowNet2-S")
    layers = state_dict_to_caffe(model)
    for layer in layers:
        if layer.name == "upsample_flow6to5":
            assert not layer.blobs[1].any()
            layer.blobs[1] = np.array([0.25, -0.5], np.float32)
    path = tmp_path / "s.caffemodel"
    path.write_bytes(encode_net(layers))
    with pytest.warns(UserWarning, match="upsample_flow6to5"):
        _, report = load_caffe(path)
    assert report["dropped_biases"]["upsample_flow6to5"] == 0.5
    assert report["dropped_biases"]["upsample_flow3to2"] == 0.0


def test_caffe_to_state_dict_api(tmp_path, tiny):
    src = tmp_path / "m.caffemodel"
    write_caffemodel(src, tiny["FlowNet2-CS"], extra_layers=False)
    weights = read_caffe_weights(src)
    arch, state, report = caffe_to_state_dict(weights)
    assert arch == "FlowNet2-CS" and report["ignored"] == []
    assert list(state) == list(tiny["FlowNet2-CS"].state_dict())   # our registration order
    assert set(report["dropped_biases"]) == {f"net2_net2_upsample_flow{s}" for s in
                                             ("6to5", "5to4", "4to3", "3to2")}
    with pytest.raises(ValueError, match="missing"):
        caffe_to_state_dict(weights, name="FlowNet2-CSS")


def test_release_name():
    assert release_name("/x/FlowNet2-css-ft-sd_weights.caffemodel.h5") == "FlowNet2-css-ft-sd"
    assert release_name("FlowNet2-KITTI_weights.caffemodel") == "FlowNet2-KITTI"
    assert release_name("model.caffemodel") == "model"
    assert converted_filename("/a/FlowNet2-css_weights.caffemodel.h5") == "FlowNet2-css_converted.pth.tar"


def test_registry_caffe_entries_name_the_converted_files():
    """Each Caffe entry of the weights registry expects the file `weights convert` writes by
    default, and its network is what the release name says (lowercase = width 3/8)."""
    from flownet2_core.weights import list_weights

    entries = list_weights(origin="caffe-release")
    assert len(entries) == 17
    for w in entries:
        assert w.arch in BUILDERS, w.name
        assert w.file == converted_filename(f"/x/{w.release}_weights.caffemodel.h5"), w.name
        base = w.release[: -len("-ft-sd")] if w.release.lower().endswith("-ft-sd") else w.release
        if "KITTI" not in base and "Sintel" not in base:
            assert display_name(w.arch, w.width) == base, w.name


# ----------------------------------------------------------------------------- prototxt


def _prototxt(layers, change=None):
    out = []
    for layer in layers:
        n = layer.blobs[0].shape[1 if layer.type == "Deconvolution" else 0]
        if change == layer.name:
            n += 1
        out.append(f'layer {{\n  name: "{layer.name}"\n  type: "{layer.type}"\n'
                   f"  convolution_param {{\n    num_output: {n}\n    kernel_size: 3\n  }}\n}}\n")
    return 'input: "img0"\n' + "".join(out)


def test_prototxt_cross_check(tmp_path, tiny):
    model = tiny["FlowNet2-CS"]
    src = tmp_path / "m.caffemodel"
    write_caffemodel(src, model)
    layers = state_dict_to_caffe(model)
    good = tmp_path / "deploy.prototxt.template"
    good.write_text(_prototxt(layers))
    summary = convert_caffe(src, tmp_path / "o.pth.tar", prototxt=good)
    assert summary["prototxt_layers_checked"] == len(layers)
    bad = tmp_path / "bad.prototxt"
    bad.write_text(_prototxt(layers, change="net2_deconv4"))
    with pytest.raises(ValueError, match="net2_deconv4.*num_output"):
        convert_caffe(src, tmp_path / "o2.pth.tar", prototxt=bad)
    assert not (tmp_path / "o2.pth.tar").exists()


# ----------------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "c.caffemodel"
    write_caffemodel(path, _seeded("FlowNet2-C", width=1 / 16))
    return path.read_bytes()


def _one_error(path, match):
    with pytest.raises(ValueError) as info:
        convert_caffe(path, str(path) + ".pth.tar")
    text = str(info.value)
    assert str(path) in text and len(text.splitlines()) == 1, text
    assert info.match(match)
    assert not os.path.exists(str(path) + ".pth.tar")


def test_truncated_protobuf(tmp_path, good_bytes):
    path = tmp_path / "t.caffemodel"
    path.write_bytes(good_bytes[: len(good_bytes) // 2])
    _one_error(path, "truncated")


def test_corrupt_protobuf(tmp_path, good_bytes):
    rng = np.random.default_rng(0)
    path = tmp_path / "c.caffemodel"
    path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _one_error(path, "not a readable Caffe|not a Caffe")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(200),
                                     b"layer {\n  name: \"conv1\"\n}\n", b"PK\x03\x04zipzip"])
def test_unrelated_files(tmp_path, content):
    path = tmp_path / "u.caffemodel"
    path.write_bytes(content)
    _one_error(path, "Caffe|torch checkpoint")


def test_unrelated_caffe_net(tmp_path):
    path = tmp_path / "vgg.caffemodel"
    path.write_bytes(encode_net([CaffeLayer("fc7", "InnerProduct", [np.ones((4, 3), np.float32)])]))
    _one_error(path, "no FlowNet2 layer names")


def test_missing_layer_and_mixed_width(tmp_path):
    layers = state_dict_to_caffe(_seeded("FlowNet2-C"))
    path = tmp_path / "m.caffemodel"
    path.write_bytes(encode_net([lay for lay in layers if lay.name != "deconv3"]))
    _one_error(path, "missing.*deconv3")
    other = {lay.name: lay for lay in state_dict_to_caffe(_seeded("FlowNet2-C", width=1 / 16))}
    mixed = [other["conv6_1"] if lay.name == "conv6_1" else lay for lay in layers]
    path.write_bytes(encode_net(mixed))
    _one_error(path, "does not fit")


def test_s_stack_with_a_missing_net(tmp_path):
    """An SSS file without its net3_ upsamplers is refused (not silently read as SS)."""
    layers = state_dict_to_caffe(_seeded("FlowNet2-SSS"))
    path = tmp_path / "x.caffemodel"
    path.write_bytes(encode_net([lay for lay in layers if not lay.name.startswith("net3_net3_")]))
    _one_error(path, "looks like FlowNet2-SSS.*net3_net3_upsample_flow6to5")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        convert_caffe(tmp_path / "nope.caffemodel", tmp_path / "o.pth.tar")


def test_hdf5_bad_files(tmp_path, good_bytes):
    h5py = pytest.importorskip("h5py")
    good = tmp_path / "g.caffemodel.h5"
    write_caffemodel(good, _seeded("FlowNet2-C", width=1 / 16), fmt="hdf5")
    raw = good.read_bytes()
    truncated = tmp_path / "t.caffemodel.h5"
    truncated.write_bytes(raw[: len(raw) // 2])
    _one_error(truncated, "HDF5")
    corrupt = tmp_path / "c.caffemodel.h5"
    corrupt.write_bytes(raw[:8] + bytes(range(256)) * 8)
    _one_error(corrupt, "HDF5")
    unrelated = tmp_path / "u.caffemodel.h5"
    with h5py.File(unrelated, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    _one_error(unrelated, "no 'data' group")
    empty = tmp_path / "e.caffemodel.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("data")
    _one_error(empty, "without weights")


def test_hdf5_without_h5py_is_a_clear_import_error(tmp_path, monkeypatch):
    import builtins

    path = tmp_path / "x.caffemodel.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "h5py":
            raise ImportError("no h5py")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="h5py"):
        read_caffe_weights(path)


def test_caffe_conventions_constant():
    assert CAFFE_CONVENTIONS == {"upsample_align_corners": True, "warp_padding": "zeros"}


def test_fixture_prototxt_snippet_parses(tmp_path, tiny):
    """A verbatim excerpt of FlowNet2-S_deploy.prototxt.template's decoder (tests/models/data/caffe)."""
    from flownet2_core.models.caffe import _prototxt_outputs

    with open(os.path.join(DATA, "FlowNet2-S_deploy_excerpt.prototxt")) as fh:
        outputs = _prototxt_outputs(fh.read())
    assert outputs == {"Convolution2": 2, "deconv4": 256, "upsample_flow5to4": 2}
