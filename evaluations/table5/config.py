"""What a Table 5 run depends on: the flow methods, the data roots and both halves' settings.

:class:`Table5Config` is plain data (JSON in and out). Settings are split into the ones
that decide a result (recorded in every stage's ``result.json`` and checked when a stage
is reused) and the ones that only decide how fast it comes (workers, threads, devices,
processes), which may change between runs of one output folder.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

__all__ = ["ActionSettings", "MethodSpec", "SegmentationSettings", "Table5Config", "EXACT", "FBMS_SETS",
           "resolve_ucf101"]

#: The ground-truth flow of generated data: read, never computed (no runtime).
EXACT = "exact"
#: The official FBMS-59 folders under its root; the paper's Table 5 uses the training set.
FBMS_SETS = ("Trainingset", "Testset")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the table: a flow method and its constructor options.

    Attributes:
        name: a registered method (``flownet2 methods``) or ``"exact"`` (generated data).
        options: constructor keywords (``weights``, ``device``, presets …).
        stacks: a finished ``flownet2 stacks extract`` folder to use for the action half
            instead of extracting (the only way to give ``exact`` stacks, and the way to
            reuse stacks extracted elsewhere, e.g. by sharded array jobs).
    """

    name: str
    options: dict = field(default_factory=dict)
    stacks: str | None = None

    @property
    def weights(self) -> str | None:
        w = self.options.get("weights")
        return os.fspath(w) if w else None

    def identity(self) -> dict:
        """What makes two results of this method comparable: the name, the options that
        change the flow (not the device) and the weights file's SHA-256 (not its path)."""
        opts = {k: v for k, v in sorted(self.options.items()) if k not in ("weights", "device")}
        return {"name": self.name, "options": _jsonable(opts),
                "weights_sha256": _weights_sha256(self.weights) if self.weights else None}

    def method_options(self) -> dict:
        return dict(self.options)


@dataclass(frozen=True)
class SegmentationSettings:
    """Motion segmentation (FBMS-59): trajectories, clustering, evaluation.

    ``sets``: FBMS-59 folders under the root (Table 5: the training set). ``frames``:
    evaluation length (``"all"``, 10, 50, 200). The rest are
    :class:`~flowapps.segmentation.pipeline.SegmentationOptions` and the F-measure
    threshold of "extracted objects" (0.75 as in the paper). ``images``: write label maps
    and overlays (the report's strips need them for the first sequence).
    """

    sets: tuple[str, ...] = ("Trainingset",)
    frames: str | int = "all"
    sampling: int = 8
    texture_threshold: float = 0.125
    min_length: int = 5
    label_short: bool = False
    cluster: str = "multicut"
    multicut: str = "gaec+kl"
    num_clusters: int | None = None
    min_cluster_size: float = 0.004
    prior: float = 0.5
    threshold: float = 0.75
    images: bool = True

    def __post_init__(self):
        bad = [s for s in self.sets if s not in FBMS_SETS]
        if bad or not self.sets:
            raise ValueError(f"FBMS sets must be among {', '.join(FBMS_SETS)}, got {list(self.sets)}")
        if str(self.frames) not in ("all", "10", "50", "200"):
            raise ValueError(f"frames must be all, 10, 50 or 200, got {self.frames!r}")
        self.options()  # checks cluster, sampling, min_length

    def options(self):
        from flowapps.segmentation.affinities import PairwiseModel
        from flowapps.segmentation.pipeline import SegmentationOptions

        return SegmentationOptions(sampling=self.sampling, texture_threshold=self.texture_threshold,
                                   min_length=self.min_length, label_short=self.label_short, cluster=self.cluster,
                                   multicut=self.multicut, num_clusters=self.num_clusters,
                                   min_cluster_size=self.min_cluster_size, model=PairwiseModel(prior=self.prior))

    def result_settings(self) -> dict:
        d = _jsonable(asdict(self))
        d.pop("images")
        return d


# Action settings that change speed, not results.
_ACTION_RUNTIME = ("workers", "cache_mb", "threads", "device", "nproc")


@dataclass(frozen=True)
class ActionSettings:
    """Action recognition (UCF101): the temporal stream per split, standard test protocol.

    Defaults follow Simonyan & Zisserman's temporal stream as the action package trains it
    (ResNet-18 by default, L = 10, 224 crops, flips, 25 positions × 10 crops); the tests use
    tiny settings. ``short_side``: stack extraction size (None: the videos' own size, which is
    what denseflow gives UCF101). ``nproc > 1`` trains each split under ``torchrun`` with that
    many processes (DDP; ``batch_size`` is the total).
    """

    splits: tuple[int, ...] = (1, 2, 3)
    arch: str = "resnet18"
    pretrained: str | None = None
    dropout: float | None = None
    new_length: int = 10
    crop_size: int = 224
    flip: bool = True
    epochs: int = 80
    batch_size: int = 64
    lr: float = 0.01
    schedule: str = "step"
    milestones: tuple[int, ...] = (30, 60)
    warmup_epochs: float = 0.0
    weight_decay: float = 5e-4
    repeat: int = 1
    seed: int = 0
    positions: int = 25
    crops: int = 10
    short_side: int | None = None
    bound: float = 20.0
    workers: int = 4                      # data loader processes (training and testing)
    cache_mb: float = 0.0
    threads: int | None = None
    device: str | None = None
    nproc: int = 1

    def __post_init__(self):
        bad = [k for k in self.splits if k not in (1, 2, 3)]
        if bad or not self.splits:
            raise ValueError(f"UCF101 splits must be among 1, 2, 3, got {list(self.splits)}")
        if self.crops not in (1, 5, 10):
            raise ValueError(f"crops must be 1, 5 or 10, got {self.crops}")
        if self.nproc < 1 or self.positions < 1:
            raise ValueError("nproc and positions must be at least 1")

    def train_config(self, stacks: str | os.PathLike, out: str | os.PathLike, split: int):
        from flowapps.action.train import TrainConfig

        return TrainConfig(stacks=os.fspath(stacks), out=os.fspath(out), modality="flow", split=split,
                           arch=self.arch, pretrained=self.pretrained, dropout=self.dropout,
                           new_length=self.new_length, crop_size=self.crop_size, flip=self.flip,
                           epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, schedule=self.schedule,
                           milestones=tuple(self.milestones), warmup_epochs=self.warmup_epochs,
                           weight_decay=self.weight_decay, repeat=self.repeat, seed=self.seed,
                           workers=self.workers, cache_mb=self.cache_mb, threads=self.threads,
                           device=self.device, progress=False)

    def result_settings(self) -> dict:
        d = _jsonable(asdict(self))
        for k in _ACTION_RUNTIME:
            d.pop(k)
        d.pop("splits")  # each split is its own stage; the method's row lists the ones it holds
        return d


def resolve_ucf101(root: str | os.PathLike | None, videos: str | os.PathLike | None = None,
                   splits: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(video root, split folder) from a UCF101 root: videos in ``ROOT/videos``,
    ``ROOT/UCF-101`` or ``ROOT`` itself; splits in ``ROOT/ucfTrainTestlist`` (either can be
    given explicitly). ``FileNotFoundError`` when a folder is missing."""
    base = Path(root) if root else None
    if videos is None:
        if base is None:
            raise ValueError("a UCF101 root or its video folder is needed")
        cands = [base / "videos", base / "UCF-101", base]
        videos = next((c for c in cands if c.is_dir()), base)
    if splits is None:
        if base is None:
            raise ValueError("the UCF101 split folder is needed (ucfTrainTestlist)")
        splits = base / "ucfTrainTestlist"
    videos, splits = Path(videos), Path(splits)
    if not videos.is_dir():
        raise FileNotFoundError(f"{videos}: UCF101 video folder not found")
    if not (splits / "classInd.txt").is_file():
        raise FileNotFoundError(f"{splits}: no classInd.txt; not a UCF101 split folder (ucfTrainTestlist)")
    return videos, splits


@dataclass(frozen=True)
class Table5Config:
    """A Table 5 run: rows (methods), data, both halves' settings.

    Either half runs alone: it runs when its root is given. ``runtime_pairs`` frame pairs
    (after ``runtime_warmup`` untimed calls) time each method, on the first FBMS sequence
    or else the first UCF101 video.
    """

    out: str
    methods: tuple[MethodSpec, ...]
    fbms_root: str | None = None
    ucf101_videos: str | None = None
    ucf101_splits: str | None = None
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    action: ActionSettings = field(default_factory=ActionSettings)
    runtime_pairs: int = 10
    runtime_warmup: int = 1

    def __post_init__(self):
        names = [m.name for m in self.methods]
        if not names:
            raise ValueError("no flow methods given")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"flow method given twice: {', '.join(dup)}")
        if self.fbms_root is None and self.ucf101_videos is None:
            raise ValueError("nothing to run: give an FBMS-59 root, a UCF101 root, or both")

    def validate(self) -> None:
        """Check the input before any work: roots exist, methods are known, weights files
        exist, ``exact`` has what it needs. Raises ``ValueError``/``FileNotFoundError``."""
        from flownet2_core.methods import available_methods

        known = set(available_methods())
        for m in self.methods:
            if m.name != EXACT and m.name not in known:
                raise ValueError(f"unknown flow method {m.name!r}; known: {', '.join(sorted(known))}, {EXACT}")
            if m.weights and not Path(m.weights).is_file():
                raise FileNotFoundError(f"{m.weights}: weights file of {m.name} not found")
            if m.stacks is not None and not (Path(m.stacks) / "manifest.json").is_file():
                raise FileNotFoundError(f"{m.stacks}: no manifest.json; not a finished `flownet2 stacks extract` "
                                        f"folder (stacks given for {m.name})")
            if m.name == EXACT and self.ucf101_videos is not None and m.stacks is None:
                raise ValueError("exact flow for UCF101 needs its stacks (--stacks exact=DIR, generated data only)")
        if self.fbms_root is not None:
            root = Path(self.fbms_root)
            if not root.is_dir():
                raise FileNotFoundError(f"{root}: FBMS-59 root not found")
            for s in self.segmentation.sets:
                if not (root / s).is_dir():
                    raise FileNotFoundError(f"{root / s}: FBMS-59 set not found (the official layout has "
                                            f"{' and '.join(FBMS_SETS)} under the root)")
        if self.ucf101_videos is not None:
            resolve_ucf101(None, self.ucf101_videos, self.ucf101_splits)

    def to_json(self) -> dict:
        d = _jsonable(asdict(self))
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Table5Config":
        d = dict(d)
        d["methods"] = tuple(MethodSpec(**m) for m in d["methods"])
        d["segmentation"] = _from(SegmentationSettings, d.get("segmentation", {}))
        d["action"] = _from(ActionSettings, d.get("action", {}))
        return cls(**d)

    def with_methods(self, methods) -> "Table5Config":
        return replace(self, methods=tuple(methods))


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    from flownet2_core.io import file_sha256

    return file_sha256(path)


def _weights_sha256(path: str) -> str:
    """SHA-256 of a weights file, hashed once per (path, size, mtime) in a process."""
    st = os.stat(path)
    return _sha256_of(os.path.abspath(path), st.st_size, st.st_mtime_ns)


def _from(cls, d: dict):
    known = {f.name for f in fields(cls)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    return cls(**kw)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
