"""``flownet2 action train|test|fuse|report``: the CLI over :mod:`flowapps.action`.

Each subcommand is a thin shell around a plain function: :func:`.train.train`,
:func:`.evaluate.test_model`, :func:`.fusion.fuse`, :func:`.report.write_report`.
"""

from __future__ import annotations

import argparse
import os

from flownet2_core.cli import Command, probability

from . import ARCHS

__all__ = ["ACTION", "main"]


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stacks", required=True, metavar="DIR",
                   help="rawframes folder from `flownet2 stacks extract` (or mmaction2's)")
    p.add_argument("--modality", required=True, choices=("rgb", "flow"),
                   help="rgb: spatial stream (one frame); flow: temporal stream (L flow fields)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="run folder (re-run to resume)")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="UCF101 split 1, 2 or 3 (its train list from the stacks folder)")
    p.add_argument("--train-list", metavar="FILE", help="annotation list instead of the split's "
                   "ucf101_train_split_K_rawframes[_flow].txt")
    p.add_argument("--val-list", metavar="FILE", help="list for --val-every (default: the split's test list)")
    p.add_argument("--num-classes", type=int, help="default: largest label + 1")
    p.add_argument("--recipe", choices=("tsn", "simonyan"),
                   help="a published recipe's settings as defaults (options given here still win): tsn = "
                        "Temporal Segment Networks' UCF101 solvers (partial BN, first-conv lr ×5 for flow, "
                        "clip 40/20, 3 segments, scale jitter), simonyan = the original two-stream ConvNets "
                        "(L = 10, mean-flow subtraction); see flowapps/action/recipes.py")
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="resnet18", choices=ARCHS, help="network of the stream (default resnet18; tiny: a small CNN for tests)")
    g.add_argument("--pretrained", metavar="FILE",
                   help="local torchvision ImageNet state dict (flow: cross-modality init); default random init")
    g.add_argument("--dropout", type=float, help="before the classifier (default 0.8 rgb, 0.7 flow)")
    g.add_argument("--partial-bn", action=argparse.BooleanOptionalAction,
                   help="TSN's partial batch norm: only the first BatchNorm layer learns (default off; tsn: on)")
    g = p.add_argument_group("input")
    g.add_argument("--new-length", type=int, help="flow fields per stack L (default 10)")
    g.add_argument("--segments", type=int, help="TSN segments K, averaged (default 1)")
    g.add_argument("--crop-size", type=int, default=224, help="square training and test crop in pixels (default 224)")
    g.add_argument("--multiscale-crop", action=argparse.BooleanOptionalAction,
                   help="TSN multi-scale corner crops (default off; tsn: on)")
    g.add_argument("--scales", type=float, nargs="+",
                   help="multi-scale crop sides as fractions of the short side (default 1 .875 .75 .66)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal flips (classes that are mirror images)")
    g.add_argument("--mean-subtraction", action=argparse.BooleanOptionalAction,
                   help="subtract each flow field's mean vector (default on; tsn: off)")
    g.add_argument("--start-index", type=int, choices=(0, 1), default=1,
                   help="file number of a video's first frame/flow field: 1 (ours, TSN, mmaction2; default) "
                        "or 0 (today's open-mmlab/denseflow: flow_x_00000.jpg)")
    g.add_argument("--bound", type=float,
                   help="flow JPEG range ±px (default: the stacks' manifest.json, else 20)")
    g.add_argument("--repeat", type=int, default=1, help="passes over the videos per epoch (default 1)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="training epochs (default 80; a recipe converts its iterations)")
    g.add_argument("--batch-size", type=int, help="total over all processes (default 64)")
    g.add_argument("--lr", type=float, help="initial SGD learning rate (default 0.01)")
    g.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=float, help="SGD weight decay (default 5e-4)")
    g.add_argument("--schedule", choices=("step", "cosine"),
                   help="learning-rate schedule: step (×gamma at --milestones, default) or cosine")
    g.add_argument("--milestones", type=int, nargs="+", help="step schedule: epochs ×gamma (default 30 60)")
    g.add_argument("--gamma", type=float, help="step schedule: factor at each milestone (default 0.1)")
    g.add_argument("--warmup", type=float, default=0.0, help="linear warm-up epochs")
    g.add_argument("--clip-grad", type=float, help="clip the gradient norm (TSN: 40 rgb, 20 flow)")
    g.add_argument("--first-conv-lr-mult", type=float,
                   help="learning-rate multiplier of the first convolution (default 1; tsn flow: 5)")
    g.add_argument("--bias-lr-mult", type=float,
                   help="learning-rate multiplier of biases and norm parameters (default 1; tsn: 2, no decay)")
    g.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    g.add_argument("--holdout", type=float, default=0.0,
                   help="fraction of training groups held out to choose the fusion weight (e.g. 0.15)")
    g.add_argument("--seed", type=int, default=0, help="random seed (sampling, initialisation)")
    g = p.add_argument_group("runtime")
    g.add_argument("--workers", type=int, default=4, help="data loader processes")
    g.add_argument("--cache-mb", type=float, default=0.0,
                   help="keep decoded videos in memory up to this many MB per process (small datasets)")
    g.add_argument("--val-every", type=int, default=0, help="quick validation every N epochs (0: never)")
    g.add_argument("--device", help="default: cuda:LOCAL_RANK when available, else cpu")
    g.add_argument("--threads", type=int, help="torch.set_num_threads")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_test(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model.pt written by `flownet2 action train`")
    p.add_argument("--stacks", metavar="DIR", help="default: the stacks the model was trained on")
    p.add_argument("--split", type=int, choices=(1, 2, 3), help="default: the model's split")
    p.add_argument("--subset", default="test",
                   help="test (the split's test videos), holdout (the run's held-out training videos), "
                        "or a name for --list")
    p.add_argument("--list", metavar="FILE", help="annotation list to test instead")
    p.add_argument("--positions", type=int, default=25, help="evenly spaced positions per video (default 25)")
    p.add_argument("--crops", type=int, default=10, choices=(1, 5, 10),
                   help="10: corners + centre and their flips (default); 5: no flips; 1: centre")
    p.add_argument("--batch", type=int, default=4, help="positions per forward batch (× crops inputs)")
    p.add_argument("--workers", type=int, default=2, help="data-loader processes")
    p.add_argument("--device", help="cpu, cuda or cuda:K (default: cuda when available)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("-o", "--output", metavar="DIR", help="default: the model's folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _fusion_weight(text: str) -> float | None:
    """A temporal weight in [0, 1], or ``holdout`` (None: choose it on held-out scores)."""
    if text == "holdout":
        return None
    try:
        return probability(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1] or 'holdout', got {text!r}") from None


def _add_fuse(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spatial", required=True, metavar="RUN", help="rgb run folder (scores_test.npz) or score file")
    p.add_argument("--temporal", required=True, metavar="RUN", help="flow run folder or score file")
    p.add_argument("--weight", type=_fusion_weight, default="0.6", metavar="W|holdout",
                   help="temporal weight w in [0, 1] (fused = (1-w)·spatial + w·temporal); default 0.6, "
                        "TSN's RGB : flow = 1 : 1.5 (Simonyan & Zisserman: 0.5); 'holdout': chosen on "
                        "both runs' scores_holdout.npz (our option, not a published protocol)")
    p.add_argument("--aggregate", choices=("softmax", "logits"), default="softmax",
                   help="softmax (default): each stream's per-video mean softmax scores, fused (Simonyan & "
                        "Zisserman); logits: mean raw scores over crops and positions, fused before softmax (TSN)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (fusion.json, fused scores)")


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="RESULT",
                   help="fusion.json / metrics_test.json files or folders holding them (one or more per split)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (report.md, report.csv, per_class.csv, confusion matrices)")
    p.add_argument("--title", default="UCF101 two-stream results", help="title of the report")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action_command", metavar="{train,test,fuse,report}", required=True)
    _add_train(sub.add_parser("train", help="train the spatial (rgb) or temporal (flow) stream",
                              description="Train one stream on rawframes stacks. Re-run the same command "
                                          "to resume; under torchrun the batch is split over processes."))
    _add_test(sub.add_parser("test", help="25 positions × 10 crops test; per-video scores and metrics"))
    _add_fuse(sub.add_parser("fuse", help="weighted late fusion of the two streams' scores (softmax or TSN's logits)"))
    _add_report(sub.add_parser("report", help="per-split and mean tables, CSV + Markdown + confusion PNGs"))


# Options a recipe may set: given on the command line they win; else the recipe's value;
# else the TrainConfig default. (argparse defaults are None so "given" can be told apart.)
_RECIPE_OPTIONS = {"dropout": "dropout", "partial_bn": "partial_bn", "new_length": "new_length",
                   "segments": "num_segments", "scales": "scales", "mean_subtraction": "mean_subtraction",
                   "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "momentum": "momentum",
                   "weight_decay": "weight_decay", "schedule": "schedule", "milestones": "milestones",
                   "gamma": "gamma", "clip_grad": "clip_grad", "first_conv_lr_mult": "first_conv_lr_mult",
                   "bias_lr_mult": "bias_lr_mult"}


def _train_config(args: argparse.Namespace, TrainConfig):
    given = {field: getattr(args, opt) for opt, field in _RECIPE_OPTIONS.items() if getattr(args, opt) is not None}
    if args.multiscale_crop is not None:
        given["crop"] = "multiscale" if args.multiscale_crop else "random"
    if "milestones" in given:
        given["milestones"] = tuple(given["milestones"])
    fixed = dict(stacks=args.stacks, out=args.output, modality=args.modality, split=args.split,
                 train_list=args.train_list, val_list=args.val_list, num_classes=args.num_classes,
                 arch=args.arch, pretrained=args.pretrained, crop_size=args.crop_size, flip=not args.no_flip,
                 start_index=args.start_index, bound=args.bound, warmup_epochs=args.warmup,
                 amp=not args.no_amp, repeat=args.repeat, holdout=args.holdout, seed=args.seed,
                 workers=args.workers, cache_mb=args.cache_mb, val_every=args.val_every, device=args.device,
                 threads=args.threads, progress=not args.no_progress)
    if args.recipe:
        return TrainConfig.from_recipe(args.recipe, **fixed, **given)
    return TrainConfig(**fixed, **given)


def _run(args: argparse.Namespace) -> int:
    cmd = args.action_command
    if cmd == "train":
        from .train import TrainConfig, train

        cfg = _train_config(args, TrainConfig)
        try:
            result = train(cfg)
        finally:
            from flownet2_core.distributed import leave_process_group

            leave_process_group()
        if result.history and result.model_path.exists() and os.environ.get("RANK", "0") == "0":
            print(f"[action train] {result.model_path} ({result.clips_per_second:.1f} clips/s)")
        return 0
    if cmd == "test":
        import torch

        from .evaluate import test_model

        if args.threads:
            torch.set_num_threads(args.threads)
        test_model(args.model, args.stacks, subset=args.subset, list_file=args.list, split=args.split,
                   num_positions=args.positions, crops=args.crops, batch_positions=args.batch,
                   workers=args.workers, device=args.device, out=args.output, progress=not args.no_progress)
        return 0
    if cmd == "fuse":
        from .fusion import fuse

        fuse(args.spatial, args.temporal, weight=args.weight, out=args.output, aggregate=args.aggregate)
        return 0
    from .report import write_report

    write_report(args.inputs, args.output, title=args.title)
    return 0


ACTION = Command(help="two-stream action recognition on UCF101 flow stacks (train, test, fuse, report)",
                 add_arguments=_add_arguments, run=_run,
                 description="Spatial (RGB) and temporal (flow) streams on rawframes stacks: train with SGD "
                             "(torchrun for several processes), test with 25 positions × 10 crops, fuse "
                             "softmax scores, report per split and the 3-split mean.")


def main(argv: list[str] | None = None) -> int:
    """``python -m flowapps.action …``: the same as ``flownet2 action …`` without the
    entry point (used by the proofs to start ``torchrun`` workers)."""
    import os
    import sys

    from flownet2_core.cli import USER_ERRORS, build_parser

    args = build_parser({"action": ACTION}).parse_args(["action", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args._run(args) or 0)
    except USER_ERRORS as exc:
        if os.environ.get("FLOWNET2_DEBUG"):
            raise
        print(f"flownet2 action: error: {exc}", file=sys.stderr)
        return 2
