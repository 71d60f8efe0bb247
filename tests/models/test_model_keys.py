"""state_dict keys, shapes and parameter counts of the six released models, at width 1 and
3/8, and of the Caffe-only S stacks (FlowNet2-SS / -SSS) derived from them.

The reference is a copy of the shared key list (keys and shapes of the
released checkpoints, in registration order) kept in ``data/`` so the test
runs on a clean clone. Models are built on the meta device: no memory, no
initialisation cost.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from flownet2_core.models import BUILDERS, build_model, display_name

KEY_FILE = Path(__file__).parent / "data" / "flownet2_state_dict_keys.txt"
# Section names of the key file → released architecture names.
SECTION_TO_ARCH = {"FlowNet2": "FlowNet2", "FlowNet2C": "FlowNet2-C", "FlowNet2S": "FlowNet2-S",
                   "FlowNet2SD": "FlowNet2-SD", "FlowNet2CS": "FlowNet2-CS", "FlowNet2CSS": "FlowNet2-CSS"}
# SPEC §2.
PARAMS = {"FlowNet2": 162_518_834, "FlowNet2-C": 39_175_298, "FlowNet2-S": 38_676_506,
          "FlowNet2-SD": 45_371_666, "FlowNet2-CS": 77_870_620, "FlowNet2-CSS": 116_565_942}


def parse_key_file(path: Path = KEY_FILE) -> dict[str, dict]:
    """``{arch: {"params": int, "keys": [(key, shape), ...]}}`` from the shared list's format."""
    sections: dict[str, dict] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        m = re.match(r"## (\S+) \| keys: (\d+) \| params: (\d+)", line)
        if m:
            current = SECTION_TO_ARCH[m.group(1)]
            sections[current] = {"n_keys": int(m.group(2)), "params": int(m.group(3)), "keys": []}
            continue
        key, shape = line.split(" ", 1)
        sections[current]["keys"].append((key, tuple(ast.literal_eval(shape))))
    return sections


REFERENCE = parse_key_file()
# Architectures with no PyTorch-port checkpoint (Caffe release only), so not in the key file.
CAFFE_ONLY = ("FlowNet2-SS", "FlowNet2-SSS")
PORT = sorted(REFERENCE)


def meta_model(arch: str, **kw):
    with torch.device("meta"):
        return build_model(arch, **kw)


def key_shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_reference_file_is_complete():
    assert set(REFERENCE) == set(BUILDERS) - set(CAFFE_ONLY)
    for arch, sec in REFERENCE.items():
        assert len(sec["keys"]) == sec["n_keys"], arch
        assert sec["params"] == PARAMS[arch]
        assert sum(torch.Size(s).numel() for _, s in sec["keys"]) == sec["params"]


@pytest.mark.parametrize("arch", PORT)
def test_keys_and_shapes_equal_released(arch):
    model = meta_model(arch)
    assert key_shapes(model) == REFERENCE[arch]["keys"]  # same keys, shapes and order


@pytest.mark.parametrize("arch", PORT)
def test_parameter_count(arch):
    assert n_params(meta_model(arch)) == PARAMS[arch]


def _scaled_dim(ref: int, width: Fraction) -> int:
    """Expected size of a channel dimension at ``width``: feature channels scale; the image
    inputs (3, 6, 11, 12) and flows (2) do not; a concat "features + flow" scales its
    feature part; conv3_1 of FlowNetC sees redir (32·w) + correlation (441)."""
    if ref in (3, 6, 11, 12):
        return ref
    if ref == 473:
        return int(32 * width) + 441
    if (ref * width).denominator != 1 and ((ref - 2) * width).denominator == 1:
        return int((ref - 2) * width) + 2
    assert (ref * width).denominator == 1, ref
    return int(ref * width)


@pytest.mark.parametrize("arch", PORT)
def test_lowercase_width_three_eighths(arch):
    width = Fraction(3, 8)
    model = meta_model(arch, width=float(width))
    got = key_shapes(model)
    assert [k for k, _ in got] == [k for k, _ in REFERENCE[arch]["keys"]]
    expected_params = 0
    for (key, shape), (_, ref) in zip(got, REFERENCE[arch]["keys"]):
        # Channel dims are the first two (conv: out, in; deconv: in, out); kernels stay.
        expect = tuple(_scaled_dim(d, width) for d in ref[:2]) + ref[2:]
        assert shape == expect, key
        expected_params += torch.Size(expect).numel()
    assert n_params(model) == expected_params
    # Spot checks of the rule stated in the docs.
    sd = model.state_dict()
    prefix = {"FlowNet2-C": "", "FlowNet2-S": None, "FlowNet2-SD": None}.get(arch, "flownetc.")
    if prefix is not None:
        assert sd[f"{prefix}conv_redir.0.weight"].shape[0] == 12
        assert sd[f"{prefix}conv3_1.0.weight"].shape[1] == 12 + 441
    lowercase = {"FlowNet2": "FlowNet2 (width 0.375)", "FlowNet2-C": "FlowNet2-c",
                 "FlowNet2-S": "FlowNet2-s", "FlowNet2-SD": "FlowNet2-sd",
                 "FlowNet2-CS": "FlowNet2-cs", "FlowNet2-CSS": "FlowNet2-css"}
    assert display_name(arch, 3 / 8) == lowercase[arch]


def test_lowercase_parameter_counts():
    """The counts at width 3/8, for the record (FlowNet2-s ≈ 5.5 M, about 1/7 of FlowNet2-S)."""
    counts = {arch: n_params(meta_model(arch, width=3 / 8)) for arch in BUILDERS}
    assert counts == {"FlowNet2": 23_191_614, "FlowNet2-C": 5_768_758, "FlowNet2-S": 5_462_666,
                      "FlowNet2-SD": 6_398_866, "FlowNet2-CS": 11_238_480, "FlowNet2-CSS": 16_708_202,
                      "FlowNet2-SS": 10_932_388, "FlowNet2-SSS": 16_402_110}


def _sub(keys, old_prefix, new_prefix):
    return [(new_prefix + k[len(old_prefix):], s) for k, s in keys if k.startswith(old_prefix)]


@pytest.mark.parametrize("width", [1.0, 3 / 8])
def test_s_stacks_are_built_from_the_released_subnetworks(width):
    """FlowNet2-SS = FlowNet2-S's net (6-channel conv1) as ``flownets_0`` + FlowNet2-CS's
    ``flownets_1`` (12-channel conv1); FlowNet2-SSS adds FlowNet2-CSS's ``flownets_2``.
    Counts at width 1: 38,676,506 + 38,695,322 = 77,371,828 (SS), + 38,695,322 =
    116,067,150 (SSS); at 3/8: 5,462,666 + 5,469,722 = 10,932,388 and 16,402,110."""
    s = key_shapes(meta_model("FlowNet2-S", width=width))
    cs = key_shapes(meta_model("FlowNet2-CS", width=width))
    css = key_shapes(meta_model("FlowNet2-CSS", width=width))
    ss = key_shapes(meta_model("FlowNet2-SS", width=width))
    sss = key_shapes(meta_model("FlowNet2-SSS", width=width))
    s1 = _sub(cs, "flownets_1.", "flownets_1.")
    assert ss == _sub(s, "", "flownets_0.") + s1
    assert sss == _sub(s, "", "flownets_0.") + _sub(css, "flownets_1.", "flownets_1.") \
        + _sub(css, "flownets_2.", "flownets_2.")
    sd = dict(sss)
    c64 = round(64 * width)
    assert sd["flownets_0.conv1.0.weight"] == (c64, 6, 7, 7)    # [img1, img2], as FlowNet2-S
    assert sd["flownets_1.conv1.0.weight"] == (c64, 12, 7, 7)   # stacked input, as CSS's S nets
    assert sd["flownets_2.conv1.0.weight"] == (c64, 12, 7, 7)
    n = {a: n_params(meta_model(a, width=width)) for a in ("FlowNet2-S", "FlowNet2-SS", "FlowNet2-SSS")}
    s12 = n["FlowNet2-S"] + c64 * 6 * 7 * 7     # six more input channels of conv1
    assert n["FlowNet2-SS"] == n["FlowNet2-S"] + s12
    assert n["FlowNet2-SSS"] == n["FlowNet2-S"] + 2 * s12
    assert display_name("FlowNet2-SS", width) == ("FlowNet2-SS" if width == 1 else "FlowNet2-ss")
    assert display_name("FlowNet2-SSS", width) == ("FlowNet2-SSS" if width == 1 else "FlowNet2-sss")


@pytest.mark.parametrize("arch", ["FlowNet2-C", "FlowNet2-SD", "FlowNet2"])
def test_batch_norm_keys(arch):
    """With batch norm, conv blocks lose their bias and gain ``name.1.*`` (SPEC §1)."""
    sd = meta_model(arch, batch_norm=True).state_dict()
    plain = dict(REFERENCE[arch]["keys"])
    for key, shape in plain.items():
        head = key.rpartition(".")[0]
        if head.endswith(".0") and "deconv" not in head:
            block = head[:-2]
            assert f"{block}.0.weight" in sd
            assert f"{block}.0.bias" not in sd, block
            for buf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                assert f"{block}.1.{buf}" in sd
        else:
            assert key in sd and tuple(sd[key].shape) == shape


def test_width_validation():
    with pytest.raises(ValueError, match="width"):
        meta_model("FlowNet2-S", width=0)
    with pytest.raises(ValueError, match="width"):
        meta_model("FlowNet2-S", width=0.001)
    with pytest.raises(ValueError, match="unknown FlowNet2 architecture"):
        build_model("FlowNet3")
