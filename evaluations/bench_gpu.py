"""FlowNet2 family throughput on a GPU: frames per second by network, size, precision and batch.

What issue 16 asks of a lent GPU: FlowNet2 and each variant at 1024×448 and 320×256, in fp32,
bf16 and fp16, at batch 1 and at the best batch (the batch sizes tried double until memory runs
out or the budget ends). Every case runs through :class:`flownet2_core.inference.FlowNet2Inference`
(the runner the flow commands use) on images already on the device, with seeded weights
(speed does not depend on them), ``cudnn.benchmark`` on, timed with a device synchronise
around each forward; medians over ``--runs``.

Layout: half precisions run channels-last (tensor cores take NHWC without transposes),
float32 NCHW, unless ``--layout`` says otherwise. The cases run network by network in the
order given (FlowNet2 first), so a ``--budget`` cut still leaves the headline rows.

    python -m evaluations.bench_gpu --device cuda --budget 150 --json out.json

On a CPU (for a check of the script itself) fp16 is skipped: the runner offers it on CUDA only.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from flownet2_core.cli import image_size
from flownet2_core.inference import FlowNet2Inference
from flownet2_core.io import atomic_write_text
from flownet2_core.models import build_model

ARCHS = ("FlowNet2", "FlowNet2-CSS", "FlowNet2-CS", "FlowNet2-C", "FlowNet2-S", "FlowNet2-SD")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--sizes", nargs="+", type=image_size, default=[(448, 1024), (256, 320)],
                   help="W×H (default 1024x448 320x256)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"], choices=("fp32", "bf16", "fp16"))
    p.add_argument("--max-batch", type=int, default=32, help="batches 1, 2, 4, … up to this")
    p.add_argument("--layout", choices=("auto", "nchw", "channels-last"), default="auto")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=None, help="seconds: stop starting new cases after this")
    p.add_argument("--json", help="write the rows here")
    return p


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(runner: FlowNet2Inference, batch: int, h: int, w: int, runs: int, warmup: int) -> float:
    """Median seconds of one forward of ``batch`` pairs of (h, w) images already on the device."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = (torch.rand(batch, 3, h, w, generator=g) * 255).to(runner.device)
    b = (torch.rand(batch, 3, h, w, generator=g) * 255).to(runner.device)
    times = []
    for i in range(warmup + runs):
        _sync(runner.device)
        t0 = time.perf_counter()
        runner.predict(a, b)
        _sync(runner.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _out_of_memory(e: Exception) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def main(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu"
    print(f"# {name}, torch {torch.__version__}, width {args.width}, medians of {args.runs} runs")
    print(f"{'network':<13} {'W×H':>9} {'prec':>5} {'layout':>13} {'fps b=1':>8} {'best':>8} {'at b':>5}")
    t_start = time.perf_counter()
    rows = []
    for arch in args.archs:
        torch.manual_seed(0)
        model = build_model(arch, width=args.width).eval()
        for h, w in args.sizes:
            for prec in args.precisions:
                if prec == "fp16" and device.type != "cuda":
                    continue
                if args.budget is not None and time.perf_counter() - t_start > args.budget:
                    print(f"# budget of {args.budget:.0f} s spent: later cases not measured")
                    return _finish(rows, args)
                cl = (prec != "fp32") if args.layout == "auto" else (args.layout == "channels-last")
                # a copy per runner: a bf16/fp16 runner stores the model's convolutions in that type
                runner = FlowNet2Inference(copy.deepcopy(model), device=device, batch_size=1, precision=prec,
                                           channels_last=cl)
                fps = {}
                batch = 1
                while batch <= args.max_batch:
                    runner.batch_size = batch
                    try:
                        fps[batch] = batch / time_case(runner, batch, h, w, args.runs, args.warmup)
                    except (RuntimeError, torch.OutOfMemoryError) as e:
                        if not _out_of_memory(e):
                            raise
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        break
                    batch *= 2
                if not fps:
                    print(f"{arch:<13} {w:>4}×{h:<4} {prec:>5}: out of memory at batch 1")
                    continue
                best = max(fps, key=fps.get)
                row = dict(device=name, arch=arch, width=args.width, size=f"{w}x{h}", precision=prec,
                           layout="channels-last" if cl else "nchw", fps_batch1=round(fps[1], 2),
                           best_batch=best, fps_best=round(fps[best], 2),
                           fps_by_batch={k: round(v, 2) for k, v in fps.items()})
                rows.append(row)
                print(f"{arch:<13} {w:>4}×{h:<4} {prec:>5} {row['layout']:>13} {fps[1]:8.1f} "
                      f"{fps[best]:8.1f} {best:5d}", flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return _finish(rows, args)


def _finish(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
