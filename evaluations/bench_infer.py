"""FlowNet2 inference speed on this machine, against the convolution rate and a baseline.

One run, interleaved round by round (every case once per round, medians over the rounds, so
a change in machine load hits every case alike):

* the plain 3×3, 256→256 convolution rate (fp32 and bf16, NCHW and channels-last), at the
  1/8 resolution of the largest size: what the hardware gives a convolution here;
* our FlowNet2 / -CSS / -S through the inference runner: fp32 NCHW, fp32 channels-last (the
  CPU default: weights packed once for oneDNN, LeakyReLU fused, :mod:`flownet2_core.onednn`),
  bf16 channels-last (``precision="bf16"``: autocast, flow heads in float32, packed too);
  glibc reuses freed memory in this process (:mod:`flownet2_core.memory`, as the runner sets
  it), for the baseline too;
* the baseline: :mod:`evaluations.reference_flownet2`, a plain forward pass written from
  the SPEC as the port's model code runs (NCHW fp32, pure-PyTorch special ops), on the
  same weights; its flow is checked against ours before timing.

Printed per case: median ms, GFLOP/s (FLOPs from ``bench_models.count_flops``, the
correlation counted once), the fraction of the fp32 channels-last conv rate, the speed-up
over the baseline and of bf16 over fp32. ``--accuracy`` adds bf16's mean EPE change against
fp32 on scikit-image's real stereo pair, with the weights trained here and with seeded ones.

    python -m evaluations.bench_infer --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from evaluations.bench_models import add_size_arguments, count_flops
from evaluations.reference_flownet2 import reference_forward
from flownet2_core.inference import FlowNet2Inference
from flownet2_core.models import build_model

ARCHS = ("FlowNet2", "FlowNet2-CSS", "FlowNet2-S")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS, help="networks (default all three)")
    add_size_arguments(p)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians over them)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--no-baseline", action="store_true", help="skip the reference baseline")
    p.add_argument("--accuracy", action="store_true", help="also bf16's EPE change on a real pair")
    p.add_argument("--json", help="write the rows here")
    return p


def _conv_case(fmt: str, dtype: torch.dtype, h: int, w: int):
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.randn(1, 256, h, w)
    if fmt == "channels-last":
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if dtype != torch.float32:
        conv, x = conv.to(dtype), x.to(dtype)
    flops = 2 * 256 * 256 * 9 * h * w
    return (lambda: conv(x)), flops


def _model_cases(arch: str, h: int, w: int, width: float, baseline: bool) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, width=width).eval()
    g = torch.Generator().manual_seed(1)
    a, b = (torch.rand(1, 3, h, w, generator=g) * 255 for _ in range(2))
    runners = {
        "fp32 NCHW": FlowNet2Inference(model, device="cpu", channels_last=False),
        "fp32 channels-last": FlowNet2Inference(build_model(arch, width=width).eval(), device="cpu",
                                                channels_last=True),
        "bf16 channels-last": FlowNet2Inference(build_model(arch, width=width).eval(), device="cpu",
                                                precision="bf16", channels_last=True),
    }
    for r in list(runners.values())[1:]:
        r.model.load_state_dict(model.state_dict())
    cases = {k: (lambda r=r: r._forward(a, b)) for k, r in runners.items()}
    if baseline:
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        with torch.inference_mode():
            ref, ours = reference_forward(arch, sd, a, b), runners["fp32 NCHW"]._forward(a, b)
        diff = float((ref - ours).abs().max())
        if diff > 1e-3 * max(1.0, float(ours.abs().max())):
            raise SystemExit(f"{arch} {w}×{h}: the baseline's flow differs from ours by {diff:.3g} px")
        cases["baseline (reference, fp32 NCHW)"] = lambda: reference_forward(arch, sd, a, b)
    return cases


def main(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    hmax, wmax = max(args.sizes, key=lambda s: s[0] * s[1])
    conv_cases = {}
    for fmt in ("NCHW", "channels-last"):
        for dt, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            conv_cases[f"conv 3×3 256→256 {name} {fmt}"] = _conv_case(fmt, dt, hmax // 8, wmax // 8)
    model_cases, flops = {}, {}
    for arch in args.archs:
        for h, w in args.sizes:
            flops[(arch, h, w)] = count_flops(arch, h, w, args.width)["total_flops"]
            for k, fn in _model_cases(arch, h, w, args.width, not args.no_baseline).items():
                model_cases[(arch, h, w, k)] = fn
    times: dict = {k: [] for k in list(conv_cases) + list(model_cases)}
    with torch.inference_mode():
        for fn, _ in conv_cases.values():  # warm-up: oneDNN primitives, allocator
            fn()
        for fn in model_cases.values():
            fn()
        for r in range(args.rounds):
            for k, (fn, _) in conv_cases.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
            for k, fn in model_cases.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    print(f"\n{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"width {args.width:g}, medians of {args.rounds} interleaved rounds")
    print(f"{'case':<44} {'ms':>9} {'GFLOP/s':>8}")
    rate = {}
    for k, (_, f) in conv_cases.items():
        rate[k] = f / med[k] / 1e9
        rows.append({"case": k, "ms": med[k] * 1e3, "gflops": rate[k]})
        print(f"{k:<44} {med[k] * 1e3:>9.2f} {rate[k]:>8.1f}")
    ref_rate = rate["conv 3×3 256→256 fp32 channels-last"]
    print(f"\n{'network':<14} {'W×H':>9} {'case':<32} {'ms':>9} {'GFLOP/s':>8} {'% conv':>7} "
          f"{'× baseline':>10} {'× fp32':>7}")
    for (arch, h, w, k) in model_cases:
        t = med[(arch, h, w, k)]
        g = flops[(arch, h, w)] / t / 1e9
        base = med.get((arch, h, w, "baseline (reference, fp32 NCHW)"))
        fp32 = med[(arch, h, w, "fp32 NCHW")]
        row = {"arch": arch, "size": f"{w}x{h}", "case": k, "ms": t * 1e3, "gflops": g,
               "conv_fraction": g / ref_rate, "speedup_vs_baseline": (base / t) if base else None,
               "speedup_vs_fp32_nchw": fp32 / t, "runs_ms": [x * 1e3 for x in times[(arch, h, w, k)]]}
        rows.append(row)
        print(f"{arch:<14} {w:>4}×{h:<4} {k:<32} {t * 1e3:>9.0f} {g:>8.1f} {100 * g / ref_rate:>6.0f}% "
              f"{(base / t) if base else float('nan'):>9.2f}× {fp32 / t:>6.2f}×")
    if args.accuracy:
        rows += accuracy(print)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


def accuracy(log=print) -> list[dict]:
    """bf16's mean EPE change against fp32 on scikit-image's motorcycle pair: the weights
    trained here (the package's file) and a seeded FlowNet2 at width 1/4."""
    import numpy as np

    from flownet2_core.data.datasets import load_motorcycle
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, get_method, learned_method_reason

    pair = load_motorcycle()
    out = []
    nets = {}
    if learned_method_reason() is None:
        nets[DEFAULT_LEARNED_METHOD] = get_method(DEFAULT_LEARNED_METHOD, device="cpu").runner.model
    torch.manual_seed(0)
    nets["FlowNet2 (seeded, width 1/4)"] = build_model("FlowNet2", width=0.25).eval()
    for name, model in nets.items():
        fp32 = FlowNet2Inference(model, device="cpu")(pair.img1, pair.img2)
        bf16 = FlowNet2Inference(model, device="cpu", precision="bf16", channels_last=True)(pair.img1, pair.img2)
        d = np.linalg.norm(bf16 - fp32, axis=-1)
        row = {"case": f"bf16 vs fp32, {name}, motorcycle {pair.img1.shape[1]}×{pair.img1.shape[0]}",
               "mean_epe_change": float(d.mean()), "max": float(d.max()),
               "mean_flow": float(np.linalg.norm(fp32, axis=-1).mean())}
        out.append(row)
        log(f"{row['case']}: mean EPE change {row['mean_epe_change']:.4f} px (max {row['max']:.2f}; "
            f"mean |flow| {row['mean_flow']:.2f} px)")
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
