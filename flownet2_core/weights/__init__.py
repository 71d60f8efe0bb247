"""Every FlowNet2 weights file this toolkit knows, described as data (no torch import).

In the spirit of torchvision's ``Raft_Large_Weights`` and mmflow's ``metafile.yml``, but
path-based: nothing is ever downloaded. Each :class:`Weights` entry says which file
(its default name), which network (architecture and width), where it comes from, the
convention flags it runs with, the flow method built on it, and published metrics with
their source. The builders (``flownet2_css(weights=…)``), the FlowNet2 flow methods
(:mod:`flownet2_core.methods.flownet2`, one per entry with a ``method``) and
``flownet2 weights inspect`` are look-ups in this one table.

Origins (:data:`ORIGINS`):

* ``"nvidia-port"``: NVIDIA/flownet2-pytorch's conversions of the Caffe release,
  ``<Name>_checkpoint.pth.tar`` (the files everyone uses).
* ``"caffe-release"``: the original lmb-freiburg/flownet2 ``<Release>_weights.caffemodel[.h5]``,
  converted here with ``flownet2 weights convert`` into ``<Release>_converted.pth.tar``
  (:func:`converted_file`). Includes models the port never converted (the 3/8-width
  "lowercase" ones, FlowNet2-SS, FlowNet2-KITTI / -Sintel).
* ``"trained-here"``: trained in this repository and shipped inside the package as
  ``flownet2_core/weights/<file>`` (an fp16 state dict written with ``torch.save``,
  read with ``torch.load(weights_only=True)`` and cast to float32). Found through
  the package's own folder (:func:`package_dir`): no ``--weights``, no environment variable.

Files of the first two origins are read from ``$FLOWNET2_WEIGHTS/<file>`` or from a
path given explicitly (:meth:`Weights.locate`). A missing file is an error with one line
saying what to do; a randomly initialised network is never used in its place.

Metrics: ``{name: {"value": float, "source": str}}``, names as the benchmark report's
columns (Sintel and KITTI figures are on their training sets). Only figures with a
source are recorded (SPEC §6); an empty dict means none was transcribed.

Adding an entry: append a :class:`Weights` to ``_ENTRIES`` below (``tests/test_weights.py``
checks every entry: known architecture, positive width, origin, conventions, unique
name / file / method, metric sources). With a ``method`` it becomes a flow method at
once. For weights trained here, also put the file at ``flownet2_core/weights/<file>``
(``*.pth`` files there are package data, see ``pyproject.toml``) and fill ``recipe``,
``iterations``, ``training_data``, ``wall_time_s`` and ``metrics``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "ARCHITECTURES", "CAFFE_CONVENTIONS", "LOWERCASE_WIDTH", "ORIGINS", "PORT_CONVENTIONS", "REGISTRY",
    "WEIGHTS_ENV", "Weights", "converted_file", "display_name", "get_weights", "identify",
    "list_weights", "locate_file", "package_dir", "weights_for_method",
]

#: Environment variable naming the folder that holds external weights files under their default names.
WEIGHTS_ENV = "FLOWNET2_WEIGHTS"

#: Where a weights file comes from.
ORIGINS = ("nvidia-port", "caffe-release", "trained-here")

#: Released architecture names (the keys of ``flownet2_core.models.BUILDERS``).
#: FlowNet2-SS / -SSS exist only in the Caffe release.
ARCHITECTURES = ("FlowNet2", "FlowNet2-C", "FlowNet2-CS", "FlowNet2-CSS", "FlowNet2-S", "FlowNet2-SD",
                 "FlowNet2-SS", "FlowNet2-SSS")

#: Width of the paper's "lowercase" variants (FlowNet2-s, -c, -cs, -css, …; paper §4.2).
LOWERCASE_WIDTH = 3 / 8

#: Convention flags of the PyTorch port (the models' defaults, see :mod:`flownet2_core.models.stacks`).
PORT_CONVENTIONS: Mapping[str, Any] = MappingProxyType(
    {"upsample_align_corners": False, "warp_padding": "border"})
#: Convention flags of the original Caffe networks: bilinear align_corners=True, zero-fill warping.
CAFFE_CONVENTIONS: Mapping[str, Any] = MappingProxyType(
    {"upsample_align_corners": True, "warp_padding": "zeros"})

_PORT_SOURCE = ("NVIDIA/flownet2-pytorch's conversion of the lmb-freiburg/flownet2 Caffe release "
                "(RGB input; the BGR→RGB flip was done at conversion)")
_CAFFE_SOURCE = ("lmb-freiburg/flownet2 Caffe release (models/download-models.sh), converted here with "
                 "`flownet2 weights convert` (BGR→RGB flip of the first layers)")
_CAFFE_LICENCE = ("lmb-freiburg/flownet2: research purposes only, without warranty; commercial use "
                  "requires the authors' consent")
_PTLFLOW = "converted weights, ptlflow"


def display_name(name: str, width: float) -> str:
    """The paper's spelling: lowercase letters for width 3/8 (``FlowNet2-css``), else ``name (width w)``."""
    if width == 1.0:
        return name
    if abs(width - LOWERCASE_WIDTH) < 1e-9 and "-" in name:
        head, letters = name.split("-", 1)
        return f"{head}-{letters.lower()}"
    return f"{name} (width {width:g})"


def converted_file(release: str) -> str:
    """Default name of a converted Caffe release: ``<release>_converted.pth.tar``.

    Distinct from the port's ``<Name>_checkpoint.pth.tar`` even on case-insensitive file
    systems, where ``FlowNet2-css`` and ``FlowNet2-CSS`` collide (two Caffe releases
    differing only in case, FlowNet2-ss and FlowNet2-SS, do collide there: keep them in
    separate folders).
    """
    return f"{release}_converted.pth.tar"


def package_dir() -> Path:
    """The folder of this package, where weights trained here ship (``flownet2_core/weights``).

    Through :mod:`importlib.resources`, so it is right wherever the package is installed
    (the package has a compiled extension, so it is never imported from a zip archive).
    """
    return Path(os.fspath(importlib.resources.files(__name__)))


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def locate_file(who: str, weights: str | os.PathLike | None,
                find: Callable[[], tuple[str | None, str]]) -> str:
    """The weights file to read: ``weights`` if given (it must exist), else the default that
    ``find()`` gives as ``(path, "")`` or ``(None, why not)``. Raises ``ValueError`` with one
    line starting with ``who``; nothing is downloaded."""
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(f"{who}: weights file not found: {path}")
        return path
    path, why = find()
    if path is None:
        raise ValueError(f"{who} needs pretrained weights: {why}. Weights are not downloaded, and "
                         "a randomly initialised network is never used in their place.")
    return path


@dataclasses.dataclass(frozen=True)
class Weights:
    """One weights file, as data. Entries are immutable; use :func:`dataclasses.replace` for variants.

    Attributes:
        name: unique key (``"FlowNet2-CSS-ft-sd"``, ``"caffe/FlowNet2-css"``, ``"FlowNet2-sss-synth"``).
        file: default file name: under ``$FLOWNET2_WEIGHTS`` for external origins, inside the
            package (:func:`package_dir`) for ``"trained-here"``.
        arch: architecture (a member of :data:`ARCHITECTURES`).
        width: channel multiplier of the network the file holds (1, or 3/8 for lowercase models).
        origin: one of :data:`ORIGINS`.
        method: name of the flow method built on these weights, or ``None``.
        summary: one line saying what the weights are (the method's description).
        conventions: ``upsample_align_corners`` and ``warp_padding`` the model runs with when
            neither the caller nor the file says otherwise (files written by this toolkit
            record their own, which win).
        release: the Caffe release name (``"FlowNet2-css"``) for ``"caffe-release"``, else ``""``.
        source: where the file comes from, in words.
        licence: its licence terms.
        training_data: datasets and order, in words.
        recipe: training settings (schedule, loss, batch, augmentation, …) as a plain dict.
        iterations: training iterations, when known.
        wall_time_s: training wall time in seconds, when known.
        metrics: ``{name: {"value": float, "source": str}}``; empty when none was transcribed.
        notes: anything else a user should know.
        min_size: the flow method's default ``min_size``: images whose shorter side is below
            it are enlarged to it before the network (the scale of the scenes the weights
            learned; 0: never, as the released weights are run).
        zoom: the flow method's default ``zoom`` (the network runs at this factor times the
            image's size, or at ``min_size``'s scale where that is larger; 1.0 as the released
            weights are run).
        ensemble: the flow method's default ``ensemble`` (forward passes per pair on mirrored
            copies, averaged; 1 as the released weights are run). Both chosen on validation
            pairs, never on the held-out set (``docs/trained_model.md``).
    """

    name: str
    file: str
    arch: str
    width: float
    origin: str
    method: str | None = None
    summary: str = ""
    conventions: Mapping[str, Any] = dataclasses.field(default_factory=lambda: PORT_CONVENTIONS)
    release: str = ""
    source: str = ""
    licence: str = ""
    training_data: str = ""
    recipe: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    iterations: int | None = None
    wall_time_s: float | None = None
    metrics: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    notes: str = ""
    min_size: int = 0
    zoom: float = 1.0
    ensemble: int = 1

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"weights {self.name}: origin must be one of {ORIGINS}, got {self.origin!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"weights {self.name}: unknown architecture {self.arch!r}; known: "
                             f"{', '.join(ARCHITECTURES)}")
        if not self.width > 0:
            raise ValueError(f"weights {self.name}: width must be positive, got {self.width!r}")
        if (self.origin == "caffe-release") != bool(self.release):
            raise ValueError(f"weights {self.name}: a Caffe release name goes with origin caffe-release only")
        for name in ("conventions", "recipe", "metrics"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        # Read-only mappings do not pickle; rebuild from plain values (worker processes).
        return type(self), tuple(_thawed(getattr(self, f.name)) for f in dataclasses.fields(self))

    @property
    def display_name(self) -> str:
        """The network in the paper's spelling (``FlowNet2-css`` for CSS at width 3/8)."""
        return display_name(self.arch, self.width)

    @property
    def packaged(self) -> bool:
        """Whether the file ships inside the package (weights trained here)."""
        return self.origin == "trained-here"

    @property
    def location(self) -> str:
        """Where the file is looked for, in words: ``flownet2_core/weights/<file>`` or ``$FLOWNET2_WEIGHTS/<file>``."""
        return f"{__name__.replace('.', '/')}/{self.file}" if self.packaged else f"${WEIGHTS_ENV}/{self.file}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-ready), plus ``display_name``."""
        out = {f.name: _thawed(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["display_name"] = self.display_name
        return out

    def _how(self) -> str:
        if self.origin == "caffe-release":
            return (f"convert {self.release}_weights.caffemodel[.h5] into it with "
                    "`flownet2 weights convert`")
        return "put the released file there under that name"

    def _find(self) -> tuple[str | None, str]:
        """``(path, "")`` when the default file exists, else ``(None, why not)`` in one line."""
        if self.packaged:
            path = package_dir() / self.file
            if path.is_file():
                return str(path), ""
            return None, (f"{self.location} is not in this installation (weights trained in this "
                          "repository ship inside the package once trained)")
        directory = os.environ.get(WEIGHTS_ENV)
        if not directory:
            return None, (f"{WEIGHTS_ENV} is not set; set it to a directory holding {self.file} or pass "
                          "weights=FILE (CLI: --weights FILE)")
        path = os.path.join(directory, self.file)
        if os.path.isfile(path):
            return path, ""
        return None, f"{WEIGHTS_ENV}={directory} has no {self.file}; {self._how()} or pass weights=FILE"

    def locate(self, weights: str | os.PathLike | None = None, *, who: str | None = None) -> str:
        """Path of the file to read: ``weights`` if given (it must exist), else the default file.

        The default is ``package_dir()/file`` for weights trained here, else
        ``$FLOWNET2_WEIGHTS/file``. Raises ``ValueError`` with one line starting with
        ``who`` (default: the method, else the entry) and saying what to do.
        """
        return locate_file(who or self.method or self.name, weights, self._find)

    def unavailable_reason(self) -> str | None:
        """``None`` when the default file is there, else one line saying why not (for listings)."""
        path, why = self._find()
        return None if path else why


def _port(name: str, arch: str, method: str, summary: str, **fields: Any) -> Weights:
    return Weights(name=name, file=f"{name}_checkpoint.pth.tar", arch=arch, width=1.0, origin="nvidia-port",
                   method=method, summary=summary, source=_PORT_SOURCE, licence=_CAFFE_LICENCE, **fields)


def _caffe(release: str, arch: str, width: float, method: str | None = None, summary: str = "",
           **fields: Any) -> Weights:
    return Weights(name=f"caffe/{release}", file=converted_file(release), arch=arch, width=width,
                   origin="caffe-release", method=method, release=release,
                   summary=summary or f"{release} of the Caffe release", source=_CAFFE_SOURCE,
                   licence=_CAFFE_LICENCE, **fields)


_LOWER = LOWERCASE_WIDTH
_CAFFE_ONLY = ("Caffe release only. The lowercase names and widths follow the paper (§4.2); of their "
               "prototxts only FlowNet2-ss's was seen here, and the converter checks every layer shape.")
_FINE_TUNED = ("Caffe release only; assumed to be the plain FlowNet2 network (the converter checks every "
               "layer name and shape, so a wrong assumption fails loudly).")

_ENTRIES: dict[str, Weights] = {w.name: w for w in (
    # ---------------------------------------------------------------- NVIDIA/flownet2-pytorch
    _port("FlowNet2", "FlowNet2", "flownet2", "FlowNet 2.0: CSS + SD + fusion",
          training_data="C, S, S on Chairs (S_long) → Things3D (S_fine); SD on ChairsSDHom; fusion last",
          metrics={
              "Sintel clean EPE": {"value": 2.22, "source": _PTLFLOW},
              "Sintel final EPE": {"value": 3.64, "source": _PTLFLOW},
              "KITTI 2012 EPE": {"value": 4.0, "source": _PTLFLOW},
              "KITTI 2015 EPE": {"value": 10.09, "source": _PTLFLOW},
              "KITTI 2015 Fl-all %": {"value": 30.5, "source": _PTLFLOW},
              "Sintel clean EPE (paper)": {"value": 2.02, "source": "paper"},
              "runtime ms": {"value": 123.0, "source": "paper, GTX 1080, 1024×436"},
          },
          notes=("ptlflow's FlowNet2 differs from the port's wiring in four places (SPEC §6), so its "
                 "figures are a guide, not a target; the paper's Sintel final figure was first "
                 "published on frames missing the fog effects and is not recorded")),
    _port("FlowNet2-C", "FlowNet2-C", "flownet2-c", "FlowNet2-C: FlowNetC alone"),
    _port("FlowNet2-CS", "FlowNet2-CS", "flownet2-cs", "FlowNet2-CS: FlowNetC + FlowNetS"),
    _port("FlowNet2-CSS", "FlowNet2-CSS", "flownet2-css", "FlowNet2-CSS: FlowNetC + 2x FlowNetS"),
    # The CSS network with other weights.
    _port("FlowNet2-CSS-ft-sd", "FlowNet2-CSS", "flownet2-css-ft-sd",
          "FlowNet2-CSS fine-tuned for small displacements",
          training_data="CSS fine-tuned on Things3D + ChairsSDHom (2 + 6 per batch), loss EPE^0.4"),
    _port("FlowNet2-S", "FlowNet2-S", "flownet2-s", "FlowNet2-S: FlowNetS alone"),
    _port("FlowNet2-SD", "FlowNet2-SD", "flownet2-sd", "FlowNet2-SD: small-displacement network alone",
          training_data="ChairsSDHom"),
    # ---------------------------------------------------------------- lmb-freiburg/flownet2 (Caffe)
    # The networks the port also converted (same weights as the entries above); no method
    # of their own: the port's methods read any file holding their architecture.
    _caffe("FlowNet2", "FlowNet2", 1.0),
    _caffe("FlowNet2-C", "FlowNet2-C", 1.0),
    _caffe("FlowNet2-CS", "FlowNet2-CS", 1.0),
    _caffe("FlowNet2-CSS", "FlowNet2-CSS", 1.0),
    _caffe("FlowNet2-CSS-ft-sd", "FlowNet2-CSS", 1.0, summary="FlowNet2-CSS-ft-sd of the Caffe release "
           "(fine-tuned for small displacements)"),
    _caffe("FlowNet2-S", "FlowNet2-S", 1.0),
    _caffe("FlowNet2-SD", "FlowNet2-SD", 1.0),
    # Only in the Caffe release: the paper's 3/8-width models, FlowNet2-SS, and FlowNet2
    # fine-tuned on KITTI / Sintel. ("thin" in method names because those are lowercase
    # and flownet2-css is already the port's FlowNet2-CSS.)
    _caffe("FlowNet2-c", "FlowNet2-C", _LOWER, "flownet2-c-thin", "FlowNet2-c: FlowNetC at 3/8 width",
           notes=_CAFFE_ONLY),
    _caffe("FlowNet2-cs", "FlowNet2-CS", _LOWER, "flownet2-cs-thin",
           "FlowNet2-cs: FlowNetC + FlowNetS at 3/8 width", notes=_CAFFE_ONLY),
    _caffe("FlowNet2-css", "FlowNet2-CSS", _LOWER, "flownet2-css-thin",
           "FlowNet2-css: FlowNetC + 2x FlowNetS at 3/8 width", notes=_CAFFE_ONLY),
    _caffe("FlowNet2-css-ft-sd", "FlowNet2-CSS", _LOWER, "flownet2-css-ft-sd-thin",
           "FlowNet2-css-ft-sd: FlowNet2-css fine-tuned for small displacements", notes=_CAFFE_ONLY),
    _caffe("FlowNet2-s", "FlowNet2-S", _LOWER, "flownet2-s-thin", "FlowNet2-s: FlowNetS at 3/8 width",
           notes=_CAFFE_ONLY,
           # The paper's 140 fps is FlowNet2-s (3/8 width), not FlowNet2-S.
           metrics={"runtime ms": {"value": 1000.0 / 140.0, "source": "paper (140 fps), GTX 1080, 1024×436"}}),
    _caffe("FlowNet2-ss", "FlowNet2-SS", _LOWER, "flownet2-ss-thin", "FlowNet2-ss: 2x FlowNetS at 3/8 width",
           notes="Caffe release only; its prototxt was seen here (3/8 width, as modelled)."),
    _caffe("FlowNet2-sss", "FlowNet2-SSS", _LOWER, "flownet2-sss-thin",
           "FlowNet2-sss: 3x FlowNetS at 3/8 width",
           notes=_CAFFE_ONLY + " Its layer names are assumed by analogy with FlowNet2-ss."),
    _caffe("FlowNet2-SS", "FlowNet2-SS", 1.0, summary="FlowNet2-SS: 2x FlowNetS (Caffe release only)",
           notes="No flow method: convert it and load it with load_checkpoint."),
    _caffe("FlowNet2-KITTI", "FlowNet2", 1.0, "flownet2-kitti", "FlowNet2 fine-tuned on KITTI",
           training_data="FlowNet2, fine-tuned on KITTI", notes=_FINE_TUNED),
    _caffe("FlowNet2-Sintel", "FlowNet2", 1.0, "flownet2-sintel", "FlowNet2 fine-tuned on Sintel",
           training_data="FlowNet2, fine-tuned on Sintel", notes=_FINE_TUNED),
    # ---------------------------------------------------------------- trained in this repository
    Weights(name="FlowNet2-sss-synth", file="flownet2-sss-synth.pth", arch="FlowNet2-SSS",
            width=_LOWER, origin="trained-here", method="flownet2-sss-synth",
            summary="FlowNet2-sss (width 3/8) trained here on synthetic data (stage-wise: each FlowNetS "
                    "trained with the earlier ones frozen, chairs → things, ft-sd); no download",
            source="trained in this repository (flownet2_core.train); fp16 state dict",
            training_data="synthetic chairs/things/sdhom generated on the fly (flownet2_core.train.synthetic)",
            # One network at a time (SPEC §5): S, then the refining nets, each a copy of the
            # net before it when it started; every stage a `flownet2 train stage` command
            # whose options are in docs/trained_model.md. Iterations and seconds per stage.
            recipe={"recipe": "stage-wise FlowNet2-SSS (docs/trained_model.md, 'How it was trained')",
                    "command": "flownet2 train stage (one per stage, see docs/trained_model.md)",
                    "stages": {
                        "flownets_0: chairs, S_long (first version's S)": 6512,
                        "flownets_0: things, S_fine (first version's S)": 449,
                        "flownets_0: chairs, S_long": 4500,
                        "flownets_0: ft-sd (things:2,sdhom:6, EPE^0.4)": 5000,
                        "flownets_0: chairs:3,things:2,sdhom:3, EPE^0.4": 11531,
                        "flownets_0: ft-sd": 2400,
                        "flownets_1 (copy of flownets_0): chairs:3,things:2,sdhom:3": 1000,
                        "flownets_1: chairs:3,things:3,sdhom:2, bf16": 12500,
                        "flownets_2 (copy of flownets_1): chairs:3,things:3,sdhom:2, bf16": 4467,
                        "flownets_2: ft-sd, fp32": 2230,
                        "flownets_2: things:4,sdhom:4, EPE^0.4, fp32": 3535,
                        "flownets_2: chairs:1,things:4,sdhom:3, EPE^0.4, fp32": 7000},
                    "schedules": "S_long's shape at lr 5e-5 (bulk stages), S_fine's at lr 3e-5 (ft-sd and "
                                 "later), each scaled to its stage's length",
                    "loss": "multi-scale EPE; EPE^0.4 for ft-sd and the stages after it",
                    "batch": 8, "crop": [256, 320], "device": "2-core CPU (AMD EPYC Zen 3)"},
            iterations=61124, wall_time_s=39340.0,
            metrics={k: {"value": v, "source": "evaluations.eval_trained --pairs 16, 2026-12-06, as the "
                                               "method runs it (docs/trained_model.md)"}
                     for k, v in (
                         ("held-out synthetic EPE", 4.164), ("held-out chairs EPE", 3.312),
                         ("held-out sdhom EPE", 1.237), ("held-out things EPE", 7.944),
                         ("held-out EPE < 1 px", 1.075), ("held-out EPE 1-10 px", 1.934),
                         ("held-out EPE > 10 px", 7.396), ("motorcycle-small EPE", 1.662),
                         ("motorcycle EPE", 7.762))}
            | {"held-out synthetic EPE, one plain pass": {
                "value": 4.724, "source": "evaluations.eval_trained --pairs 16 -O flownet2-sss-synth:zoom=1 "
                                          "-O flownet2-sss-synth:ensemble=1, 2026-12-06"}},
            notes="second version: about 10.9 hours of training on 2 CPU cores across sessions; as its "
                  "method runs it (zoom 1.25, averaged with the pair turned by 180°) better than DIS "
                  "(medium) and Farneback on the held-out set (4.164 against 4.478 and 8.869 px), one "
                  "plain pass 4.724; docs/trained_model.md has every stage, its command and its held-out EPE",
            # Trained on 512×384 scenes: smaller frames are enlarged to that scale, larger ones run at
            # 1.25× their size; all averaged with the pair rotated by 180°. Zoom and ensemble were
            # chosen on validation pairs (seeds 777 and 778, test textures; 6.010 → 5.361 and
            # 5.871 → 5.121 px), see docs/trained_model.md.
            min_size=384, zoom=1.25, ensemble=2),
)}

#: Every entry by name (read-only).
REGISTRY: Mapping[str, Weights] = MappingProxyType(_ENTRIES)


def get_weights(name: str) -> Weights:
    """The entry called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return _ENTRIES[name]
    except KeyError:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(_ENTRIES)}") from None


def list_weights(*, arch: str | None = None, origin: str | None = None,
                 with_method: bool = False) -> list[Weights]:
    """Entries in registry order, optionally only those of an architecture, an origin, or with a flow method."""
    if origin is not None and origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}; known: {', '.join(ORIGINS)}")
    return [w for w in _ENTRIES.values()
            if (arch is None or w.arch == arch) and (origin is None or w.origin == origin)
            and (not with_method or w.method)]


def weights_for_method(method: str) -> Weights:
    """The entry whose flow method is ``method``; ``ValueError`` when none is."""
    for w in _ENTRIES.values():
        if w.method == method:
            return w
    raise ValueError(f"no weights entry for flow method {method!r}")


def identify(file_name: str, arch: str, width: float, *, batch_norm: bool = False,
             release: str | None = None) -> Weights | None:
    """The entry a file is, from what it holds, or ``None``.

    ``arch`` / ``width`` / ``batch_norm``: what the file holds (detected from its state
    dict); ``release``: the Caffe release a converted file records, if any. A file
    recording a release is that release's entry whatever its name; otherwise it must
    carry the entry's default file name (``os.path.basename`` is taken). The network
    must match exactly: a released name on a network of another width is not the
    released file.
    """
    if batch_norm:
        return None
    fits = [w for w in _ENTRIES.values() if w.arch == arch and abs(w.width - width) < 1e-9]
    if release:
        return next((w for w in fits if w.origin == "caffe-release" and w.release == release), None)
    base = os.path.basename(file_name)
    return next((w for w in fits if w.file == base), None)
