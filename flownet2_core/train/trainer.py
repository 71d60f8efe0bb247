"""Train one stage of a FlowNet 2.0 model: a network, its data, its schedule.

A stage is what the paper trains at once (§3–5): one architecture, some of its
sub-networks frozen (stacking: earlier networks fixed, the new one trained),
warm-started from earlier stages' or released checkpoints, on a data source
with a schedule. :func:`train_stage` runs one; :mod:`.recipes` chains them.

Runs survive interruption. Everything lives in the output folder:

* ``state.pt``: model, optimiser, scheduler, RNG states, iteration, wall time
  and the log, written atomically every ``checkpoint_every`` iterations and at
  the end. Data are a pure function of (seed, iteration), so re-running the
  same call resumes exactly where the state was written (same next batch,
  same next loss).
* ``model.pth.tar``: the weights in the released layout with the stage's
  metadata (``load_checkpoint`` and the flow methods read it).
* ``log.csv`` and ``curves.png``: training loss and validation EPE.

Under ``torchrun`` every process trains on its rows of one global batch
(``batch_size`` is the global size) with ``DistributedDataParallel``: NCCL on
GPUs, gloo on CPUs. Precision ``bf16`` runs the forward pass under bfloat16
autocast (the loss stays float32).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..distributed import Dist, join_process_group
from ..io import atomic_output, atomic_write_text
from ..models.builders import BUILDERS, build_model
from ..models.checkpoint import detect_architecture, read_checkpoint, save_checkpoint
from .losses import MultiScaleEPE
from .schedules import Schedule, make_optimizer, make_scheduler, scaled
from .sources import make_source, validation_batches

__all__ = ["StageConfig", "StageResult", "evaluate", "load_init", "train_stage", "training_step"]

STATE_FORMAT = 1
#: Settings that may differ when a run is resumed (they do not change what is computed).
_RESUMABLE = {"val_every", "checkpoint_every", "progress", "device", "time_budget", "channels_last"}


@dataclass
class StageConfig:
    """One training stage. Sizes are (H, W); crops and validation sizes are multiples of 64."""

    arch: str = "FlowNet2-C"
    width: float = 1.0
    data: str = "chairs"                     # synthetic kind(s) "chairs", "things:2,sdhom:6", or dataset names
    roots: dict[str, str] = field(default_factory=dict)   # dataset name → root folder
    schedule: str = "long"                   # short | long | fine (SPEC §5)
    scale: float = 1.0                       # milestones and stop × scale
    iterations: int | None = None            # stop here instead (milestones scaled along)
    lr: float | None = None                  # the schedule's rate unless given
    loss: str = "epe"                        # epe | robust (EPE^0.4, the ft-sd loss)
    freeze: tuple[str, ...] = ()             # sub-network names kept fixed
    init: tuple[str, ...] = ()               # checkpoints to warm-start from
    batch_size: int = 8                      # global batch (all processes)
    size: tuple[int, int] = (384, 512)       # generated / loaded size before augmentation
    crop: tuple[int, int] = (320, 448)       # training crop
    augment: bool = True
    val_size: tuple[int, int] = (384, 512)
    val_batches: int = 4                     # of 4 pairs each, held out (other seed and textures)
    val_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0
    precision: str = "fp32"                  # fp32 | bf16
    channels_last: bool = True               # NHWC weights and inputs (same numbers, faster convs)
    device: str | None = None                # default cuda:LOCAL_RANK when available, else cpu
    time_budget: float | None = None         # seconds: fix the stop from the measured speed
    texture_count: int = 64
    motion_scale: float | None = None        # synthetic displacements × this (default: scale with size)
    pool: int = 0                            # synthetic samples kept and reused (0: fresh batches)
    refresh: int = 2                         # new pool samples per iteration
    progress: bool = True

    def check(self) -> None:
        if self.arch not in BUILDERS:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(BUILDERS)}")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width}")
        for name, (h, w) in (("crop", self.crop), ("val_size", self.val_size)):
            if h <= 0 or w <= 0 or h % 64 or w % 64:
                raise ValueError(f"{name} must be positive multiples of 64, got {w}×{h}")
        if self.crop[0] > self.size[0] or self.crop[1] > self.size[1]:
            raise ValueError(f"crop {self.crop} is larger than size {self.size}")
        if self.loss not in ("epe", "robust"):
            raise ValueError(f"loss must be 'epe' or 'robust', got {self.loss!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {self.iterations}")
        if self.val_every < 1 or self.checkpoint_every < 1:
            raise ValueError("val_every and checkpoint_every must be ≥ 1")
        if self.pool < 0 or self.refresh < 1 or (self.pool and self.pool < self.batch_size):
            raise ValueError(f"pool must be 0 or ≥ batch_size, refresh ≥ 1; got pool={self.pool}, "
                             f"refresh={self.refresh}")
        from .sources import KINDS, parse_data

        mix = parse_data(self.data)
        if self.batch_size % sum(mix.values()):
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of the mix {self.data!r} "
                             f"({sum(mix.values())} shares)")
        for name in mix:
            if name not in KINDS and name not in self.roots:
                raise ValueError(f"data {name!r} is neither a synthetic kind ({', '.join(KINDS)}) nor a "
                                 f"dataset with a root given (--root {name}=PATH)")
        for entry in self.init:
            child, _ = split_init(entry)
            if child is not None and int(child[-1]) > REFINERS.get(self.arch, 0):
                raise ValueError(f"--init {entry}: {self.arch} has no {child} (its refining FlowNetS: "
                                 f"{', '.join(f'flownets_{k}' for k in range(1, REFINERS.get(self.arch, 0) + 1)) or 'none'})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["freeze"], d["init"] = list(self.freeze), list(self.init)
        d["size"], d["crop"], d["val_size"] = list(self.size), list(self.crop), list(self.val_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StageConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("freeze", "init"):
            if k in d:
                d[k] = tuple(d[k])
        for k in ("size", "crop", "val_size"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class StageResult:
    """What a finished (or budget-stopped) stage left: files and figures."""

    out: Path
    model_path: Path
    iterations: int
    val_epe: float
    wall_seconds: float
    iters_per_second: float


# ----------------------------------------------------------------------- model
_STANDALONE_PREFIX = {"FlowNet2-C": "flownetc.", "FlowNet2-SD": "flownets_d."}
#: The sub-network of a stack that a stand-alone network of this kind starts from.
_STACK_MEMBER = {**_STANDALONE_PREFIX, "FlowNet2-S": "flownets_0."}


def _children(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_children()]


def load_init(model: nn.Module, paths: tuple[str, ...] | list[str]) -> list[str]:
    """Warm-start ``model`` from checkpoints; return the sub-networks that were filled.

    An entry ``SUBNET=PATH`` (``flownets_1=runs/s/model.pth.tar``) fills one
    stacked FlowNetS from PATH's last FlowNetS: a FlowNet2-S with its input
    widened by zero weights (the refining net starts as a copy of the first),
    or a stack's last refining net (see :func:`_stacked_net_weights`).
    Otherwise keys are matched by name after mapping a stand-alone network onto the stack's
    sub-network (FlowNet2-C → ``flownetc.``, FlowNet2-SD → ``flownets_d.``,
    FlowNet2-S → ``flownets_0.`` for the S stacks), so a FlowNet2-CS starts from
    a trained FlowNet2-C, CSS from CS, FlowNet2 from CSS-ft-sd plus SD; the other
    way, a stand-alone network starts from its counterpart in a stack (FlowNet2-S
    from an S stack's ``flownets_0``, FlowNet2-C from ``flownetc``). A key
    whose shape differs is an error; a sub-network must be filled completely.
    """
    target = model.state_dict()
    filled: dict[str, Tensor] = {}
    for entry in paths:
        child, path = _split_init(model, entry)
        ckpt = read_checkpoint(path)
        sd = ckpt["state_dict"]
        meta = ckpt.get("flownet2") if isinstance(ckpt.get("flownet2"), dict) else {}
        src = meta.get("model") or detect_architecture(sd)[0]
        if child is not None:
            filled.update(_stacked_net_weights(target, child, path, src, sd))
            continue
        prefix = _STANDALONE_PREFIX.get(src, "")
        if src == "FlowNet2-S":
            prefix = "flownets_0."
        if src in _STANDALONE_PREFIX or src == "FlowNet2-S":
            if hasattr(model, "arch_name") and model.arch_name == src:
                prefix = ""
        mapped = {prefix + k: v for k, v in sd.items()}
        arch = getattr(model, "arch_name", None)
        if arch in _STACK_MEMBER and not any(k in target for k in mapped):
            # a stand-alone network taken out of a stack: FlowNet2-S from an S stack's
            # first network, FlowNet2-C from a C stack's, FlowNet2-SD from FlowNet2's
            member = _STACK_MEMBER[arch]
            mapped = {k[len(member):]: v for k, v in sd.items() if k.startswith(member)}
        used = 0
        for k, v in mapped.items():
            if k in target:
                if tuple(v.shape) != tuple(target[k].shape):
                    raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, the model needs "
                                     f"{tuple(target[k].shape)} (another width?)")
                filled[k] = v
                used += 1
        if used == 0:
            raise ValueError(f"{path}: none of its weights ({src}) fit {type(model).__name__}")
    children = []
    for child in _children(model):
        keys = [k for k in target if k.startswith(child + ".")]
        got = [k for k in keys if k in filled]
        if got and len(got) != len(keys):
            raise ValueError(f"sub-network {child} only partly filled by {list(paths)} "
                             f"({len(got)} of {len(keys)} tensors)")
        if got:
            children.append(child)
    model.load_state_dict({**target, **filled}, strict=True)
    return children


#: How many refining FlowNetS (flownets_1 …) each stack has.
REFINERS = {"FlowNet2-CS": 1, "FlowNet2-SS": 1, "FlowNet2-CSS": 2, "FlowNet2-SSS": 2, "FlowNet2": 2}


def split_init(entry: str | os.PathLike) -> tuple[str | None, str]:
    """An ``--init`` entry: ``"flownets_1=PATH"`` → ("flownets_1", PATH); a path → (None, path)."""
    m = re.fullmatch(r"(flownets_[1-9])=(.+)", os.fspath(entry))
    return (m.group(1), m.group(2)) if m else (None, os.fspath(entry))


def _split_init(model: nn.Module, entry: str) -> tuple[str | None, str]:
    child, path = split_init(entry)
    if child is not None and child not in _children(model):
        have = [n for n in _children(model) if re.fullmatch(r"flownets_[1-9]", n)]
        raise ValueError(f"--init {entry}: {type(model).__name__} has no {child} "
                         f"(its refining FlowNetS: {', '.join(have) or 'none'})")
    return child, path


def _stacked_net_weights(target: dict[str, Tensor], child: str, path: str, src: str,
                            sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Weights for the stacked FlowNetS ``child`` from the last FlowNetS in ``path``.

    From a stand-alone FlowNet2-S: the refining net sees 12 channels [img1,
    img2, warped img2, flow / 20, brightness error] where the first net sees
    [img1, img2]; its first convolution gets the first net's weights on the
    image pair and zeros on the other six channels, so it starts out computing
    exactly the first net's flow, and training only has to learn what the
    warped image and the brightness error add (the paper trains it from
    scratch, which spends thousands of iterations relearning the first net's
    flow). From a stack: its last refining net (``flownets_J``, same shape), so
    a trained refiner is applied once more on its own output (SS → SSS).
    """
    refiners = sorted({k.split(".")[0] for k in sd if re.match(r"flownets_[1-9]\.", k)})
    if refiners:
        member = refiners[-1] + "."
        sd = {k[len(member):]: v for k, v in sd.items() if k.startswith(member)}
    elif src != "FlowNet2-S":
        raise ValueError(f"--init {child}={path}: needs a FlowNet2-S checkpoint or a stack with a "
                         f"refining FlowNetS, this file is {src}")
    out = {}
    for k, v in sd.items():
        key = f"{child}.{k}"
        if key not in target:
            raise ValueError(f"--init {child}={path}: {k} has no counterpart in {child}")
        want = target[key].shape
        if v.shape != want and v.dim() == 4 and v.shape[1] < want[1] and \
                v.shape[:1] + v.shape[2:] == want[:1] + want[2:]:
            v = torch.cat((v, v.new_zeros(want[0], want[1] - v.shape[1], *want[2:])), dim=1)
        if v.shape != want:
            raise ValueError(f"--init {child}={path}: {k} has shape {tuple(v.shape)}, {child} needs "
                             f"{tuple(want)} (another width?)")
        out[key] = v
    return out


def _freeze(model: nn.Module, names: tuple[str, ...]) -> None:
    children = dict(model.named_children())
    for n in names:
        if n not in children:
            raise ValueError(f"--freeze {n}: {type(model).__name__} has sub-networks "
                             f"{', '.join(children)}")
        children[n].requires_grad_(False)


def _set_train_mode(model: nn.Module, frozen: tuple[str, ...]) -> None:
    model.train()
    for n, child in model.named_children():
        if n in frozen:
            child.eval()  # fixed networks behave as at inference (matters with batch norm)


# ------------------------------------------------------------------ the loop
def _device(cfg: StageConfig, d: Dist) -> torch.device:
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", d.local_rank)
    return torch.device("cpu")


def _layout(cfg: StageConfig, t: Tensor) -> Tensor:
    """Images in the layout the weights use: channels-last lets oneDNN (CPU) and cuDNN
    (tensor cores) skip their per-layer reorders; the values are unchanged."""
    return t.contiguous(memory_format=torch.channels_last) if cfg.channels_last else t


def _autocast(cfg: StageConfig, device: torch.device):
    if cfg.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, batches: list[dict[str, Tensor]], cfg: StageConfig) -> float:
    """Mean EPE in pixels over all pixels of the validation batches (eval mode)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for b in batches:
            with _autocast(cfg, b["img1"].device):
                flow = model(_layout(cfg, b["img1"]), _layout(cfg, b["img2"]))
            e = torch.linalg.vector_norm(flow.float() - b["flow"], dim=1)
            total += float(e.sum())
            count += e.numel()
    finally:
        model.train(was)
    return total / max(count, 1)


def training_step(net: nn.Module, model: nn.Module, batch: dict[str, Tensor], loss_fn: MultiScaleEPE,
                  optimizer: torch.optim.Optimizer, cfg: StageConfig) -> Tensor:
    """Forward, loss and backward of one batch (gradients left in the parameters).

    ``net`` is ``model`` or its DistributedDataParallel wrapper (which averages
    the gradients over processes during ``backward``).
    """
    optimizer.zero_grad(set_to_none=True)
    with _autocast(cfg, batch["img1"].device):
        outputs = net(_layout(cfg, batch["img1"]), _layout(cfg, batch["img2"]))
    loss = loss_fn(outputs, batch["flow"], batch["valid"], model=model)
    loss.backward()
    return loss.detach()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


LOG_FIELDS = ("iteration", "lr", "loss", "val_epe", "iters_per_s", "elapsed_s")


def _write_log(out: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, LOG_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in LOG_FIELDS})
    atomic_write_text(out / "log.csv", buf.getvalue())


def _plot(out: Path, rows: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = [r["iteration"] for r in rows if r.get("loss") != ""]
    loss = [r["loss"] for r in rows if r.get("loss") != ""]
    vit = [r["iteration"] for r in rows if r.get("val_epe") not in ("", None)]
    vepe = [r["val_epe"] for r in rows if r.get("val_epe") not in ("", None)]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(it, loss, lw=0.8)
    ax[0].set(xlabel="iteration", ylabel="training loss (multi-scale EPE / 20)", yscale="log")
    ax[1].plot(vit, vepe, "o-", ms=3)
    ax[1].set(xlabel="iteration", ylabel="validation EPE (px)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(out / "curves.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def _rng_state(device: torch.device) -> dict:
    st = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def _check_resume(cfg: StageConfig, saved: dict, out: Path) -> None:
    mine, theirs = cfg.to_dict(), saved
    diff = sorted(k for k in set(mine) | set(theirs)
                  if k not in _RESUMABLE and mine.get(k) != theirs.get(k))
    if diff:
        k = diff[0]
        raise ValueError(f"{out}: holds a run with other settings ({k}: {theirs.get(k)!r} there, "
                         f"{mine.get(k)!r} now); use another output folder or the same settings")


def train_stage(cfg: StageConfig, out: str | os.PathLike, *, name: str = "stage",
                log=None) -> StageResult:
    """Train (or resume) one stage into the folder ``out``; return its result.

    ``log``: a callable for one-line messages (default: print to stderr on rank 0).
    """
    cfg.check()
    out = Path(out)
    for p in (split_init(e)[1] for e in cfg.init):  # never overwrite an input: the stage writes these
        if Path(p).resolve() in ((out / "model.pth.tar").resolve(), (out / "state.pt").resolve()):
            raise ValueError(f"--init {p}: is the output this stage writes in {out}; "
                             "give the stage another output folder")
    d = join_process_group()
    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {d.world} processes")
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if not d.main:
        say = lambda m: None  # noqa: E731
    device = _device(cfg, d)
    if device.type == "cpu":
        from ..memory import reuse_freed_memory

        reuse_freed_memory()  # a training step's activations would be page-faulted in anew each time
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    d.barrier()

    state_path = out / "state.pt"
    saved = None
    if state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        _check_resume(cfg, saved["config"], out)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, width=cfg.width)
    if saved is None and cfg.init:
        filled = load_init(model, cfg.init)
        what = "every layer" if filled == _children(model) else ", ".join(filled)
        say(f"[{name}] warm start: {what} from {', '.join(map(str, cfg.init))}")
    _freeze(model, cfg.freeze)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    trainable = [n for n, c in model.named_children()
                 if any(p.requires_grad for p in c.parameters())]

    schedule: Schedule = scaled(cfg.schedule, cfg.scale)
    if cfg.iterations is not None:
        schedule = scaled(schedule, cfg.iterations / schedule.stop)
        schedule = Schedule(schedule.name, schedule.lr, schedule.milestones, cfg.iterations,
                            schedule.gamma)
    if cfg.lr is not None:
        schedule = Schedule(schedule.name, cfg.lr, schedule.milestones, schedule.stop, schedule.gamma)
    optimizer = make_optimizer(model.parameters(), schedule)
    scheduler = make_scheduler(optimizer, schedule)

    iteration, elapsed, rows, budget_fixed = 0, 0.0, [], cfg.time_budget is None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule = Schedule(**saved["schedule"])
        scheduler = make_scheduler(optimizer, schedule)
        scheduler.load_state_dict(saved["scheduler"])
        iteration, elapsed, rows = int(saved["iteration"]), float(saved["elapsed"]), list(saved["log"])
        budget_fixed = bool(saved.get("budget_fixed", True))
        torch.set_rng_state(saved["rng"]["torch"])
        if device.type == "cuda" and "cuda" in saved["rng"]:
            torch.cuda.set_rng_state(saved["rng"]["cuda"], device)
        say(f"[{name}] resuming at iteration {iteration} of {schedule.stop} from {state_path}")

    net: nn.Module = model
    if d.active:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = MultiScaleEPE(robust=cfg.loss == "robust")
    source = make_source(cfg, device, d)
    val = validation_batches(cfg, device) if d.main else []

    def save_state(final: bool) -> float:
        val_epe = float("nan")
        if d.main:
            val_epe = evaluate(model, val, cfg)
            if rows and rows[-1]["iteration"] == iteration:
                rows[-1]["val_epe"] = val_epe
            else:
                rows.append({"iteration": iteration, "lr": optimizer.param_groups[0]["lr"], "loss": "",
                             "val_epe": val_epe, "iters_per_s": "", "elapsed_s": elapsed})
            st = {"format": STATE_FORMAT, "config": cfg.to_dict(), "iteration": iteration,
                  "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                  "schedule": {"name": schedule.name, "lr": schedule.lr,
                               "milestones": list(schedule.milestones), "stop": schedule.stop,
                               "gamma": schedule.gamma},
                  "rng": _rng_state(device), "elapsed": elapsed, "log": rows,
                  "budget_fixed": budget_fixed}
            _atomic_torch_save(st, state_path)
            save_checkpoint(out / "model.pth.tar", model, epoch=iteration, best_epe=val_epe,
                            stage=name, training={
                                "iterations": iteration, "data": cfg.data, "schedule": schedule.name,
                                "lr": schedule.lr, "milestones": list(schedule.milestones),
                                "stop": schedule.stop, "loss": cfg.loss, "batch_size": cfg.batch_size,
                                "crop": list(cfg.crop), "frozen": list(cfg.freeze),
                                "trained": trainable, "init": [str(p) for p in cfg.init],
                                "seed": cfg.seed, "precision": cfg.precision,
                                "wall_seconds": round(elapsed, 1), "device": str(device),
                                "processes": d.world, "val_epe": val_epe, "finished": final})
            _write_log(out, rows)
            _plot(out, rows, f"{name}: {cfg.arch} (width {cfg.width:g}) on {cfg.data}")
        d.barrier()
        return val_epe

    if iteration == 0 and d.main:  # where training starts from, for the curves
        rows.append({"iteration": 0, "lr": schedule.lr, "loss": "", "val_epe": evaluate(model, val, cfg),
                     "iters_per_s": "", "elapsed_s": 0.0})
    if iteration >= schedule.stop:
        say(f"[{name}] already finished ({iteration} iterations) in {out}")
        return StageResult(out, out / "model.pth.tar", iteration, _last_val(rows), elapsed,
                           _rate(rows))

    say(f"[{name}] {cfg.arch} width {cfg.width:g}: training "
        f"{', '.join(trainable) if cfg.freeze else 'every layer'}"
        + (f", frozen {', '.join(cfg.freeze)}" if cfg.freeze else "")
        + f"; {cfg.data}, {schedule.name} ({schedule.stop} iterations, lr {schedule.lr:g}), "
        f"batch {cfg.batch_size} × {cfg.crop[1]}×{cfg.crop[0]} on {device}"
        + (f" × {d.world} processes" if d.world > 1 else "") + f", {cfg.precision}")
    bar = None
    if d.main and cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=schedule.stop, initial=iteration, desc=name, unit="it", dynamic_ncols=True,
                   file=sys.stderr)
    _set_train_mode(model, cfg.freeze)
    loss_sum, loss_n, t_window, it_window = 0.0, 0, time.perf_counter(), iteration
    t_last = time.perf_counter()
    warm = (iteration + 5, iteration + 25)
    t_warm = None
    try:
        while iteration < schedule.stop:
            loss = training_step(net, model, source.batch(iteration), loss_fn, optimizer, cfg)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"[{name}] loss is {float(loss)} at iteration {iteration}")
            optimizer.step()
            scheduler.step()
            iteration += 1
            loss_sum += float(loss.detach())
            loss_n += 1
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            if bar is not None:
                bar.update(1)
            if not budget_fixed:
                if iteration == warm[0]:
                    t_warm = now
                elif iteration == warm[1]:
                    rate = (warm[1] - warm[0]) / (now - t_warm)
                    if d.active:  # every process must agree on the stop
                        r = torch.tensor([rate], dtype=torch.float64)
                        torch.distributed.broadcast(r, 0)
                        rate = float(r)
                    remaining = max(1.0, cfg.time_budget - elapsed)
                    stop = iteration + max(1, int(rate * remaining))
                    schedule = scaled(schedule, stop / schedule.stop)
                    schedule = Schedule(schedule.name, schedule.lr, schedule.milestones, stop,
                                        schedule.gamma)
                    scheduler.milestones = Counter(schedule.milestones)
                    budget_fixed = True
                    if bar is not None:
                        bar.total = stop
                    say(f"[{name}] {rate:.1f} it/s: time budget {cfg.time_budget:g} s → stop at "
                        f"{stop}, lr × {schedule.gamma} at {list(schedule.milestones)}")
            log_now = iteration % max(1, min(cfg.val_every, 50)) == 0 or iteration == schedule.stop
            if log_now:
                rate = (iteration - it_window) / max(now - t_window, 1e-9)
                rows.append({"iteration": iteration, "lr": optimizer.param_groups[0]["lr"],
                             "loss": loss_sum / max(loss_n, 1), "val_epe": "",
                             "iters_per_s": rate, "elapsed_s": round(elapsed, 2)})
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_sum / max(loss_n, 1):.4f}", refresh=False)
                loss_sum, loss_n, t_window, it_window = 0.0, 0, now, iteration
            if iteration % cfg.checkpoint_every == 0 or iteration % cfg.val_every == 0 \
                    or iteration == schedule.stop:
                v = save_state(final=iteration == schedule.stop)
                if bar is not None:
                    bar.set_postfix(loss=rows[-1]["loss"] if rows[-1]["loss"] != "" else "",
                                    val_epe=f"{v:.3f}", refresh=False)
                t_last = time.perf_counter()  # saving is not training time
    finally:
        if bar is not None:
            bar.close()
    val_epe = _last_val(rows)
    say(f"[{name}] done: {iteration} iterations in {elapsed:.0f} s, validation EPE {val_epe:.3f} px → "
        f"{out / 'model.pth.tar'}")
    return StageResult(out, out / "model.pth.tar", iteration, val_epe, elapsed, _rate(rows))


def _last_val(rows: list[dict]) -> float:
    for r in reversed(rows):
        if r.get("val_epe") not in ("", None):
            return float(r["val_epe"])
    return float("nan")


def _rate(rows: list[dict]) -> float:
    rates = [float(r["iters_per_s"]) for r in rows if r.get("iters_per_s") not in ("", None)]
    return sorted(rates)[len(rates) // 2] if rates else float("nan")


def describe(result: StageResult) -> str:
    return json.dumps({"out": str(result.out), "iterations": result.iterations,
                       "val_epe": None if math.isnan(result.val_epe) else round(result.val_epe, 4),
                       "wall_seconds": round(result.wall_seconds, 1)})
