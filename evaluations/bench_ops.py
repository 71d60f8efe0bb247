"""Speed of the compiled ops against their pure-PyTorch twins and torch's own kernels.

Prints, in one run, median milliseconds of forward and forward+backward (the
implementations of one op and shape timed in interleaved rounds, so that load
from elsewhere slows them alike) for

* correlation at FlowNetC's shapes for 384×512 and 448×1024 inputs
  (1×256×48×64 and 1×256×56×128 features), twin vs compiled, with the
  compiled forward's GFLOP/s next to a torch convolution's rate measured in
  the same run (the machine's attainable dense rate);
* resample2d (warp) of a 3-channel image at full resolution, against
  ``F.grid_sample`` on a precomputed grid, the twin, and compiled;
* channel norm at full resolution, against ``torch.linalg.vector_norm``,
  the twin, and compiled;

then checks the targets of issue 4. Run::

    .venv/bin/python -m evaluations.bench_ops --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from flownet2_core.ops import (
    backend,
    channel_norm_compiled,
    channel_norm_twin,
    correlation_compiled,
    correlation_twin,
    resample2d_compiled,
    resample2d_twin,
)

CORR_SHAPES = [(1, 256, 48, 64), (1, 256, 56, 128)]  # FlowNetC at 384×512 and 448×1024
IMAGE_SHAPES = [(1, 3, 384, 512), (1, 3, 448, 1024)]
CORR_FLOPS_PER_OUTPUT = 2  # × C: one multiply-add per channel


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per case (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--ops", default="correlation,resample2d,channel_norm",
                        help="comma-separated subset of the ops to time")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: this process's CPU time, which "
                             "other processes on a shared machine disturb less (use with "
                             "--threads 1 for the cost per core)")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


_CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}


def median_ms(fns: list[Callable[[], object]], runs: int, warmup: int, device: str,
              clock: str = "wall") -> list[float]:
    """Median milliseconds of each function, timed in interleaved rounds.

    Each round runs every function once, so a burst of load from elsewhere on a
    shared machine slows all of them alike and their ratios stay meaningful.
    """
    now = _CLOCK[clock]
    for _ in range(warmup):
        for fn in fns:
            fn()
    _sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            start = now()
            fn()
            _sync(device)
            ts.append(now() - start)
    return [statistics.median(ts) * 1e3 for ts in times]


def _fwd(fn, *inputs):
    def run():
        with torch.no_grad():
            return fn(*inputs)
    return run


def _fwd_bwd(fn, *inputs):
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    grad = torch.randn_like(fn(*leaves).detach())

    def run():
        for t in leaves:
            t.grad = None
        fn(*leaves).backward(grad)
    return run


def conv_rate(args) -> float:
    """GFLOP/s of a 3×3, 256→256 convolution on 1×256×48×64 (the machine's dense rate)."""
    x = torch.randn(1, 256, 48, 64, device=args.device)
    w = torch.randn(256, 256, 3, 3, device=args.device)
    [ms] = median_ms([_fwd(lambda a, b: F.conv2d(a, b, padding=1), x, w)], args.runs,
                     args.warmup, args.device, args.clock)
    flops = 2 * 256 * 256 * 9 * 48 * 64
    return flops / (ms * 1e-3) / 1e9


def bench(args) -> dict:
    torch.set_num_threads(args.threads)
    dev = args.device
    gen = torch.Generator().manual_seed(0)
    rows = []

    def add(op, shape, impl, fwd_ms, fb_ms, note=""):
        rows.append({"op": op, "shape": "×".join(map(str, shape)), "impl": impl,
                     "forward_ms": round(fwd_ms, 2), "forward_backward_ms": round(fb_ms, 2),
                     "note": note})

    timing = dict(runs=args.runs, warmup=args.warmup, device=dev, clock=args.clock)
    wanted = set(args.ops.split(","))
    rate = conv_rate(args)
    for shape in CORR_SHAPES if "correlation" in wanted else ():
        f1 = torch.randn(shape, generator=gen).to(dev)
        f2 = torch.randn(shape, generator=gen).to(dev)
        flops = CORR_FLOPS_PER_OUTPUT * 441 * shape[0] * shape[1] * shape[2] * shape[3]
        impls = (("twin (matmul)", correlation_twin), ("compiled", correlation_compiled))
        ms = median_ms([run for _, fn in impls for run in (_fwd(fn, f1, f2), _fwd_bwd(fn, f1, f2))],
                       **timing)
        for i, (impl, _) in enumerate(impls):
            fwd, fb = ms[2 * i], ms[2 * i + 1]
            add("correlation", shape, impl, fwd, fb,
                f"{flops / (fwd * 1e-3) / 1e9:.0f} GFLOP/s forward")
    for shape in IMAGE_SHAPES if "resample2d" in wanted else ():
        b, c, h, w = shape
        img = torch.rand(shape, generator=gen).to(dev)
        flow = (torch.randn(b, 2, h, w, generator=gen) * 8).to(dev)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                                torch.arange(w, dtype=torch.float32), indexing="ij")
        grid = torch.stack((2 * (xs.to(dev) + flow[:, 0]) / (w - 1) - 1,
                            2 * (ys.to(dev) + flow[:, 1]) / (h - 1) - 1), dim=-1)

        def grid_sample(i, g):
            return F.grid_sample(i, g, mode="bilinear", padding_mode="border", align_corners=True)

        impls = (("grid_sample (grid given)", grid_sample, grid), ("twin", resample2d_twin, flow),
                 ("compiled", resample2d_compiled, flow))
        ms = median_ms([run for _, fn, arg in impls
                        for run in (_fwd(fn, img, arg), _fwd_bwd(fn, img, arg))], **timing)
        for i, (impl, _, _) in enumerate(impls):
            add("resample2d", shape, impl, ms[2 * i], ms[2 * i + 1])
    for shape in IMAGE_SHAPES if "channel_norm" in wanted else ():
        x = torch.randn(shape, generator=gen).to(dev)

        def vector_norm(t):
            return torch.linalg.vector_norm(t, dim=1, keepdim=True)

        impls = (("vector_norm", vector_norm), ("twin", channel_norm_twin),
                 ("compiled", channel_norm_compiled))
        ms = median_ms([run for _, fn in impls for run in (_fwd(fn, x), _fwd_bwd(fn, x))],
                       **timing)
        for i, (impl, _) in enumerate(impls):
            add("channel_norm", shape, impl, ms[2 * i], ms[2 * i + 1])
    return {"rows": rows, "conv_gflops": rate, "threads": args.threads, "device": dev,
            "clock": args.clock,
            "backend": backend(), "torch": torch.__version__, "machine": platform.processor()
            or platform.machine()}


def _lookup(rows, op, shape, impl):
    for r in rows:
        if r["op"] == op and r["shape"] == "×".join(map(str, shape)) and r["impl"] == impl:
            return r
    raise KeyError((op, shape, impl))


def targets(result) -> list[tuple[str, bool]]:
    """Issue 4's speed targets (of the ops timed), each with whether it holds."""
    rows, checks = result["rows"], []
    timed = {r["op"] for r in rows}
    for shape, limit in zip(CORR_SHAPES, (10.0, 25.0)):
        if "correlation" not in timed:
            break
        comp = _lookup(rows, "correlation", shape, "compiled")
        twin = _lookup(rows, "correlation", shape, "twin (matmul)")
        f, fb = comp["forward_ms"], comp["forward_backward_ms"]
        checks.append((f"correlation {comp['shape']}: forward {f:.1f} ms <= {limit:.0f} ms", f <= limit))
        checks.append((f"correlation {comp['shape']}: {twin['forward_ms'] / f:.1f}x the twin's "
                       "forward (>= 3x)", twin["forward_ms"] >= 3 * f))
        checks.append((f"correlation {comp['shape']}: forward+backward {fb:.1f} ms = "
                       f"{fb / f:.2f}x forward (<= 3x)", fb <= 3 * f))
    for op, ref in (("resample2d", "grid_sample (grid given)"), ("channel_norm", "vector_norm")):
        for shape in IMAGE_SHAPES if op in timed else ():
            comp, base = _lookup(rows, op, shape, "compiled"), _lookup(rows, op, shape, ref)
            for key, label in (("forward_ms", "forward"), ("forward_backward_ms", "fwd+bwd")):
                checks.append((f"{op} {comp['shape']} {label}: {comp[key]:.2f} ms vs {ref} "
                               f"{base[key]:.2f} ms", comp[key] <= base[key]))
    return checks


def format_table(result) -> str:
    lines = ["| op | shape | implementation | forward ms | forward+backward ms | note |",
             "|---|---|---|---:|---:|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['op']} | {r['shape']} | {r['impl']} | {r['forward_ms']:.2f} | "
                     f"{r['forward_backward_ms']:.2f} | {r['note']} |")
    return "\n".join(lines)


def main(args) -> dict:
    info = backend()["correlation"]
    if info["implementation"] != "compiled":
        print(f"warning: compiled ops unavailable ({info['reason']}); 'compiled' rows time the twin")
    result = bench(args)
    print(f"device {result['device']}, {result['threads']} threads, torch {result['torch']}, "
          f"{args.runs} runs (median, {args.clock} clock)")
    print(format_table(result))
    print(f"\nconv 3x3 256->256 on 1x256x48x64: {result['conv_gflops']:.0f} GFLOP/s")
    for shape in CORR_SHAPES if "correlation" in args.ops.split(",") else ():
        r = _lookup(result["rows"], "correlation", shape, "compiled")
        flops = CORR_FLOPS_PER_OUTPUT * 441 * shape[0] * shape[1] * shape[2] * shape[3]
        gflops = flops / (r["forward_ms"] * 1e-3) / 1e9
        print(f"correlation {r['shape']}: {flops / 1e9:.2f} GFLOP, {gflops:.0f} GFLOP/s = "
              f"{100 * gflops / result['conv_gflops']:.0f}% of the conv rate")
    print("\ntargets (issue 4):")
    result["targets"] = []
    for text, ok in targets(result):
        print(f"  [{'met' if ok else 'NOT met'}] {text}")
        result["targets"].append({"target": text, "met": ok})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
