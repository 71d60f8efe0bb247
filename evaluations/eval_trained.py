"""The trained model against the classical methods: held-out synthetic pairs and a real stereo pair.

Held-out set: pairs of every synthetic kind (chairs, things, sdhom) at 384×512
made with another seed and the ``test`` textures (photographs the training
never saw), quantised to uint8 as any image file would be. Reported per
method: EPE over all pixels, over each kind, by ground-truth displacement
(< 1, 1–10, > 10 px), and the time per pair on this machine; then EPE on
scikit-image's real stereo pair (``motorcycle-small`` and ``motorcycle``:
disparity as horizontal flow, valid pixels), never used for tuning::

    python -m evaluations.eval_trained --methods flownet2-sss-synth dis farneback -o docs/trained_model.md
    python -m evaluations.eval_trained --methods flownet2-sss-synth --weights runs/x/model.pth.tar …

``-O method:key=value`` passes an option to one method (``-O dis:preset=fast``);
DIS runs with ``preset=medium`` unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from flownet2_core.cli import image_size
from flownet2_core.commands import parse_options
from flownet2_core.data.datasets import load_motorcycle
from flownet2_core.methods import get_method
from flownet2_core.train.synthetic import KINDS, SyntheticFlow

RANGES = (("< 1 px", 0.0, 1.0), ("1–10 px", 1.0, 10.0), ("> 10 px", 10.0, float("inf")))
SEED = 20_261_204


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["flownet2-sss-synth", "dis", "farneback"])
    p.add_argument("--weights", help="weights for the FlowNet2 method(s) instead of their default file")
    p.add_argument("-O", dest="options", action="append", default=[], metavar="METHOD:KEY=VALUE")
    p.add_argument("--pairs", type=int, default=16, help="pairs per synthetic kind (16)")
    p.add_argument("--size", type=image_size, default=(384, 512), help="pair size W×H (default 512x384)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--out", help="write the Markdown table here (and .json beside it)")
    return p


def held_out_pairs(pairs: int, size: tuple[int, int]) -> list[dict]:
    """The held-out synthetic set: ``pairs`` per kind, uint8 images, exact flow."""
    out = []
    for kind in KINDS:
        gen = SyntheticFlow(kind, size=size, batch_size=4, seed=SEED, split="test", texture_count=32)
        for i in range(-(-pairs // 4)):
            b = gen.batch(i)
            for j in range(min(4, pairs - 4 * i)):
                out.append({"kind": kind,
                            "img1": b["img1"][j].permute(1, 2, 0).round().to(torch.uint8).numpy(),
                            "img2": b["img2"][j].permute(1, 2, 0).round().to(torch.uint8).numpy(),
                            "gt": b["flow"][j].permute(1, 2, 0).numpy()})
    return out


def _method(name: str, weights: str | None, options: list[str]):
    opts = {"preset": "medium"} if name == "dis" else {}
    for o in options:
        m, _, kv = o.partition(":")
        if m == name:
            opts.update(parse_options([kv]))  # typed as the CLI's -O: zoom=1.25 is a float
    if weights and name.startswith("flownet2"):
        opts["weights"] = weights
    return get_method(name, **opts), opts


def evaluate_method(method, pairs: list[dict]) -> dict:
    method(pairs[0]["img1"], pairs[0]["img2"])  # warm-up (model load, first-call costs)
    epe_all, by_kind, by_range, times = [], {k: [] for k in KINDS}, {r[0]: [] for r in RANGES}, []
    for p in pairs:
        t = time.perf_counter()
        flow = method(p["img1"], p["img2"])
        times.append(time.perf_counter() - t)
        e = np.linalg.norm(flow - p["gt"], axis=2)
        mag = np.linalg.norm(p["gt"], axis=2)
        epe_all.append(e.mean())
        by_kind[p["kind"]].append(e.mean())
        for label, lo, hi in RANGES:
            sel = (mag >= lo) & (mag < hi)
            if sel.any():
                by_range[label].append((e[sel].sum(), sel.sum()))
    row = {"epe": float(np.mean(epe_all)), "seconds_per_pair": float(np.median(times))}
    row.update({f"epe_{k}": float(np.mean(v)) for k, v in by_kind.items()})
    row.update({f"epe {label}": float(sum(s for s, _ in v) / max(sum(n for _, n in v), 1))
                for label, v in by_range.items()})
    for name, k in (("motorcycle-small", 4), ("motorcycle", 1)):
        f = load_motorcycle(k)
        flow = method(f.img1, f.img2)
        row[f"epe {name}"] = float(np.linalg.norm(flow - f.gt, axis=2)[f.valid].mean())
    return row


def to_markdown(rows: dict[str, dict], pairs: int, size: tuple[int, int]) -> str:
    cols = (["epe"] + [f"epe_{k}" for k in KINDS] + [f"epe {r[0]}" for r in RANGES]
            + ["epe motorcycle-small", "epe motorcycle", "seconds_per_pair"])
    heads = (["EPE all"] + [f"EPE {k}" for k in KINDS] + [f"EPE {r[0]}" for r in RANGES]
             + ["motorcycle-small", "motorcycle", "s / pair"])
    lines = [f"Held-out synthetic pairs: {pairs} per kind at {size[1]}×{size[0]} (seed {SEED}, test "
             "textures); EPE in px over all pixels; displacement ranges by ground truth. "
             "Real stereo pair: EPE over valid pixels. Time: median per pair on this machine.", "",
             "| method | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for name, r in rows.items():
        vals = [f"{r[c]:.3f}" if c != "seconds_per_pair" else f"{r[c]:.3f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    size = args.size  # (H, W)
    pairs = held_out_pairs(args.pairs, size)
    rows = {}
    for name in args.methods:
        method, opts = _method(name, args.weights, args.options)
        label = name + "".join(f" {k}={v}" for k, v in opts.items() if k != "weights")
        rows[label] = evaluate_method(method, pairs)
        print(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[label].items()), flush=True)
    table = to_markdown(rows, args.pairs, size)
    print(table)
    if args.out:
        Path(args.out).write_text(table)
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    from flownet2_core.cli import run_script

    args = get_args_parser().parse_args()
    raise SystemExit(run_script("eval_trained", lambda: main(args) and 0))
