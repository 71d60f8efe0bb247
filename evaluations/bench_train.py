"""Training speed per stage, and whether the synthetic generator keeps up.

For each stage architecture (with the sub-networks that stage freezes) this
times, in one run on one device: making a batch (synthetic generation +
FlowNet augmentation + crop) and one training step (forward, multi-scale loss,
backward, Adam step). It prints samples/s of both and their ratio (the
generator must be ≥ 3× faster than the step that consumes it)::

    python -m evaluations.bench_train --width 0.375 --batch-size 8 --device cpu --threads 2
    python -m evaluations.bench_train --width 0.375 --batch-size 16 --device cuda

Timings are medians of ``--runs`` after ``--warmup`` untimed runs; CUDA timings
synchronise the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import torch

from flownet2_core.cli import image_size
from flownet2_core.models.builders import build_model
from flownet2_core.train.losses import MultiScaleEPE
from flownet2_core.train.schedules import SCHEDULES, make_optimizer
from flownet2_core.distributed import Dist
from flownet2_core.train.sources import make_source
from flownet2_core.train.trainer import StageConfig, training_step

#: (stage label, architecture, frozen sub-networks) as the recipes train them.
STAGES = (
    ("C", "FlowNet2-C", ()),
    ("CS (C frozen)", "FlowNet2-CS", ("flownetc",)),
    ("CSS (C, S1 frozen)", "FlowNet2-CSS", ("flownetc", "flownets_1")),
    ("S", "FlowNet2-S", ()),
    ("SS (S0 frozen)", "FlowNet2-SS", ("flownets_0",)),
    ("SD", "FlowNet2-SD", ()),
)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=float, default=0.375)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=image_size, default=(384, 512), help="generated W×H (default 512x384)")
    p.add_argument("--crop", type=image_size, default=(320, 448), help="training crop W×H (default 448x320)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--stages", nargs="+", default=None, help="labels' first word: C CS CSS S SS SD")
    p.add_argument("--json", default=None)
    return p


def _timed(fn, device: torch.device, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu":  # as the trainer does (flownet2_core.memory)
        from flownet2_core.memory import reuse_freed_memory

        reuse_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    size, crop = args.size, args.crop  # (H, W)
    cfg = StageConfig(size=size, crop=crop, batch_size=args.batch_size, precision=args.precision,
                      channels_last=args.channels_last)
    source = make_source(replace(cfg, data="chairs", device=str(device)), device, Dist())
    counter = iter(range(10**9))

    def make_batch():
        return source.batch(next(counter))

    t_gen = _timed(make_batch, device, args.runs, args.warmup)
    fixed = make_batch()
    rows = []
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"width {args.width:g}, batch {args.batch_size} × {crop[1]}×{crop[0]} (generated {size[1]}×{size[0]}), "
          f"{args.precision}{', channels-last' if cfg.channels_last else ''}, torch {torch.__version__}")
    print(f"batch generation + augmentation: {t_gen * 1e3:.1f} ms = {args.batch_size / t_gen:.1f} samples/s")
    print(f"{'stage':<20} {'step ms':>9} {'it/s':>7} {'samples/s':>10} {'generator ÷ step':>17}")
    for label, arch, frozen in STAGES:
        if args.stages and label.split()[0] not in args.stages:
            continue
        model = build_model(arch, width=args.width).to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        for n in frozen:
            getattr(model, n).requires_grad_(False)
        model.train()
        opt = make_optimizer(model.parameters(), SCHEDULES["long"])
        loss_fn = MultiScaleEPE()

        def step():
            training_step(model, model, fixed, loss_fn, opt, cfg)
            opt.step()

        t_step = _timed(step, device, args.runs, args.warmup)
        row = {"stage": label, "arch": arch, "step_ms": t_step * 1e3, "its": 1 / t_step,
               "samples_s": args.batch_size / t_step, "gen_ratio": t_step / t_gen}
        rows.append(row)
        print(f"{label:<20} {t_step * 1e3:>9.1f} {1 / t_step:>7.2f} {args.batch_size / t_step:>10.1f} "
              f"{t_step / t_gen:>16.1f}×")
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"gen_ms": t_gen * 1e3, "rows": rows, "device": str(device),
                       "width": args.width, "batch": args.batch_size, "crop": crop}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
