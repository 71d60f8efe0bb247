"""Forward time and FLOPs of every FlowNet2 builder (random weights: numerics don't matter here).

    PYTHONPATH=. python evaluations/bench_models.py --threads 2 --runs 3
    PYTHONPATH=. python evaluations/bench_models.py --models FlowNet2-S FlowNet2 --sizes 1024x448 --device cuda

Times are the median of ``--runs`` timed forward passes after one warm-up, in
eval mode under ``torch.inference_mode()``, batch 1. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no compute):
it counts convolutions and matrix products. The correlation layer is reported
apart: the pure-PyTorch twin computes it with batched matrix products that are
counted but do 3.4–5.5× the necessary work (tiles of 32 columns compared
with 72, plus padding of the last tile), so the table gives the analytic
cost, 2·441·C·H·W for FlowNetC's cost volume, instead; compiled kernels will
not be counted at all until they register a FLOP formula. The header line
names the implementation each op dispatched to. Warps, channel norms and interpolations are not counted (they
are tiny next to the convolutions).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from flownet2_core.cli import image_size
from flownet2_core.models import BUILDERS, build_model
from flownet2_core.ops import implementations

# Stand-alone or stacked FlowNetC instances per architecture (each has one correlation).
_N_CORRELATIONS = {"FlowNet2": 1, "FlowNet2-C": 1, "FlowNet2-CS": 1, "FlowNet2-CSS": 1,
                   "FlowNet2-S": 0, "FlowNet2-SD": 0, "FlowNet2-SS": 0, "FlowNet2-SSS": 0}


def add_size_arguments(p: argparse.ArgumentParser) -> None:
    """``--sizes`` (W×H, the two benchmark sizes by default) and ``--width`` of the FlowNet2
    benchmarks (this one and ``bench_infer``)."""
    p.add_argument("--sizes", nargs="+", type=image_size, default=[(256, 320), (448, 1024)],
                   help="W×H sizes, multiples of 64 (default 320x256 1024x448)")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (1.0: the released networks)")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="FlowNet2 forward time and FLOPs", add_help=add_help)
    parser.add_argument("--models", nargs="+", default=list(BUILDERS), choices=list(BUILDERS),
                        help="architectures to measure (default: all)")
    add_size_arguments(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-time", action="store_true", help="FLOPs only")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return parser


def _check_size(hw: tuple[int, int]) -> tuple[int, int]:
    if hw[0] % 64 or hw[1] % 64:
        raise ValueError(f"sizes must be multiples of 64, got {hw[1]}×{hw[0]}")
    return hw


def count_flops(arch: str, h: int, w: int, width: float) -> dict[str, float]:
    """FLOPs (2 × multiply-adds) of one forward pass, batch 1, by operator family."""
    with torch.device("meta"):
        model = build_model(arch, width=width).eval()
        a = torch.zeros(1, 3, h, w)
        b = torch.zeros(1, 3, h, w)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(a, b)
    totals = counter.get_flop_counts().get("Global", {})
    conv = sum(v for k, v in totals.items() if "convolution" in str(k))
    bmm = sum(v for k, v in totals.items() if "bmm" in str(k))
    counted_corr = sum(v for k, v in totals.items() if "correlation" in str(k))  # our op's registered count
    other = sum(totals.values()) - conv - bmm - counted_corr
    c_feat = round(256 * width)
    corr = _N_CORRELATIONS[arch] * 2 * 441 * c_feat * (h // 8) * (w // 8)
    # The correlation once: the counter sees it when the op's FLOP formula is registered (it is,
    # in flownet2_core.ops); the analytic count is used either way, never added to it.
    return {"conv_flops": float(conv), "twin_corr_bmm_flops": float(bmm), "other_counted_flops": float(other),
            "corr_counted_flops": float(counted_corr), "corr_analytic_flops": float(corr),
            "total_flops": float(conv + other + corr)}


def time_forward(arch: str, h: int, w: int, width: float, runs: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    model = build_model(arch, width=width).to(device).eval()
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(1, 3, h, w, generator=g) * 255).to(device)
    b = (torch.rand(1, 3, h, w, generator=g) * 255).to(device)
    times = []
    with torch.inference_mode():
        for i in range(runs + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first pass is a warm-up
                times.append(time.perf_counter() - t0)
    return times


def main(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = [_check_size(s) for s in args.sizes]
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"device {device}, threads {torch.get_num_threads()}, width {args.width}, "
          f"median of {args.runs} runs")
    print("# ops: " + ", ".join(f"{op} → {impl.rsplit('.', 1)[-1]}" for op, impl in implementations().items()))
    print("| model | params | size | median ms | runs ms | GFLOPs total | conv | correlation (analytic) "
          "| twin bmm counted |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|")
    rows = []
    for arch in args.models:
        with torch.device("meta"):
            params = sum(p.numel() for p in build_model(arch, width=args.width).parameters())
        for h, w in sizes:
            flops = count_flops(arch, h, w, args.width)
            times = [] if args.no_time else time_forward(arch, h, w, args.width, args.runs, device)
            med = statistics.median(times) * 1e3 if times else float("nan")
            row = {"model": arch, "params": params, "size": f"{w}x{h}", "device": str(device),
                   "threads": args.threads, "median_ms": med, "runs_ms": [t * 1e3 for t in times], **flops}
            rows.append(row)
            print(f"| {arch} | {params:,} | {w}×{h} | {med:,.0f} | "
                  f"{', '.join(f'{t * 1e3:,.0f}' for t in times)} | {flops['total_flops'] / 1e9:,.1f} | "
                  f"{flops['conv_flops'] / 1e9:,.1f} | {flops['corr_analytic_flops'] / 1e9:,.2f} | "
                  f"{flops['twin_corr_bmm_flops'] / 1e9:,.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
