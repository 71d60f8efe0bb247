"""Reading, recognising and writing FlowNet2 checkpoints.

The released PyTorch checkpoints (``FlowNet2_checkpoint.pth.tar``,
``FlowNet2-C_checkpoint.pth.tar``, …) are torch pickles in the legacy,
pre-1.6 (non-zip) serialization — not tar archives despite the name — holding
``{"epoch": int, "state_dict": OrderedDict, "best_EPE": float}`` and, when
written by training, ``"arch"``. Their state dicts load with ``strict=True``
and no renaming into the models of :mod:`.stacks`.

Everything is read with ``torch.load(weights_only=True)``: tensors, plain
containers and numbers only, plus an explicit allowlist of numpy scalar types
(in case a ``best_EPE`` was stored as a numpy float). A file needing anything
else is refused with a ``ValueError``; there is no unsafe fallback.

Files written by :func:`save_checkpoint` use the same layout plus a
``"flownet2"`` entry: ``{"format": 1, "model", "width", "batch_norm",
"conventions", "torch", …user metadata}``. Weights that ship inside the package
(:mod:`flownet2_core.weights`, origin "trained-here") are stored in float16 (a
state dict, bare or in that layout, written with ``torch.save``); every state
dict is cast to float32 before loading.

Which file is which (released names, Caffe releases, weights trained here) is
data in :mod:`flownet2_core.weights`; :func:`load_weights` builds a model from
an entry of it or from a path.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import pickle
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..io import atomic_output, file_sha256
from ..weights import PORT_CONVENTIONS, Weights, display_name, identify, list_weights
from .architectures import MODEL_CLASSES, construct

__all__ = [
    "CheckpointMismatch", "detect_architecture", "inspect_checkpoint", "load_checkpoint", "load_weights",
    "model_from_checkpoint", "read_checkpoint", "save_checkpoint",
]

_PREFIXES = ("flownetc", "flownets_0", "flownets_1", "flownets_2", "flownets_d", "flownetfusion")
_STACKS = {
    ("flownetc", "flownets_1"): "FlowNet2-CS",
    ("flownetc", "flownets_1", "flownets_2"): "FlowNet2-CSS",
    ("flownets_0", "flownets_1"): "FlowNet2-SS",
    ("flownets_0", "flownets_1", "flownets_2"): "FlowNet2-SSS",
    ("flownetc", "flownets_1", "flownets_2", "flownets_d", "flownetfusion"): "FlowNet2",
}
_BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
_FORMAT = 1

# What a released conversion assumes when a file carries no metadata of ours.
_RELEASED_CONVENTIONS = {
    "input": "RGB 0..255; minus per-sample per-channel mean over both frames; / 255",
    "div_flow": 20.0,
    **PORT_CONVENTIONS,
}
_CONVENTION_KEYS = tuple(PORT_CONVENTIONS)


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model asked for (a ``ValueError``)."""


def _safe_globals() -> list:
    """numpy scalar types a checkpoint may use for numbers (e.g. ``best_EPE``)."""
    allowed: list = [np.dtype]
    for attr in ("_core", "core"):
        multiarray = getattr(getattr(np, attr, None), "multiarray", None)
        if multiarray is not None and hasattr(multiarray, "scalar"):
            allowed.append(multiarray.scalar)
            break
    for dt in (np.float64, np.float32, np.int64, np.int32):
        allowed.append(type(np.dtype(dt)))
    return allowed


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()))


#: Modules whose globals a checkpoint legitimately names (tensor rebuilding, OrderedDict).
_ALLOWED_MODULES = ("torch", "collections", "numpy", "_codecs")


def foreign_globals(path: str | os.PathLike) -> list[str]:
    """``module.name`` of every global a pickle (or a torch zip checkpoint's ``data.pkl``) would
    import outside tensors and containers, read without unpickling (``pickletools``); ``[]``
    when there is none or the bytes are not a pickle."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name) if name else b""
        else:
            with open(path, "rb") as fh:
                data = fh.read(64 << 20)
        found, strings = [], []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name == "GLOBAL":
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - not a pickle (or a damaged one): nothing to report
        return []
    return [g for g in found if g.split(".")[0] not in _ALLOWED_MODULES]


def load_weights_only(path: str | os.PathLike, map_location: Any = "cpu", *, who: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` (nothing in the file runs) with one-line errors.

    ``ValueError`` (prefixed ``"{who}: "`` when given): *refusing to load* when the file holds
    Python code or objects beyond tensors, containers and numbers (named; never unpickled), or
    *not a readable torch checkpoint* for damaged bytes. torch's own warnings about the file
    stay off the terminal: the verdict is ours.
    """
    prefix = f"{who}: " if who else ""
    try:
        with torch.serialization.safe_globals(_safe_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Detected pickle protocol 4"
            return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except pickle.UnpicklingError as exc:
        text = str(exc)
        # The weights-only unpickler names a blocked class or function as a "GLOBAL"; it
        # stops earlier on opcodes it does not know (protocol 4 framing), so the file's own
        # list of globals decides too. Anything else it rejects is damage, not danger.
        blocked = [ln.strip() for ln in text.splitlines() if "GLOBAL" in ln] or foreign_globals(path)[:1]
        if blocked:
            raise ValueError(f"{prefix}refusing to load {os.fspath(path)}: the file holds Python code or "
                             f"objects beyond tensors, containers and numbers ({blocked[0]}); weights never "
                             "need them and unsafe unpickling is not offered") from None
        reason = next((ln.strip() for ln in text.splitlines()
                       if ln.strip() and "Weights only load failed" not in ln
                       and "WeightsUnpickler error" not in ln and "Please file" not in ln
                       and "Check the documentation" not in ln), type(exc).__name__)
        raise ValueError(f"{prefix}{os.fspath(path)}: not a readable torch checkpoint (corrupted or "
                         f"truncated?): {reason}") from None
    except Exception as exc:  # noqa: BLE001 - torch.load reports damage with many exception types
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{prefix}{os.fspath(path)}: not a readable torch checkpoint (corrupted or "
                         f"truncated?): {type(exc).__name__}: {first}") from None


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint file safely; return its dict (``state_dict`` guaranteed).

    Accepts the released layout, files from :func:`save_checkpoint`, and a bare
    state dict (wrapped as ``{"state_dict": ...}``). Raises ``FileNotFoundError``
    for a missing file and ``ValueError`` naming the file for anything
    unreadable: corrupted or truncated bytes, objects outside the safe
    allowlist, a non-dict, or a dict without a state dict.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint is a directory, not a file: {path}")
    obj = load_weights_only(path, map_location)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a checkpoint dict with a 'state_dict' entry, "
                         f"got {type(obj).__name__}")
    if "state_dict" not in obj:
        if _is_state_dict(obj):
            return {"state_dict": obj}
        keys = ", ".join(repr(k) for k in list(obj)[:5]) or "none"
        raise ValueError(f"{path}: checkpoint dict has no 'state_dict' entry (keys: {keys})")
    if not _is_state_dict(obj["state_dict"]):
        raise ValueError(f"{path}: 'state_dict' is not a non-empty mapping of names to tensors")
    return obj


def _guess_architecture(state_dict: Mapping[str, Tensor]) -> tuple[str, float, bool]:
    """Name, width and batch-norm flag from key names and one shape, without verification."""
    tops = {k.split(".", 1)[0] for k in state_dict}
    known = tuple(p for p in _PREFIXES if p in tops)
    if known:
        if known not in _STACKS:
            raise ValueError(f"unrecognised combination of FlowNet2 sub-networks: {', '.join(known)}")
        name = _STACKS[known]
        prefix = known[0] + "."   # the first net: flownetc or flownets_0
    elif "conv_redir.0.weight" in state_dict:
        name, prefix = "FlowNet2-C", ""
    elif "conv0.0.weight" in state_dict and "inter_conv2.0.weight" in state_dict:
        name, prefix = "FlowNet2-SD", ""
    elif "conv1.0.weight" in state_dict and "conv3_1.0.weight" in state_dict:
        name, prefix = "FlowNet2-S", ""
    else:
        first = ", ".join(list(state_dict)[:3])
        raise ValueError(f"not a FlowNet2 state dict (no FlowNet layer names; first keys: {first})")
    ref = f"{prefix}conv6_1.0.weight"
    if ref not in state_dict or state_dict[ref].dim() != 4:
        raise ValueError(f"looks like {name} but has no usable {ref!r}")
    # The widest layer (1024 channels at width 1) pins the width most finely.
    width = state_dict[ref].shape[0] / 1024
    batch_norm = any(k.endswith(".1.running_mean") for k in state_dict)
    return name, width, batch_norm


@functools.lru_cache(maxsize=32)
def _expected_shapes(name: str, width: float, batch_norm: bool) -> dict[str, tuple[int, ...]]:
    """Key → shape of ``name`` at ``width``, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = construct(name, width=width, batch_norm=batch_norm)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _diff(expected: Mapping[str, tuple], got: Mapping[str, Tensor | tuple]) -> list[str]:
    """Human-readable differences between expected and actual key/shape sets ([] if equal)."""
    def shape(v):
        return tuple(v.shape) if isinstance(v, Tensor) else tuple(v)

    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and shape(got[k]) != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key{'s' * (len(missing) != 1)}, e.g. "
                     + ", ".join(missing[:3]))
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key{'s' * (len(unexpected) != 1)}, e.g. "
                     + ", ".join(unexpected[:3]))
    if wrong:
        parts.append(f"{len(wrong)} shape mismatch{'es' * (len(wrong) != 1)}, e.g. "
                     + ", ".join(f"{k}: file {shape(got[k])} vs model {tuple(expected[k])}"
                                 for k in wrong[:3]))
    return parts


def detect_architecture(state_dict: Mapping[str, Tensor]) -> tuple[str, float, bool]:
    """Which model a state dict belongs to: ``(name, width, batch_norm)``.

    ``name`` is a released architecture name (``"FlowNet2"``, ``"FlowNet2-C"``,
    ``"FlowNet2-CS"``, ``"FlowNet2-CSS"``, ``"FlowNet2-S"``, ``"FlowNet2-SD"``, and the
    Caffe-only ``"FlowNet2-SS"``, ``"FlowNet2-SSS"``; FlowNet2-CSS-ft-sd files report
    ``"FlowNet2-CSS"``, the same network).
    ``width`` is the channel multiplier (1.0 for released files, 0.375 for the
    lowercase variants). Recognised from key prefixes and the width of
    conv6_1, then verified against every key and shape of that model;
    ``ValueError`` if the state dict fits no FlowNet2 model exactly.
    """
    if not _is_state_dict(state_dict):
        raise ValueError("expected a non-empty mapping of parameter names to tensors")
    name, width, batch_norm = _guess_architecture(state_dict)
    problems: list[str] = []
    for candidate in _candidate_widths(width):
        problems = _diff(_expected_shapes(name, candidate, batch_norm), state_dict)
        if not problems:
            return name, candidate, batch_norm
    raise ValueError(f"looks like {display_name(name, width)} but does not fit it: "
                     + "; ".join(problems))


def _candidate_widths(estimate: float) -> list[float]:
    """Widths to try, simplest first: the conv6_1 estimate (channels / 1024) is exact
    for widths like 3/8, but a width like 0.3 rounds layers individually, so
    prefer a short decimal that reproduces every shape."""
    out: list[float] = []
    for cand in (round(estimate, 2), round(estimate, 3), round(estimate * 64) / 64, estimate):
        if cand > 0 and cand not in out:
            out.append(cand)
    return out


def _check_fits(model: nn.Module, state_dict: Mapping[str, Tensor], path: str) -> None:
    """``CheckpointMismatch`` with one clear message unless ``state_dict`` fits ``model`` exactly."""
    want = getattr(model, "arch_name", "") or type(model).__name__
    model_width = float(getattr(model, "width", 1.0))
    try:
        name, width, _ = _guess_architecture(state_dict)
    except ValueError:
        name = width = None
    if name is not None and getattr(model, "arch_name", None) and name != model.arch_name:
        raise CheckpointMismatch(f"{path}: this file is {display_name(name, width)}; "
                                 f"you asked for {display_name(want, model_width)}")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = _diff(expected, state_dict)
    if not problems:
        return
    if name is not None:
        ref = next((k for k in expected if k.endswith("conv6_1.0.weight")), "")
        if ref in expected and ref in state_dict and expected[ref][0] != state_dict[ref].shape[0]:
            raise CheckpointMismatch(f"{path}: this file is {name} at width {width:.4g}; "
                                     f"the model has width {model_width:g}")
    raise CheckpointMismatch(f"{path}: the weights do not fit {display_name(want, model_width)}: "
                             + "; ".join(problems))


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    map_location: Any = "cpu") -> nn.Module:
    """Load weights from ``path`` into ``model`` (strict), building the model if ``None``.

    With ``model=None`` the architecture, width and batch-norm setting are
    detected from the state dict (:func:`detect_architecture`), and the
    convention flags come from the file's metadata when it has ours (released
    files get the defaults, the PyTorch port's conventions). Returns the model
    (in the mode it was in; a new model is in train mode like any fresh module:
    call ``.eval()`` for inference). Use :func:`read_checkpoint` for ``epoch``,
    ``best_EPE`` and metadata.

    Raises ``ValueError`` naming the file when it is unreadable or does not fit,
    e.g. "…: this file is FlowNet2-CSS; you asked for FlowNet2" or
    "…: the weights do not fit FlowNet2-C: missing 12 keys, e.g. …".
    """
    path = os.fspath(path)
    return model_from_checkpoint(read_checkpoint(path, map_location), path, model)


def model_from_checkpoint(ckpt: Mapping[str, Any], path: str, model: nn.Module | None = None
                          ) -> nn.Module:
    """:func:`load_checkpoint` for a dict :func:`read_checkpoint` already returned.

    For callers that also want the file's metadata (``ckpt["flownet2"]``)
    without reading a large file twice; ``path`` only names it in errors.
    """
    state_dict = _as_float32(ckpt["state_dict"])
    if model is None:
        try:
            name, width, batch_norm = detect_architecture(state_dict)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        model = construct(name, width=width, batch_norm=batch_norm,
                          **{**PORT_CONVENTIONS, **_recorded_conventions(ckpt)})
    else:
        _check_fits(model, state_dict, path)
    model.load_state_dict(state_dict, strict=True)
    return model


def _recorded_conventions(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The convention flags a file of ours records (``{}`` for released files)."""
    meta = ckpt.get("flownet2") if isinstance(ckpt.get("flownet2"), dict) else {}
    conv = meta.get("conventions") if isinstance(meta.get("conventions"), dict) else {}
    return {k: conv[k] for k in _CONVENTION_KEYS if k in conv}


def _as_float32(state_dict: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """Floating-point tensors as float32 (weights trained here ship in fp16); others unchanged."""
    if all(v.dtype == torch.float32 or not v.is_floating_point() for v in state_dict.values()):
        return state_dict
    return collections.OrderedDict((k, v.to(torch.float32) if v.is_floating_point() else v)
                                   for k, v in state_dict.items())


def load_weights(weights: Weights | str | os.PathLike, *, arch: str | None = None,
                 width: float | None = None, batch_norm: bool | None = None,
                 upsample_align_corners: bool | None = None, warp_padding: str | None = None,
                 path: str | os.PathLike | None = None, who: str = "load_weights()") -> nn.Module:
    """A model holding ``weights``: an entry of :mod:`flownet2_core.weights` or a checkpoint path.

    What the builders (``flownet2_css(weights=…)``) and the FlowNet2 flow methods do.

    * An entry: the file is ``path`` if given, else the entry's default file
      (:meth:`~flownet2_core.weights.Weights.locate`). It must hold the entry's
      architecture and, except for the port's entries, its width (the port's
      methods read any width of their architecture, e.g. a 3/8-width checkpoint
      saved here); a converted Caffe file recording another release is refused.
    * A path: any FlowNet2 checkpoint.

    ``arch``, ``width`` and ``batch_norm``, when given, must match the file.
    Convention flags: those given, else the file's record, else the entry's,
    else the port's. Returns the model in train mode, like any fresh module.
    Raises ``ValueError`` (one line, starting with the file or ``who``) when an
    entry's file is missing, or the file is unreadable or another network;
    ``FileNotFoundError`` for a path that does not exist.
    """
    entry = weights if isinstance(weights, Weights) else None
    if entry is not None:
        if arch is not None and entry.arch != arch:
            raise ValueError(f"{who}: weights {entry.name} are {entry.display_name}, not {arch}")
        file = entry.locate(path, who=who)
        arch = entry.arch
        if width is None and entry.origin != "nvidia-port":
            width = entry.width
    else:
        file = os.fspath(weights)
    ckpt = read_checkpoint(file)
    state_dict = _as_float32(ckpt["state_dict"])
    try:
        name, found_width, found_bn = detect_architecture(state_dict)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None
    wrong_width = width is not None and abs(found_width - width) > 1e-9
    if (arch is not None and name != arch) or wrong_width:
        shown = display_name(arch or name, width if width is not None else 1.0)
        want = f"{shown} weights" + ("" if width is None or "(width" in shown else f" (width {width:g})")
        raise CheckpointMismatch(f"{file}: this file is {display_name(name, found_width)}; {who} needs {want}")
    if batch_norm is not None and batch_norm != found_bn:
        raise CheckpointMismatch(f"{file}: this file is {display_name(name, found_width)} "
                                 f"{'with' if found_bn else 'without'} batch norm; {who} asked for "
                                 f"batch_norm={batch_norm}")
    if entry is not None and entry.release:
        # Same network, other weights (FlowNet2-css vs -css-ft-sd, FlowNet2 vs -KITTI):
        # a converted file records its release, so a mix-up is caught here.
        meta = ckpt.get("flownet2") if isinstance(ckpt.get("flownet2"), dict) else {}
        source = meta.get("converted_from") if isinstance(meta.get("converted_from"), dict) else {}
        recorded = source.get("release")
        if recorded and recorded != entry.release:
            raise CheckpointMismatch(f"{file}: this file was converted from {recorded}; {who} needs "
                                     f"{entry.release}")
    given = {k: v for k, v in (("upsample_align_corners", upsample_align_corners),
                               ("warp_padding", warp_padding)) if v is not None}
    settings = {**PORT_CONVENTIONS, **(entry.conventions if entry else {}), **_recorded_conventions(ckpt),
                **given}
    model = construct(name, width=found_width, batch_norm=found_bn, **settings)
    model.load_state_dict(state_dict, strict=True)
    return model


def _check_metadata(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_metadata(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"metadata {where}: keys must be strings, got {k!r}")
            _check_metadata(v, f"{where}.{k}")
        return
    raise ValueError(f"metadata {where}: {type(value).__name__} values cannot be stored safely; "
                     "use str, int, float, bool, None, lists and dicts")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, epoch: int = 0,
                    best_epe: float = float("nan"), **metadata: Any) -> None:
    """Write ``model`` in the released layout plus our metadata, atomically.

    Layout: ``{"epoch", "state_dict" (CPU tensors), "best_EPE" (NaN = not
    measured), "arch" (class name, as the port's training wrote it),
    "flownet2": {"format", "model", "width", "batch_norm", "conventions",
    "torch", **metadata}}``. Metadata values must be plain (str, numbers, bool,
    None, lists, dicts) so that ``weights_only`` loading reads them back.
    Written with torch's current (zip) serialization to a temporary file in the
    same directory, then renamed over ``path``.
    """
    path = os.fspath(path)
    name = getattr(model, "arch_name", None)
    if name not in MODEL_CLASSES:
        raise ValueError(f"save_checkpoint: expected a FlowNet2 model from flownet2_core.models, "
                         f"got {type(model).__name__}")
    _check_metadata(metadata, "")
    info = {
        "format": _FORMAT,
        "model": name,
        "width": float(model.width),
        "batch_norm": bool(model.batch_norm),
        "conventions": model.conventions(),
        "torch": torch.__version__.split("+")[0],
    }
    clash = sorted(set(info) & set(metadata))
    if clash:
        raise ValueError(f"save_checkpoint: metadata keys {clash} are reserved")
    info.update(metadata)
    state = collections.OrderedDict((k, v.detach().to("cpu")) for k, v in model.state_dict().items())
    obj = {"epoch": int(epoch), "state_dict": state, "best_EPE": float(best_epe),
           "arch": type(model).__name__, "flownet2": info}
    with atomic_output(path) as tmp, open(tmp, "xb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def inspect_checkpoint(path: str | os.PathLike) -> dict:
    """What a checkpoint file holds, for ``flownet2 weights inspect``.

    Returns a dict with ``path``, ``sha256``, ``size_bytes``, ``model``
    (architecture name), ``display_name`` (lowercase for width 3/8),
    ``same_architecture_as`` (registry entries holding this network, any width),
    ``width``, ``batch_norm``, ``parameters`` (learnable, buffers excluded),
    ``tensors``, ``dtypes`` (of the stored floating-point tensors), ``epoch``,
    ``best_EPE``, ``arch``, ``conventions`` and ``conventions_source`` ("file
    metadata", else the registry entry's or the port's, with an explanation),
    ``metadata`` (our extra entries) and ``entry``: the registry entry
    (:meth:`flownet2_core.weights.Weights.to_dict`) the file is, found by
    :func:`flownet2_core.weights.identify` (its default file name, or the Caffe
    release a converted file records, and exactly its network), else ``None``.
    Raises ``ValueError`` naming the file when it is unreadable or not FlowNet2.
    """
    path = os.fspath(path)
    ckpt = read_checkpoint(path)
    state_dict = ckpt["state_dict"]
    try:
        name, width, batch_norm = detect_architecture(state_dict)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    params = sum(v.numel() for k, v in state_dict.items() if not k.endswith(_BUFFER_SUFFIXES))
    meta = ckpt.get("flownet2") if isinstance(ckpt.get("flownet2"), dict) else None
    source = (meta or {}).get("converted_from")
    release = source.get("release") if isinstance(source, dict) else None
    entry = identify(path, name, width, batch_norm=batch_norm, release=release)
    if meta and isinstance(meta.get("conventions"), dict):
        conventions, how = dict(meta["conventions"]), "file metadata"
    elif entry is not None:
        conventions = {**_RELEASED_CONVENTIONS, **entry.conventions}
        how = f"assumed: no metadata, so those of the registry entry {entry.name}"
    else:
        conventions = dict(_RELEASED_CONVENTIONS)
        how = ("assumed: no metadata, so the released PyTorch port's conventions (the original "
               "Caffe nets used align_corners=True upsampling and zero-fill warping)")
    best = ckpt.get("best_EPE")
    if isinstance(best, (np.generic, Tensor)):
        best = float(best)
    extra = {k: v for k, v in (meta or {}).items()
             if k not in ("format", "model", "width", "batch_norm", "conventions")}
    return {
        "path": path,
        "sha256": file_sha256(path),
        "size_bytes": os.path.getsize(path),
        "model": name,
        "display_name": display_name(name, width),
        "same_architecture_as": [w.name for w in list_weights(arch=name)],
        "width": width,
        "batch_norm": batch_norm,
        "parameters": params,
        "tensors": len(state_dict),
        "dtypes": sorted({str(v.dtype).removeprefix("torch.") for v in state_dict.values()
                          if v.is_floating_point()}),
        "epoch": ckpt.get("epoch"),
        "best_EPE": None if isinstance(best, float) and math.isnan(best) else best,
        "arch": ckpt.get("arch"),
        "conventions": conventions,
        "conventions_source": how,
        "metadata": extra,
        "entry": entry.to_dict() if entry is not None else None,
    }
