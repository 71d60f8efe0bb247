"""Training one stream: SGD, schedules, checkpoints + resume, torchrun DDP, plain logs.

:func:`train` reads the stacks' annotation list, optionally holds out whole UCF101
groups of the training videos (for choosing the fusion weight later), builds the
recognizer and trains it. Everything goes to the run folder::

    <out>/config.json      the TrainConfig
    <out>/train.log        messages (initialisation, resume, epochs)
    <out>/log.csv          one row per epoch: lr, loss, train top-1, clips/s, val top-1
    <out>/log.json         the same rows as JSON
    <out>/holdout.txt      held-out training videos (mmaction2 list), when holdout > 0
    <out>/checkpoint.pt    after every epoch (atomic): model, optimizer, scaler, history
    <out>/model.pt         the trained model + what testing needs (atomic, at the end)

Re-running with the same output folder resumes from ``checkpoint.pt`` (the recipe must
match; ``epochs`` may grow). Checkpoints are read with ``torch.load(weights_only=True)``.

Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) every process takes a contiguous
share of each *global* batch (``batch_size`` is the total over processes) and the loss
is normalised by the global batch size, so the gradient equals the single-process one
up to float summation order (and per-process dropout masks; BatchNorm statistics are
per process). Backend: NCCL on GPUs, gloo on CPUs.

Determinism: the epoch's permutation comes from ``(seed, epoch)``, each sample's
augmentation from ``(seed, epoch, index)`` (see :mod:`.data`), and the torch RNG
(dropout) is reseeded from ``(seed, epoch, rank)`` at each epoch start, so a resumed
run repeats the uninterrupted one exactly on CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from flownet2_core.distributed import join_process_group
from flownet2_core.io import atomic_output, atomic_write_text

from .data import (ClipDataset, StreamConfig, VideoRecord, class_names, read_annotations, read_manifest,
                   split_list, write_annotations)
from .models import build_recognizer, default_dropout

__all__ = ["TrainConfig", "TrainResult", "train", "GlobalBatchSampler", "lr_scheduler", "split_holdout",
           "load_checkpoint", "load_model", "stream_config", "param_groups", "frozen_batchnorms"]

# Settings that may differ when a run is resumed (they do not change what is learned).
_RESUMABLE = {"epochs", "workers", "device", "val_every", "out", "progress", "threads", "cache_mb"}


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in ``config.json`` and checkpoints)."""

    stacks: str
    out: str
    modality: str = "flow"                 # "rgb" (spatial) or "flow" (temporal)
    split: int = 1
    train_list: str | None = None          # default: <stacks>/ucf101_train_split_K_rawframes[_flow].txt
    val_list: str | None = None            # default: the split's test list (only with val_every)
    num_classes: int | None = None         # default: from the labels (max + 1)
    arch: str = "resnet18"
    pretrained: str | None = None          # local torchvision ImageNet state dict
    dropout: float | None = None           # default: 0.8 rgb, 0.7 flow (TSN)
    new_length: int = 10                   # L flow fields (forced to 1 for rgb)
    num_segments: int = 1                  # TSN segments K
    crop_size: int = 224
    crop: str = "random"                   # or "multiscale"
    scales: tuple[float, ...] | None = None  # multiscale crop sides (default {1, .875, .75, .66})
    flip: bool = True
    mean_subtraction: bool = True
    start_index: int = 1                   # file number of frame 1 (0: today's denseflow)
    bound: float | None = None             # flow JPEG range ±px (default: the manifest's, else 20)
    epochs: int = 80
    batch_size: int = 64                   # total over all processes
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"                 # "step" or "cosine"
    milestones: tuple[int, ...] = (30, 60)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    clip_grad: float | None = None
    first_conv_lr_mult: float = 1.0        # TSN flow: 5 (its bias 10 with bias_lr_mult 2)
    bias_lr_mult: float = 1.0              # Caffe's convention (TSN): 2
    bias_decay: bool = True                # False: no weight decay on biases and norm layers
    partial_bn: bool = False               # TSN: only the first BatchNorm layer learns
    recipe: str | None = None              # the published recipe the settings came from
    amp: bool = True                       # mixed precision (CUDA only)
    repeat: int = 1                        # passes over the video list per epoch
    holdout: float = 0.0                   # fraction of training groups held out for fusion
    seed: int = 0
    workers: int = 4
    cache_mb: float = 0.0                  # keep decoded videos in memory (small datasets)
    val_every: int = 0                     # quick validation (1 centre clip) every N epochs
    device: str | None = None
    threads: int | None = None
    progress: bool = True

    def __post_init__(self):
        if self.modality not in ("rgb", "flow"):
            raise ValueError(f"modality must be 'rgb' or 'flow', got {self.modality!r}")
        if self.modality == "rgb":
            self.new_length = 1
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be 'step' or 'cosine', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch size and learning rate must be positive")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        self.milestones = tuple(int(m) for m in self.milestones)
        if self.scales is not None:
            self.scales = tuple(float(s) for s in self.scales)
        if self.first_conv_lr_mult <= 0 or self.bias_lr_mult <= 0:
            raise ValueError("learning-rate multipliers must be positive")

    def to_json(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["scales"] = None if self.scales is None else list(self.scales)
        return d

    @classmethod
    def from_recipe(cls, recipe: str, **fields) -> "TrainConfig":
        """A config with the published ``recipe``'s settings (:mod:`.recipes`: ``tsn`` or
        ``simonyan``) for ``fields["modality"]``, its iterations turned into epochs of this
        run's training videos; every keyword given in ``fields`` overrides the recipe."""
        from .recipes import recipe_config

        probe = cls(**fields)
        n = len(training_records(probe)[2])
        return cls(**{**recipe_config(recipe, probe.modality, n), **fields})

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    out: Path
    model_path: Path
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clips_per_second(self) -> float:
        """Training throughput over this run's epochs (all processes together)."""
        rows = [h for h in self.history if h.get("seconds")]
        return sum(h["clips"] for h in rows) / max(1e-9, sum(h["seconds"] for h in rows))


# --------------------------------------------------------------------------- helpers
def _save(obj, path: Path) -> None:
    """``torch.save`` through :func:`flownet2_core.io.atomic_output`."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint or model file written by :func:`train` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict) or "model" not in obj or "config" not in obj:
        raise ValueError(f"{path}: not a checkpoint written by `flownet2 action train`")
    return obj


def lr_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, iters_per_epoch: int
                 ) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule, stepped once per iteration (``torch.optim.lr_scheduler``).

    Linear warm-up over ``W = ⌈warmup_epochs × iters⌉`` iterations (``LinearLR`` from
    ``1e-3 / warmup_epochs`` of ``lr`` up to ``lr``), then ``MultiStepLR`` (``× gamma`` at
    each milestone epoch, counted from the start of training) or ``CosineAnnealingLR``
    (from ``lr`` to 0 at the last iteration), chained by ``SequentialLR``. Iteration ``i``
    of epoch ``e`` trains at fractional epoch ``t = e + i / iters``.
    """
    from torch.optim import lr_scheduler as sched

    iters = max(1, int(iters_per_epoch))
    total = cfg.epochs * iters
    warm = min(total, math.ceil(cfg.warmup_epochs * iters)) if cfg.warmup_epochs > 0 else 0
    if cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=max(1, total - warm), eta_min=0.0)
    else:  # milestones are epochs from the start: shift them by the warm-up
        main = sched.MultiStepLR(optimizer, milestones=[m * iters - warm for m in cfg.milestones], gamma=cfg.gamma)
    if not warm:
        return main
    start = min(1.0, 1e-3 / cfg.warmup_epochs)
    warmup = sched.LinearLR(optimizer, start_factor=start, end_factor=1.0, total_iters=warm)
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[warm])


def split_holdout(records: list[VideoRecord], fraction: float, seed: int
                  ) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """(train, held out): whole UCF101 groups (same actor/scene) are held out, so held-out
    videos are as unseen as test videos; ``round(fraction × groups)`` groups, at least one
    and never all. scikit-learn's ``GroupShuffleSplit`` draws them (from ``seed``). A
    video whose name has no group (``v_<Class>_gGG_cCC``) is a group of its own."""
    if fraction <= 0:
        return list(records), []
    from sklearn.model_selection import GroupShuffleSplit

    keys = [f"g{r.group}" if r.group is not None else f"video {r.frame_dir}" for r in records]
    n_groups = len(set(keys))
    if n_groups < 2:
        return list(records), []
    k = min(max(1, round(fraction * n_groups)), n_groups - 1)
    splitter = GroupShuffleSplit(n_splits=1, test_size=k, random_state=seed)
    train_idx, held_idx = next(splitter.split(np.zeros(len(records)), groups=keys))
    return [records[i] for i in sorted(train_idx)], [records[i] for i in sorted(held_idx)]


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices, the same global batches for any number of processes.

    Each epoch permutes ``0 … n−1`` from ``(seed, epoch)`` and cuts it into global
    batches of ``batch_size``; process ``rank`` of ``world`` takes its contiguous share
    of each (``numpy.array_split``). A final batch smaller than ``world`` is dropped.
    ``global_sizes[i]`` is the size of global batch ``i`` (the loss normaliser).
    """

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1, seed: int = 0):
        if batch_size < world:
            raise ValueError(f"batch size {batch_size} is smaller than the {world} processes")
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        perm = np.random.default_rng([self.seed, int(epoch)]).permutation(self.n)
        chunks = [perm[b:b + self.batch_size] for b in range(0, self.n, self.batch_size)]
        chunks = [c for c in chunks if len(c) >= self.world]
        self.global_sizes = [len(c) for c in chunks]
        self._shares = [np.array_split(c, self.world)[self.rank].tolist() for c in chunks]

    def __iter__(self):
        return iter(self._shares)

    def __len__(self) -> int:
        return len(self._shares)


def training_records(cfg: TrainConfig) -> tuple[Path, list[VideoRecord], list[VideoRecord], list[VideoRecord]]:
    """(list file, its records, the videos trained on, the held-out ones) of a run."""
    stacks = Path(cfg.stacks)
    train_list = Path(cfg.train_list) if cfg.train_list else split_list(stacks, cfg.split, "train", cfg.modality)
    records = read_annotations(train_list)
    train_recs, held = split_holdout(records, cfg.holdout, cfg.seed)
    return train_list, records, train_recs, held


def stream_config(cfg: TrainConfig, manifest: dict | None) -> StreamConfig:
    """The data settings of a run: flow format and bound from the stacks manifest (a bound
    given in ``cfg`` must agree with it; without a manifest, as given, else 20 px)."""
    m = manifest or {}
    bound = float(m.get("bound", cfg.bound if cfg.bound is not None else 20.0))
    if cfg.bound is not None and abs(cfg.bound - bound) > 1e-9:
        raise ValueError(f"--bound {cfg.bound:g} disagrees with the stacks' manifest.json (bound {bound:g})")
    extra = {} if cfg.scales is None else {"scales": cfg.scales}
    return StreamConfig(modality=cfg.modality, new_length=cfg.new_length, crop_size=cfg.crop_size,
                        crop=cfg.crop, flip=cfg.flip, mean_subtraction=cfg.mean_subtraction,
                        flow_format=m.get("flow_format", "jpg"), bound=bound, flow_scale=bound,
                        start_index=cfg.start_index, **extra)


def _first_layers(model: nn.Module) -> tuple[nn.Module | None, nn.Module | None]:
    """The backbone's first convolution and first normalisation layer (module order)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    norm = next((m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)), None)
    return conv, norm


def frozen_batchnorms(model: nn.Module) -> list[nn.Module]:
    """TSN's partial BN: every BatchNorm layer but the first (their statistics and affine
    parameters stay as initialised, e.g. from ImageNet)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return bns[1:]


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """SGD parameter groups: ``lr_mult`` per group (the scheduler's lr × it) and whether
    weight decay applies, as TSN's prototxts set them: the first convolution's weight
    × ``first_conv_lr_mult`` (its bias × that × ``bias_lr_mult``); other biases ×
    ``bias_lr_mult``; normalisation parameters × 1; biases and normalisation parameters
    without weight decay when ``bias_decay`` is False. With ``partial_bn`` the frozen
    BatchNorm layers' parameters are left out (:func:`frozen_batchnorms`)."""
    conv, _ = _first_layers(model)
    frozen = {id(p) for bn in (frozen_batchnorms(model) if cfg.partial_bn else []) for p in bn.parameters()}
    norm_params = {id(p) for m in model.modules()
                   if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm))
                   for p in m.parameters(recurse=False)}
    groups: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        if id(p) in frozen:
            continue
        is_norm = id(p) in norm_params
        is_bias = name.endswith(".bias") and not is_norm
        mult = cfg.bias_lr_mult if is_bias else 1.0
        if conv is not None and (p is conv.weight or p is conv.bias):
            mult *= cfg.first_conv_lr_mult
        decay = cfg.bias_decay or not (is_bias or is_norm)
        groups.setdefault((mult, decay), []).append(p)
    return [{"params": ps, "lr_mult": mult, "weight_decay": cfg.weight_decay if decay else 0.0}
            for (mult, decay), ps in groups.items()]


def _apply_partial_bn(model: nn.Module, cfg: TrainConfig) -> None:
    """After ``model.train()``: the frozen BatchNorm layers keep their running statistics."""
    if cfg.partial_bn:
        for bn in frozen_batchnorms(model):
            bn.eval()


def _manifest_summary(manifest: dict | None) -> dict:
    m = manifest or {}
    return {"method": m.get("method"), "weights_sha256": m.get("weights_sha256"), "bound": m.get("bound"),
            "flow_format": m.get("flow_format"), "num_videos": m.get("num_videos")}


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    return torch.device("cpu")


def _write_logs(out: Path, history: list[dict]) -> None:
    cols = ["epoch", "lr", "loss", "train_top1", "val_top1", "clips", "seconds", "clips_per_s"]
    # object dtype: integers stay integers next to missing values (written as empty cells)
    table = pd.DataFrame([[row.get(k) for k in cols] for row in history], columns=cols, dtype=object)
    atomic_write_text(out / "log.csv", table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "log.json", json.dumps(history, indent=1))


def _quick_val(model: nn.Module, records: list[VideoRecord], root: str, scfg: StreamConfig,
               num_segments: int, device: torch.device, batch: int) -> float:
    ds = ClipDataset(records, root, scfg, num_segments=num_segments, train=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False)
    correct = n = 0
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
            n += len(y)
    return correct / max(1, n)


# --------------------------------------------------------------------------- train
def train(cfg: TrainConfig, *, stop_after: int | None = None, log: Callable[[str], None] | None = None
          ) -> TrainResult:
    """Train one stream (see module docstring). ``stop_after=E`` returns after epoch E
    (as if interrupted; a later call resumes)."""
    d = join_process_group()  # NCCL with GPUs, gloo otherwise; nothing without torchrun
    rank, world, local_rank, distributed = d.rank, d.world, d.local_rank, d.active
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {world} processes")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    main = rank == 0

    def say(msg: str) -> None:
        if not main:
            return
        (log or print)(f"[action train] {msg}")
        with open(out / "train.log", "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    stacks = Path(cfg.stacks)
    if not stacks.is_dir():
        raise FileNotFoundError(f"{stacks}: stacks folder does not exist")
    manifest = read_manifest(stacks)
    scfg = stream_config(cfg, manifest)
    train_list, records, train_recs, held = training_records(cfg)
    num_classes = cfg.num_classes or max(r.label for r in records) + 1
    if max(r.label for r in records) >= num_classes:
        raise ValueError(f"{train_list}: label {max(r.label for r in records)} >= num_classes {num_classes}")
    classes = class_names(records, num_classes)
    val_recs = None
    if cfg.val_every:
        val_list = Path(cfg.val_list) if cfg.val_list else split_list(stacks, cfg.split, "test", cfg.modality)
        val_recs = read_annotations(val_list)

    device = _device(cfg, local_rank)
    if device.type == "cuda":
        if device.index is not None:
            torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick kernels
    use_amp = cfg.amp and device.type == "cuda"
    torch.manual_seed(cfg.seed)
    dropout = default_dropout(cfg.modality) if cfg.dropout is None else cfg.dropout
    model = build_recognizer(cfg.arch, num_classes, scfg.channels, dropout=dropout,
                             pretrained=cfg.pretrained, log=say).to(device)
    if cfg.partial_bn:  # frozen BN parameters get no gradient (and DDP expects none)
        for bn in frozen_batchnorms(model):
            bn.requires_grad_(False)
    groups = param_groups(model, cfg)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_mult"]
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, history = 0, []
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        # through from_json: settings added since the checkpoint was written take their defaults
        old = {k: v for k, v in TrainConfig.from_json(ckpt["config"]).to_json().items() if k not in _RESUMABLE}
        new = {k: v for k, v in cfg.to_json().items() if k not in _RESUMABLE}
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"{ckpt_path}: a run with other settings ({', '.join(diff)}); "
                             f"use another output folder")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        say(f"resumed from {ckpt_path} after epoch {start_epoch}")
    if main:
        atomic_write_text(out / "config.json", json.dumps(cfg.to_json(), indent=1))
        if held:
            write_annotations(out / "holdout.txt", held)
    if distributed:
        model_ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        model_ddp = model

    dataset = ClipDataset(train_recs, stacks, scfg, num_segments=cfg.num_segments, train=True,
                          seed=cfg.seed, repeat=cfg.repeat, cache_mb=cfg.cache_mb)
    sampler = GlobalBatchSampler(len(dataset), cfg.batch_size, rank, world, cfg.seed)
    for g in optimizer.param_groups:  # the schedule starts from lr (a resumed optimizer holds the last one)
        g["lr"] = cfg.lr * g["lr_mult"]
        g.pop("initial_lr", None)
    scheduler = lr_scheduler(cfg, optimizer, len(sampler))
    with warnings.catch_warnings():  # a resumed run: catch up without optimizer steps
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)` before", UserWarning)
        for _ in range(start_epoch * len(sampler)):
            scheduler.step()
    say(f"{cfg.modality} stream, {cfg.arch}, {len(train_recs)} training videos ({len(held)} held out), "
        f"{num_classes} classes, input {scfg.channels}×{scfg.crop_size}×{scfg.crop_size} × {cfg.num_segments} "
        f"segment(s), batch {cfg.batch_size} over {world} process(es) on {device}"
        f"{', mixed precision' if use_amp else ''}"
        f"{f'; recipe {cfg.recipe}' if cfg.recipe else ''}"
        f"{'; partial BN' if cfg.partial_bn else ''}; flow method "
        f"{(manifest or {}).get('method', 'unknown (no manifest.json)')}")

    t_run = time.perf_counter()
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start_epoch, last):
        torch.manual_seed(int(np.random.default_rng([cfg.seed, epoch, rank]).integers(2 ** 62)))
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers,
                                             pin_memory=device.type == "cuda")
        model_ddp.train()
        _apply_partial_bn(model, cfg)
        stats = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, samples
        iters = len(sampler)
        t0 = time.perf_counter()
        bar = tqdm(loader, total=iters, desc=f"{cfg.modality} epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not (cfg.progress and main), leave=False)
        for it, (x, y) in enumerate(bar):
            lr = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["lr_mult"]  # the base rate
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = model_ddp(x)
                loss_sum = F.cross_entropy(logits.float(), y, reduction="sum")
            # DDP averages gradients over processes: scale so the result is the
            # mean over the *global* batch.
            loss = loss_sum * (world / sampler.global_sizes[it])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            batch_loss = float(loss_sum.detach())
            stats += torch.tensor([batch_loss, float((logits.detach().argmax(1) == y).sum()), len(y)],
                                  dtype=torch.float64)
            bar.set_postfix(loss=f"{batch_loss / len(y):.3f}", lr=f"{lr:.2g}")
        bar.close()
        if distributed:
            import torch.distributed as dist

            dist.all_reduce(stats)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "lr": lr,  # of the epoch's last iteration
               "loss": float(stats[0] / max(1, stats[2])), "train_top1": float(stats[1] / max(1, stats[2])),
               "val_top1": None, "clips": int(stats[2]), "seconds": round(seconds, 3),
               "clips_per_s": round(float(stats[2]) / seconds, 2)}
        if val_recs is not None and (epoch + 1) % cfg.val_every == 0 and main:
            row["val_top1"] = _quick_val(model, val_recs, str(stacks), scfg, cfg.num_segments, device,
                                         max(1, cfg.batch_size // world))
        history.append(row)
        if main:
            _save({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scaler": scaler.state_dict(), "config": cfg.to_json(), "history": history}, ckpt_path)
            _write_logs(out, history)
            val = "" if row["val_top1"] is None else f", val top-1 {100 * row['val_top1']:.1f} %"
            say(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}, train top-1 "
                f"{100 * row['train_top1']:.1f} %{val}, {row['clips_per_s']:.1f} clips/s")
        d.barrier()

    model_path = out / "model.pt"
    if main and len(history) >= cfg.epochs:
        _save({"model": model.state_dict(), "config": cfg.to_json(), "stream": scfg.to_json(),
               "num_classes": num_classes, "classes": classes, "dropout": dropout,
               "holdout": [[r.frame_dir, r.total_frames, r.label] for r in held],
               "manifest": _manifest_summary(manifest), "history": history}, model_path)
        say(f"saved {model_path}")
    d.barrier()
    return TrainResult(out, model_path, history, time.perf_counter() - t_run)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model in eval mode, the model file's dict) from a ``model.pt`` (or a checkpoint)."""
    obj = load_checkpoint(path)
    cfg = TrainConfig.from_json(obj["config"])
    if "stream" not in obj:
        raise ValueError(f"{path}: a training checkpoint, not a finished model; finish training "
                         f"(re-run the same train command) or pass model.pt")
    scfg = StreamConfig.from_json(obj["stream"])
    model = build_recognizer(cfg.arch, obj["num_classes"], scfg.channels, dropout=obj["dropout"], log=lambda _: None)
    model.load_state_dict(obj["model"])
    return model.to(device).eval(), obj

