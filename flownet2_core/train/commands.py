"""``flownet2 train``: one stage, or a whole recipe of the paper.

::

    flownet2 train stage -o runs/c --arch FlowNet2-C --data chairs --schedule long --scale 0.001
    flownet2 train stage -o runs/cs --arch FlowNet2-CS --init runs/c/model.pth.tar --freeze flownetc
    flownet2 train recipe flownet2-css-ft-sd -o runs/css --width 0.375 --scale 0.001
    torchrun --nproc_per_node 2 -m flownet2_core train recipe flownet2-css -o runs/css …

Re-running the same command resumes (a stage from its ``state.pt``, a recipe
from its first unfinished stage).
"""

from __future__ import annotations

import argparse

from ..cli import Command, UserError, image_size, non_negative_int, positive_float, positive_int

__all__ = ["TRAIN"]




def _root(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="output folder (resumed when it holds a run)")
    p.add_argument("--width", type=positive_float, default=1.0, help="channel width; 0.375 = the paper's lowercase nets")
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="multiply every schedule milestone and the stop by this (0.001: 1.2M → 1200)")
    p.add_argument("--iterations", type=positive_int, help="stop after this many (milestones scaled along)")
    p.add_argument("--lr", type=positive_float, help="initial learning rate (default: the schedule's)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="global batch (all processes); default 8")
    p.add_argument("--size", type=image_size, default=(384, 512), help="generated/loaded W×H (default 512x384)")
    p.add_argument("--crop", type=image_size, default=(320, 448),
                   help="training crop W×H, multiples of 64 (default 448x320)")
    p.add_argument("--val-size", type=image_size, default=(384, 512), help="validation W×H (default 512x384)")
    p.add_argument("--val-batches", type=non_negative_int, default=4, help="held-out batches of 4 pairs (4)")
    p.add_argument("--val-every", type=positive_int, default=500, help="validate every N iterations (default 500)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="write state.pt and model.pth.tar every N iterations (default 500)")
    p.add_argument("--no-augment", action="store_true", help="centre crops only")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (data, initialisation)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast (loss and weights stay float32); ~1.5× faster on CPUs with "
                        "AVX-512 BF16 and on GPUs")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC weights and inputs: same numbers, faster convolutions (default on)")
    p.add_argument("--device", help="default: cuda:LOCAL_RANK when available, else cpu")
    p.add_argument("--root", type=_root, action="append", default=[], metavar="NAME=PATH",
                   help="root folder of a dataset on disk used in --data")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("synthetic data (chairs, things, sdhom)")
    g.add_argument("--texture-count", type=positive_int, default=64,
                   help="textures drawn from the bundled photographs and procedures (64)")
    g.add_argument("--motion-scale", type=positive_float,
                   help="displacements × this (default: in proportion to --size against 512x384)")
    g.add_argument("--pool", type=non_negative_int, default=0,
                   help="generated pairs kept and reused, each seen under new augmentation "
                        "(0: a fresh batch every iteration)")
    g.add_argument("--refresh", type=positive_int, default=2, help="new pool pairs per iteration (2)")


def _check_paths(args: argparse.Namespace, stage_folders: list[str]) -> None:
    """Refuse, before any work, a run that would write over what it reads: a dataset root
    as (or inside) the output folder, or an ``--init`` checkpoint among a stage's files."""
    from pathlib import Path

    from ..io import check_outputs

    check_outputs([path for _, path in args.root], folders=[args.out])
    files = [Path(f) / name for f in stage_folders
             for name in ("model.pth.tar", "state.pt", "log.csv", "curves.png")]
    from .trainer import split_init

    inits = [split_init(e)[1] for e in getattr(args, "init", [])]
    check_outputs(inits, files=files)
    for init in inits:  # before any folder is made
        if not Path(init).is_file():
            raise UserError(f"--init {init}: no such checkpoint file")


def _base(args: argparse.Namespace):
    from .trainer import StageConfig

    return StageConfig(width=args.width, scale=args.scale, iterations=args.iterations, lr=args.lr,
                       batch_size=args.batch_size, size=args.size, crop=args.crop,
                       val_size=args.val_size, val_batches=args.val_batches, val_every=args.val_every,
                       checkpoint_every=args.checkpoint_every, augment=not args.no_augment,
                       seed=args.seed, precision=args.precision, device=args.device,
                       channels_last=args.channels_last,
                       roots=dict(args.root), progress=not args.no_progress,
                       texture_count=args.texture_count, motion_scale=args.motion_scale,
                       pool=args.pool, refresh=args.refresh)


def _stage_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--arch", default="FlowNet2-C",
                   help="FlowNet2-C, -S, -SD, -CS, -CSS, -SS, -SSS or FlowNet2")
    p.add_argument("--data", default="chairs",
                   help="synthetic kinds chairs|things|sdhom, datasets given with --root, or a mix "
                        "such as things:2,sdhom:6")
    p.add_argument("--schedule", choices=("short", "long", "fine"), default="long", help="the paper's S_short, S_long or S_fine (milestones scaled with --scale/--iterations)")
    p.add_argument("--loss", choices=("epe", "robust"), default="epe", help="epe: the multi-scale EPE; robust: EPE^0.4, the ft-sd loss")
    p.add_argument("--freeze", action="append", default=[], help="sub-network to keep fixed (repeat)")
    p.add_argument("--init", action="append", default=[],
                   help="checkpoint to start from (repeat); flownets_K=PATH starts that stacked "
                        "FlowNetS from PATH's last FlowNetS: a FlowNet2-S (extra input channels "
                        "zero) or a stack's last refining net")
    p.add_argument("--time-budget", type=positive_float, help="seconds: fix the stop from the measured speed")


def _stage_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .trainer import train_stage

    _check_paths(args, [args.out])
    cfg = replace(_base(args), arch=args.arch, data=args.data, schedule=args.schedule, loss=args.loss,
                  freeze=tuple(args.freeze), init=tuple(args.init), time_budget=args.time_budget)
    train_stage(cfg, args.out, name=args.out.rstrip("/").split("/")[-1] or "stage")
    return 0


def _recipe_arguments(p: argparse.ArgumentParser) -> None:
    from .recipes import RECIPES

    p.add_argument("recipe", choices=sorted(RECIPES), help="the paper's recipe to run stage by stage (see `flownet2 train recipe --help`)")
    _common(p)
    p.add_argument("--stages", nargs="+", help="run only these stages (default: all, in order)")
    p.add_argument("--budget", action="append", default=[], type=_root, metavar="STAGE=SECONDS",
                   help="time budget of a stage: its stop is fixed from the measured speed")
    p.add_argument("--data-map", action="append", default=[], type=_root, metavar="KIND=DATASET",
                   help="train on a dataset on disk instead of a synthetic kind (with --root)")
    p.add_argument("--init", action="append", default=[],
                   help="checkpoint every stage starts from (repeat), e.g. a model trained earlier; "
                        "the recipe's own warm starts are loaded after it and take precedence")


def _recipe_run(args: argparse.Namespace) -> int:
    from .recipes import run_recipe

    try:
        budgets = {k: float(v) for k, v in args.budget}
    except ValueError:
        raise UserError("--budget: expected STAGE=SECONDS") from None
    from pathlib import Path

    from .recipes import RECIPES

    _check_paths(args, [str(Path(args.out) / stage) for stage, _ in RECIPES[args.recipe]])
    run_recipe(args.recipe, _base(args), args.out, budgets=budgets,
               data_map=dict(args.data_map), stages=args.stages, init=tuple(args.init))
    return 0


def _add(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="train_command", required=True, metavar="{stage,recipe}")
    s = sub.add_parser("stage", help="train one network on one data source")
    _stage_arguments(s)
    s.set_defaults(train_run=_stage_run)
    r = sub.add_parser("recipe", help="run a paper recipe stage by stage (resumable)")
    _recipe_arguments(r)
    r.set_defaults(train_run=_recipe_run)


def _run(args: argparse.Namespace) -> int:
    from ..distributed import leave_process_group

    try:
        return args.train_run(args)
    finally:
        leave_process_group()  # under torchrun: every rank shuts the group down cleanly


TRAIN = Command(help="train FlowNet2 networks the paper's way (stages, recipes)", add_arguments=_add,
                run=_run, description=__doc__)
