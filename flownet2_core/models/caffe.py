"""Convert the original Caffe weights of lmb-freiburg/flownet2 — no Caffe needed.

The Caffe release (``models/download-models.sh`` of lmb-freiburg/flownet2)
ships ``<Name>_weights.caffemodel`` (protobuf) or ``<Name>_weights.caffemodel.h5``
(HDF5: ``data/<layer>/0`` weights, ``1`` biases) with a
``<Name>_deploy.prototxt.template``, including models the PyTorch port never
converted (the 3/8-width FlowNet2-s, -ss, -sss, -c, -cs, -css, -css-ft-sd, the
full-width FlowNet2-SS, and FlowNet2 fine-tuned on KITTI / Sintel). :func:`convert_caffe` reads either format
(:mod:`.caffe_proto` for protobuf, ``h5py`` for HDF5), maps the Caffe layer
names onto our modules, flips the first layers' input channels from Caffe's
BGR to our RGB, builds the model whose channel counts match the blobs (the
width is read from the weights, never guessed) and writes our checkpoint
layout with provenance metadata. Which releases exist (architecture, width,
flow method) is data in :mod:`flownet2_core.weights`, the ``caffe/<Release>``
entries.

Layer names (Caffe → ours), from the deploy prototxts and the port's
``convert.py`` / ``utils/param_utils.py``:

* FlowNetC: ``conv1 … conv6_1``, ``conv_redir``, ``deconv5..2``,
  ``Convolution1..5`` = predict_flow6..2, ``upsample_flow6to5 … 3to2``.
* FlowNetS alone: as C without conv_redir (``Convolution1..5``; ``predict_conv6..2``
  accepted too).
* Stacked FlowNetS: ``net2_`` (first S) / ``net3_`` (second S) prefixes,
  ``netK_predict_conv6..2``, and upsamplers named with the prefix twice:
  ``net2_net2_upsample_flow6to5`` (all four, 6to5 … 3to2).
* S stacks (FlowNet2-SS/-ss/-sss): the first FlowNetS takes the place of
  FlowNetC, un-prefixed, with ``predict_conv6..2`` and ``upsample_flow6to5 … 3to2``
  (FlowNet2-ss_deploy.prototxt.template); then ``net2_`` (and ``net3_``) as above.
  Ours: ``flownets_0.``, ``flownets_1.`` (``flownets_2.``). The -sss layer names
  are assumed by analogy (its prototxt was not seen).
* FlowNetSD: ``conv0 … conv6_1``, ``interconv5..2``, ``Convolution1..5``,
  ``upsample_flow…``; inside FlowNet2 all prefixed ``netsd_``.
* Fusion: ``fuse_conv0 … fuse_conv2_1``, ``fuse_deconv1/0``,
  ``fuse_interconv1/0``, ``fuse__Convolution5/6/7`` (double underscore) =
  predict_flow2/1/0, ``fuse_upsample_flow2to1/1to0``.

Caffe's FlowNetS upsamplers carry a bias blob (constant filler, lr_mult 0 in
the released prototxts, so zero); our FlowNetS upsamplers have no bias, as in
the port's checkpoints. Such biases are dropped; a non-zero one is reported
in ``dropped_biases`` and warned about.

BGR → RGB: C ``conv1`` (3 channels), S ``conv1`` (image groups 0:3, 3:6 and,
stacked, the warped image 6:9; the first S of an S stack has only 0:3, 3:6),
SD ``conv0`` (0:3, 3:6), fusion ``conv0`` (0:3).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..io import file_sha256
from ..weights import CAFFE_CONVENTIONS, converted_file, display_name
from .builders import build_model
from .caffe_proto import CaffeLayer, ProtoError, encode_net, read_net
from .checkpoint import detect_architecture, save_checkpoint

__all__ = [
    "CAFFE_CONVENTIONS",
    "CaffeWeights",
    "caffe_layer_map",
    "caffe_to_state_dict",
    "convert_caffe",
    "converted_filename",
    "load_caffe",
    "read_caffe_weights",
    "release_name",
    "state_dict_to_caffe",
    "write_caffemodel",
]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_DECODER = ("6to5", "5to4", "4to3", "3to2")


class CaffeWeights(dict):
    """Layer name → list of float32 blobs (weights, bias), with ``format`` and ``types``."""

    format: str = ""
    types: dict

    def __init__(self, *args, fmt: str = "", types: dict | None = None, **kw) -> None:
        super().__init__(*args, **kw)
        self.format = fmt
        self.types = dict(types or {})


# ---------------------------------------------------------------- reading files


def _sniff(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(16)


def read_caffe_weights(path: str | os.PathLike) -> CaffeWeights:
    """Every layer with blobs in a ``.caffemodel`` or ``.caffemodel.h5`` file.

    The format is recognised from the bytes (HDF5 signature), not the name.
    Raises ``FileNotFoundError`` for a missing file, ``ImportError`` when an
    HDF5 file needs ``h5py`` and it is not installed, and one ``ValueError``
    naming the file for anything unreadable (corrupt, truncated, unrelated).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Caffe weights not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Caffe weights path is a directory: {path}")
    head = _sniff(path)
    if head.startswith(_HDF5_MAGIC):
        return _read_h5(path)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise ValueError(f"{path}: this is a torch checkpoint (zip or pickle), not Caffe weights; "
                         "use it directly with load_checkpoint")
    try:
        layers = read_net(path)
    except ProtoError as exc:
        raise ValueError(f"{path}: not a readable Caffe .caffemodel (corrupt or truncated "
                         f"protobuf: {exc})") from None
    out = CaffeWeights(fmt="protobuf")
    for layer in layers:
        if layer.blobs:
            if layer.name in out:
                raise ValueError(f"{path}: layer {layer.name!r} appears twice with weights")
            out[layer.name] = layer.blobs
            out.types[layer.name] = layer.type
    if not out:
        raise ValueError(f"{path}: not a Caffe .caffemodel with weights (no layer with blobs "
                         f"found in {len(layers)} layer{'s' * (len(layers) != 1)})")
    return out


def _read_h5(path: str) -> CaffeWeights:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{path} is an HDF5 file; reading .caffemodel.h5 needs h5py "
                          "(pip install h5py)") from None
    out = CaffeWeights(fmt="hdf5")
    try:
        with h5py.File(path, "r") as f:
            data = f.get("data")
            if not isinstance(data, h5py.Group):
                raise ValueError(f"{path}: an HDF5 file but not Caffe weights (no 'data' group; "  # noqa: TRY004
                                 f"top level: {', '.join(list(f.keys())[:5]) or 'empty'})")
            for name, group in data.items():
                if not isinstance(group, h5py.Group):
                    continue
                idx = sorted((k for k in group if k.isdigit()), key=int)
                if [int(k) for k in idx] != list(range(len(idx))):
                    raise ValueError(f"{path}: layer {name!r} has blobs {idx}, expected 0, 1, …")
                blobs = [np.asarray(group[k][()], dtype=np.float32) for k in idx]
                if blobs:
                    out[name] = blobs
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: not a readable Caffe HDF5 file (corrupt or truncated?): "
                         f"{exc}") from None
    except (OSError, KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable Caffe HDF5 file (corrupt or truncated?): "
                         f"{type(exc).__name__}: {exc}") from None
    if not out:
        raise ValueError(f"{path}: a Caffe HDF5 file without weights (empty 'data' group)")
    return out


# ---------------------------------------------------------------- the name mapping


def _net_c() -> list[tuple[str, tuple[str, ...], str]]:
    """(our module, Caffe names to try (first = the verified one), flip) for FlowNetC."""
    rows = [("conv1.0", ("conv1",), "rgb1")]
    rows += [(f"{n}.0", (n,), "") for n in ("conv2", "conv3", "conv_redir", "conv3_1", "conv4",
                                             "conv4_1", "conv5", "conv5_1", "conv6", "conv6_1")]
    rows += _decoder("", ("Convolution", "predict_conv"), "")
    return rows


def _decoder(p: str, predict: tuple[str, str], up_prefix: str) -> list:
    rows = [(f"deconv{k}.0", (f"{p}deconv{k}",), "") for k in (5, 4, 3, 2)]
    for i, k in enumerate((6, 5, 4, 3, 2)):
        names = (f"{p}{predict[0]}{i + 1 if predict[0] == 'Convolution' else k}",
                 f"{p}{predict[1]}{i + 1 if predict[1] == 'Convolution' else k}")
        rows.append((f"predict_flow{k}", names, ""))
    for step in _DECODER:
        a, b = step.split("to")
        names = tuple(dict.fromkeys((f"{up_prefix}{p}upsample_flow{step}", f"{p}upsample_flow{step}")))
        rows.append((f"upsampled_flow{a}_to_{b}", names, ""))
    return rows


def _net_s(p: str, first_of_stack: bool = False) -> list:
    """FlowNetS rows: stacked (``p`` = "net2_"/"net3_"), alone, or first of an S stack."""
    rows = [("conv1.0", (f"{p}conv1",), "rgb3")]
    rows += [(f"{n}.0", (f"{p}{n}",), "") for n in ("conv2", "conv3", "conv3_1", "conv4", "conv4_1",
                                                     "conv5", "conv5_1", "conv6", "conv6_1")]
    if p:  # stacked: netK_predict_convN and the doubled netK_netK_upsample_… names
        rows += _decoder(p, ("predict_conv", "Convolution"), p)
    elif first_of_stack:  # FlowNet2-ss: predict_conv6..2 (verified), conv1 sees 2 images
        rows[0] = ("conv1.0", ("conv1",), "rgb2")
        rows += _decoder("", ("predict_conv", "Convolution"), "")
    else:  # alone: Convolution1..5 (FlowNet2-S; predict_conv6..2 accepted)
        rows += _decoder("", ("Convolution", "predict_conv"), "")
    return rows


def _net_sd(p: str) -> list:
    rows = [("conv0.0", (f"{p}conv0",), "rgb2")]
    rows += [(f"{n}.0", (f"{p}{n}",), "") for n in ("conv1", "conv1_1", "conv2", "conv2_1", "conv3",
                                                     "conv3_1", "conv4", "conv4_1", "conv5", "conv5_1",
                                                     "conv6", "conv6_1")]
    rows += [(f"inter_conv{k}.0", (f"{p}interconv{k}",), "") for k in (5, 4, 3, 2)]
    rows += _decoder(p, ("Convolution", "predict_conv"), "")
    return rows


def _net_fusion() -> list:
    p = "fuse_"
    rows = [("conv0.0", (f"{p}conv0",), "rgb1")]
    rows += [(f"{n}.0", (f"{p}{n}",), "") for n in ("conv1", "conv1_1", "conv2", "conv2_1")]
    rows += [(f"deconv{k}.0", (f"{p}deconv{k}",), "") for k in (1, 0)]
    rows += [(f"inter_conv{k}.0", (f"{p}interconv{k}",), "") for k in (1, 0)]
    rows += [(f"predict_flow{k}", (f"{p}_Convolution{c}",), "") for k, c in ((2, 5), (1, 6), (0, 7))]
    rows += [("upsampled_flow2_to_1", (f"{p}upsample_flow2to1",), ""),
             ("upsampled_flow1_to_0", (f"{p}upsample_flow1to0",), "")]
    return rows


def _prefixed(prefix: str, rows: list) -> list:
    return [(prefix + mod, names, flip) for mod, names, flip in rows]


def caffe_layer_map(name: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Mapping rows for architecture ``name``: (our module path, Caffe layer names, flip).

    The module path gets ``.weight`` / ``.bias``. The first Caffe name is the
    one written by :func:`state_dict_to_caffe`; the others are accepted
    spellings. ``flip`` is "" or "rgbN": reverse the colour order of the first
    N groups of 3 input channels.
    """
    c, s1, s2 = _net_c(), _net_s("net2_"), _net_s("net3_")
    if name == "FlowNet2-C":
        return c
    if name == "FlowNet2-S":
        return _net_s("")
    if name == "FlowNet2-SD":
        return _net_sd("")
    if name in ("FlowNet2-SS", "FlowNet2-SSS"):
        stack = _prefixed("flownets_0.", _net_s("", first_of_stack=True)) + _prefixed("flownets_1.", s1)
        return stack + (_prefixed("flownets_2.", s2) if name == "FlowNet2-SSS" else [])
    stack = _prefixed("flownetc.", c) + _prefixed("flownets_1.", s1)
    if name == "FlowNet2-CS":
        return stack
    stack += _prefixed("flownets_2.", s2)
    if name == "FlowNet2-CSS":
        return stack
    if name == "FlowNet2":
        return stack + _prefixed("flownets_d.", _net_sd("netsd_")) + _prefixed("flownetfusion.",
                                                                               _net_fusion())
    raise ValueError(f"unknown FlowNet2 architecture {name!r}")


def _guess_caffe_architecture(names: set[str]) -> str:
    if "fuse_conv0" in names:
        return "FlowNet2"
    if "conv_redir" in names:
        if "net3_conv1" in names:
            return "FlowNet2-CSS"
        if "net2_conv1" in names:
            return "FlowNet2-CS"
        return "FlowNet2-C"
    if "conv0" in names and "interconv2" in names:
        return "FlowNet2-SD"
    if "conv1" in names and "conv6_1" in names:
        if "net3_conv1" in names:
            return "FlowNet2-SSS"
        if "net2_conv1" in names:
            return "FlowNet2-SS"
        return "FlowNet2-S"
    shown = ", ".join(sorted(names)[:6])
    raise ValueError(f"no FlowNet2 layer names (expected e.g. conv1, conv_redir, fuse_conv0; "
                     f"found {shown}{', …' if len(names) > 6 else ''})")


def _flip(weight: np.ndarray, flip: str) -> np.ndarray:
    """Reverse the colour order (BGR ↔ RGB) of the first N groups of 3 input channels."""
    if not flip:
        return weight
    groups = int(flip[3:])
    out = weight.copy()
    for g in range(groups):
        if weight.shape[1] >= 3 * (g + 1):
            out[:, 3 * g:3 * g + 3] = weight[:, 3 * g:3 * g + 3][:, ::-1]
    return out


def caffe_to_state_dict(weights: Mapping[str, list], *, bgr_to_rgb: bool = True,
                        name: str | None = None) -> tuple[str, OrderedDict, dict]:
    """Map Caffe blobs onto our keys: ``(architecture, state_dict, report)``.

    ``weights`` is layer name → [weight, bias] (e.g. :func:`read_caffe_weights`).
    The architecture comes from the layer names unless ``name`` is given.
    ``report`` has ``used`` and ``ignored`` Caffe layer names and
    ``dropped_biases`` ({layer: max |bias|} of Caffe biases our modules lack,
    FlowNetS upsamplers). ``bgr_to_rgb=False`` keeps Caffe's channel order
    (for comparing against Caffe semantics; such weights expect BGR input).
    Raises ``ValueError`` for missing layers or malformed blobs.
    """
    names = set(weights)
    arch = name or _guess_caffe_architecture(names)
    # Which of our parameters have a bias: ask the model (on the meta device, free).
    with torch.device("meta"):
        keys = set(build_model(arch, width=1.0).state_dict())
    state: OrderedDict[str, Tensor] = OrderedDict()
    used, missing, dropped = [], [], {}
    for module, candidates, flip in caffe_layer_map(arch):
        found = next((n for n in candidates if n in weights), None)
        if found is None:
            missing.append(candidates[0])
            continue
        used.append(found)
        blobs = list(weights[found])
        if not blobs:
            raise ValueError(f"Caffe layer {found!r} has no blobs")
        w = np.asarray(blobs[0], dtype=np.float32)
        if w.ndim != 4:
            raise ValueError(f"Caffe layer {found!r}: weights of shape {w.shape}, expected 4-D")
        state[f"{module}.weight"] = torch.from_numpy(np.ascontiguousarray(
            _flip(w, flip) if bgr_to_rgb else w))
        has_bias = f"{module}.bias" in keys
        if len(blobs) > 2:
            raise ValueError(f"Caffe layer {found!r} has {len(blobs)} blobs, expected 1 or 2")
        if has_bias:
            if len(blobs) < 2:
                raise ValueError(f"Caffe layer {found!r} has no bias blob")
            b = np.asarray(blobs[1], dtype=np.float32).reshape(-1)
            state[f"{module}.bias"] = torch.from_numpy(b.copy())
        elif len(blobs) == 2:
            dropped[found] = float(np.abs(np.asarray(blobs[1])).max(initial=0.0))
    if missing:
        raise ValueError(f"looks like {arch} but {len(missing)} of its layers are missing, e.g. "
                         + ", ".join(missing[:4]) + " (a truncated file, or another network?)")
    ignored = sorted(names - set(used))
    return arch, state, {"used": used, "ignored": ignored, "dropped_biases": dropped}


# ---------------------------------------------------------------- prototxt cross-check


_LAYER_RE = re.compile(r"\blayers?\s*\{")


def _prototxt_outputs(text: str) -> dict[str, int]:
    """Layer name → num_output of the (De)Convolution layers of a prototxt (a tolerant scan)."""
    out: dict[str, int] = {}
    starts = [m.end() for m in _LAYER_RE.finditer(text)] + [len(text)]
    for a, b in itertools.pairwise(starts):
        block = text[a:b]
        name = re.search(r'\bname\s*:\s*"([^"]+)"', block)
        ltype = re.search(r'\btype\s*:\s*"?(\w+)"?', block)
        num = re.search(r"\bnum_output\s*:\s*(\d+)", block)
        if name and ltype and num and ltype.group(1).lower() in ("convolution", "deconvolution"):
            out[name.group(1)] = int(num.group(1))
    return out


def _check_prototxt(path: str, weights: Mapping[str, list], used: list[str]) -> int:
    with open(path, encoding="utf-8", errors="replace") as fh:
        outputs = _prototxt_outputs(fh.read())
    if not outputs:
        raise ValueError(f"{path}: no Convolution/Deconvolution layers with num_output found; "
                         "is this a FlowNet2 deploy prototxt?")
    checked = 0
    for name in used:
        if name not in outputs:
            raise ValueError(f"{path}: the weights have layer {name!r}, the prototxt does not")
        w = np.asarray(weights[name][0])
        deconv = "deconv" in name or "upsample" in name
        got = w.shape[1] if deconv else w.shape[0]
        if got != outputs[name]:
            raise ValueError(f"{path}: layer {name!r} has num_output {outputs[name]} in the prototxt "
                             f"but {got} in the weights")
        checked += 1
    return checked


# ---------------------------------------------------------------- conversion


def release_name(path: str | os.PathLike) -> str:
    """The release's model name from a file name: ``FlowNet2-css-ft-sd_weights.caffemodel.h5``
    → ``FlowNet2-css-ft-sd`` (the stem before ``_weights`` / the extension)."""
    base = os.path.basename(os.fspath(path))
    for suffix in (".caffemodel.h5", ".caffemodel", ".h5"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.removesuffix("_weights")


def converted_filename(path_or_release: str | os.PathLike) -> str:
    """Default output name: ``<release>_converted.pth.tar`` (``FlowNet2-css_converted.pth.tar``),
    the file name the registry's Caffe entries expect (:func:`flownet2_core.weights.converted_file`)."""
    return converted_file(release_name(path_or_release))


def load_caffe(path: str | os.PathLike, *, prototxt: str | os.PathLike | None = None,
               caffe_conventions: bool = False, bgr_to_rgb: bool = True) -> tuple[nn.Module, dict]:
    """Read Caffe weights and build the matching model (eval mode): ``(model, report)``.

    The architecture comes from the layer names, the width from the blob
    shapes (verified against every key and shape). With ``prototxt`` each
    used layer's ``num_output`` is checked against the weights.
    ``caffe_conventions=True`` builds the model with :data:`CAFFE_CONVENTIONS`
    (bilinear align_corners=True, zero-fill warping) instead of the port's.
    Raises ``ValueError`` naming the file when it is unreadable or not FlowNet2.
    """
    path = os.fspath(path)
    weights = read_caffe_weights(path)
    try:
        arch, state, report = caffe_to_state_dict(weights, bgr_to_rgb=bgr_to_rgb)
        name, width, batch_norm = detect_architecture(state)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if name != arch:
        raise ValueError(f"{path}: layer names say {arch} but the shapes say {name}")
    if prototxt is not None:
        report["prototxt_layers_checked"] = _check_prototxt(os.fspath(prototxt), weights,
                                                            report["used"])
    flags = CAFFE_CONVENTIONS if caffe_conventions else {}
    model = build_model(arch, width=width, batch_norm=batch_norm, **flags)
    model.load_state_dict(state, strict=True)
    model.eval()
    for layer, value in report["dropped_biases"].items():
        if value != 0.0:
            warnings.warn(f"{path}: dropped a non-zero bias of Caffe layer {layer!r} "
                          f"(max |b| = {value:.3g}); our FlowNetS upsamplers have none, as in "
                          "the PyTorch port", stacklevel=2)
    report.update({"model": arch, "width": width, "format": weights.format,
                   "display_name": display_name(arch, width)})
    return model, report


def convert_caffe(path: str | os.PathLike, out: str | os.PathLike, *,
                  prototxt: str | os.PathLike | None = None,
                  caffe_conventions: bool = False) -> dict:
    """Convert a Caffe ``.caffemodel`` / ``.caffemodel.h5`` into our checkpoint at ``out``.

    Returns a summary: ``model``, ``width``, ``display_name``, ``release``
    (name from the file name, e.g. ``FlowNet2-css-ft-sd``), ``format``
    (protobuf/hdf5), ``source``, ``source_sha256``, ``out``, ``parameters``,
    ``conventions``, ``layers_used``, ``layers_ignored``, ``dropped_biases``
    and, with ``prototxt``, ``prototxt_layers_checked``. The checkpoint's
    metadata records ``converted_from`` (file name, SHA-256, format, release
    name, BGR→RGB) and ``conventions_preset`` ("caffe" or "pytorch-port").
    """
    path = os.fspath(path)
    out = os.fspath(out)
    model, report = load_caffe(path, prototxt=prototxt, caffe_conventions=caffe_conventions)
    sha = file_sha256(path)
    release = release_name(path)
    source = {"file": os.path.basename(path), "sha256": sha, "format": report["format"],
              "release": release, "bgr_to_rgb": True,
              "converter": "flownet2_core.models.caffe"}
    if prototxt is not None:
        source["prototxt"] = os.path.basename(os.fspath(prototxt))
    preset = "caffe" if caffe_conventions else "pytorch-port"
    save_checkpoint(out, model, epoch=0, best_epe=math.nan, converted_from=source,
                    conventions_preset=preset)
    summary = {
        "model": report["model"], "width": report["width"], "display_name": report["display_name"],
        "release": release, "format": report["format"], "source": path, "source_sha256": sha,
        "out": out, "parameters": sum(p.numel() for p in model.parameters()),
        "conventions": model.conventions(), "conventions_preset": preset,
        "layers_used": len(report["used"]), "layers_ignored": report["ignored"],
        "dropped_biases": report["dropped_biases"],
    }
    if "prototxt_layers_checked" in report:
        summary["prototxt_layers_checked"] = report["prototxt_layers_checked"]
    return summary


# ---------------------------------------------------------------- the inverse (writing Caffe files)


def state_dict_to_caffe(model_or_state: nn.Module | Mapping[str, Tensor], name: str | None = None,
                        *, rgb_to_bgr: bool = True) -> list[CaffeLayer]:
    """Our weights as Caffe layers (the inverse mapping), in the mapping's order.

    FlowNetS upsamplers get a zero bias blob as in the Caffe files. Batch-norm
    models have no Caffe counterpart and are refused.
    """
    if isinstance(model_or_state, nn.Module):
        name = name or getattr(model_or_state, "arch_name", None)
        state = model_or_state.state_dict()
    else:
        state = model_or_state
    if name is None:
        name = detect_architecture(state)[0]
    if any(k.endswith("running_mean") for k in state):
        raise ValueError("batch-norm models have no Caffe counterpart")
    layers = []
    for module, candidates, flip in caffe_layer_map(name):
        w = state[f"{module}.weight"].detach().cpu().numpy().astype(np.float32)
        w = _flip(w, flip) if rgb_to_bgr else w
        bias = state.get(f"{module}.bias")
        b = (bias.detach().cpu().numpy().astype(np.float32) if bias is not None
             else np.zeros(w.shape[1], np.float32))  # FlowNetS upsampler: Caffe has a zero bias
        ltype = "Deconvolution" if ("deconv" in module or "upsampled" in module) else "Convolution"
        layers.append(CaffeLayer(candidates[0], ltype, [w, b]))
    return layers


def write_caffemodel(path: str | os.PathLike, model: nn.Module, *, fmt: str = "protobuf",
                     v1: bool = False, extra_layers: bool = True) -> None:
    """Write ``model`` as a Caffe weights file through the inverse mapping (tests, round trips).

    ``fmt``: "protobuf" (``.caffemodel``; ``v1=True`` writes legacy ``layers``
    with num/channels/height/width shapes) or "hdf5" (``.caffemodel.h5``,
    needs h5py). ``extra_layers`` adds blob-carrying layers a real file also
    has and that conversion ignores (the input augmentation's mean,
    ``scale_conv1``), plus blob-less ones.
    """
    layers = state_dict_to_caffe(model)
    if extra_layers:
        layers = ([CaffeLayer("img0s_aug", "DataAugmentation", [np.full((1, 3, 1, 1), 0.4, np.float32)]),
                   CaffeLayer("Eltwise1", "Eltwise", [])]
                  + layers
                  + [CaffeLayer("scale_conv1", "Convolution",
                                [np.eye(2, dtype=np.float32).reshape(2, 2, 1, 1),
                                 np.zeros(2, np.float32)])])
    path = os.fspath(path)
    if fmt == "protobuf":
        with open(path, "wb") as fh:
            fh.write(encode_net(layers, v1=v1, name=getattr(model, "arch_name", "")))
    elif fmt == "hdf5":
        import h5py

        with h5py.File(path, "w") as f:
            data = f.create_group("data")
            for layer in layers:
                g = data.create_group(layer.name)
                for i, blob in enumerate(layer.blobs):
                    g.create_dataset(str(i), data=blob)
    else:
        raise ValueError(f"fmt must be 'protobuf' or 'hdf5', got {fmt!r}")
