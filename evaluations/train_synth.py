"""Train the shipped model: FlowNet2-css (width 3/8) on synthetic data, stage by stage,
then fine-tuned for small displacements (the ft-sd recipe), inside a wall-time budget.

This is ``flownet2 train recipe flownet2-css-ft-sd`` with a time budget split
over the stages (each stage measures its speed after a short warm-up and fixes
its stop, milestones scaled along, so every stage keeps its schedule's shape),
followed by an export of the final weights in float16, split into shards of
at most ``--shard-mb`` (a lent GPU machine returns files of at most 16 MB)::

    python -m evaluations.train_synth -o runs/synth --budget 330 --batch-size 16 --export export/

``flownet2_core.train.export.join_shards`` puts the shards back together.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import time
from pathlib import Path

import torch

from flownet2_core.cli import image_size
from flownet2_core.train.export import export_half
from dataclasses import replace

from flownet2_core.train.recipes import RECIPES, recipe_stages
from flownet2_core.train.trainer import StageConfig, train_stage

#: Share of the budget per stage: the first network learns the most from scratch;
#: stacked stages cost more per iteration (frozen nets still run forward).
SHARES = {"c-chairs": 0.30, "c-things": 0.10, "cs-chairs": 0.17, "cs-things": 0.07,
          "css-chairs": 0.17, "css-things": 0.07, "css-ft-sd": 0.12,
          "s-chairs": 0.40, "s-things": 0.08, "ss-chairs": 0.32, "ss-things": 0.07, "ss-ft-sd": 0.13,
          "sd": 0.10, "fusion": 0.10}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--recipe", default="flownet2-css-ft-sd", choices=sorted(RECIPES))
    p.add_argument("--budget", type=float, required=True, help="seconds of training, all stages")
    p.add_argument("--width", type=float, default=0.375)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=image_size, default=(384, 512), help="generated W×H (default 512x384)")
    p.add_argument("--crop", type=image_size, default=(320, 448), help="training crop W×H (default 448x320)")
    p.add_argument("--val-size", type=image_size, default=(384, 512), help="validation W×H (default 512x384)")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--fine-lr", type=float, default=None,
                   help="start rate of the S_fine stages (things, ft-sd) instead of 1e-5: a short "
                        "run ends its S_long stages far from convergence, where 1e-5 barely moves")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--init", action="append", default=[],
                   help="checkpoint every stage starts from (e.g. the shipped model); the recipe's "
                        "own warm starts take precedence where both fill a sub-network")
    p.add_argument("--export", default=None, help="folder for the float16 shards, logs and summary")
    p.add_argument("--shard-mb", type=float, default=15.0)
    p.add_argument("--texture-count", type=int, default=96)
    p.add_argument("--pool", type=int, default=0, help="synthetic pool size (0: fresh batches)")
    p.add_argument("--refresh", type=int, default=2)
    p.add_argument("--motion-scale", type=float, default=None)
    p.add_argument("--val-batches", type=int, default=4)
    p.add_argument("--require-progress", action="store_true",
                   help="exit 1 unless the best network trained on the first stage's data beats the "
                        "untrained first network's validation EPE by 10 %% or more")
    return p


def main(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    stages = [s for s, _ in RECIPES[args.recipe]]
    shares = {s: SHARES.get(s, 1.0) for s in stages}
    total = sum(shares.values())
    budgets = {s: args.budget * v / total for s, v in shares.items()}
    base = StageConfig(width=args.width, batch_size=args.batch_size, size=args.size,
                       crop=args.crop, val_size=args.val_size, val_every=args.val_every,
                       checkpoint_every=args.val_every, lr=args.lr, precision=args.precision,
                       texture_count=args.texture_count, progress=False, pool=args.pool,
                       refresh=args.refresh, motion_scale=args.motion_scale,
                       val_batches=args.val_batches)
    t0 = time.time()
    results = []
    todo = []
    for stage, cfg, folder in recipe_stages(args.recipe, base, out, budgets, init=tuple(args.init)):
        if args.fine_lr is not None and cfg.schedule == "fine":
            cfg = replace(cfg, lr=args.fine_lr)
        cfg.check()  # every stage's settings before the first one spends the budget
        todo.append((stage, cfg, folder))
    for stage, cfg, folder in todo:
        results.append((stage, train_stage(cfg, folder, name=stage)))
    wall = time.time() - t0
    summary = {"recipe": args.recipe, "width": args.width, "batch_size": args.batch_size,
               "fine_lr": args.fine_lr,
               "crop": f"{args.crop[1]}x{args.crop[0]}", "budget_s": args.budget, "wall_s": round(wall, 1),
               "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__,
               "stages": [{"stage": s, "iterations": r.iterations, "val_epe": r.val_epe,
                           "train_s": round(r.wall_seconds, 1), "its": r.iters_per_second}
                          for s, r in results]}
    print(json.dumps(summary, indent=1))
    if args.require_progress:
        import csv

        def val_epes(stage):
            with open(out / stage / "log.csv") as fh:
                return [float(r["val_epe"]) for r in csv.DictReader(fh) if r["val_epe"]]

        # The stack on the first stage's data (same held-out pairs), from the untrained first
        # network to the best later network trained on that data: a lone FlowNetC from scratch
        # sits on its initial plateau for thousands of iterations (measured: 4.36 → 4.29 px in
        # 2,076; the C+S stack on top of it reached 3.32), so the first stage alone says little.
        data = results[0][0].split("-", 1)[1]
        start = val_epes(results[0][0])[0]
        best_stage, best = min(((s, val_epes(s)[-1]) for s, _ in results if s.endswith("-" + data)),
                               key=lambda x: x[1])
        ok = best <= 0.9 * start
        print(f"[proof] validation EPE on {data}: {start:.3f} px before training → {best:.3f} px after "
              f"{best_stage} ({'fell' if ok else 'did not fall'} by ≥ 10 %)")
        summary["progress_ok"] = ok
    if args.export:
        exp = Path(args.export)
        exp.mkdir(parents=True, exist_ok=True)
        final = results[-1][1].model_path
        shards = export_half(final, exp / "model", shard_mb=args.shard_mb)
        summary["shards"] = [p.name for p in shards]
        with tarfile.open(exp / "logs.tgz", "w:gz") as tar:
            for s, _ in results:
                for name in ("log.csv", "curves.png"):
                    f = out / s / name
                    if f.exists():
                        tar.add(f, arcname=f"{s}/{name}")
        (exp / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    from flownet2_core.cli import run_script

    args = get_args_parser().parse_args()
    raise SystemExit(run_script("train_synth", lambda: 0 if main(args).get("progress_ok", True) else 1))
