"""``flownet2 table5 run|report`` (also ``python -m evaluations.table5 run|report``).

Each subcommand calls one plain function: :func:`~evaluations.table5.runner.run_table5`
and :func:`~evaluations.table5.report.render_report`.

Example::

    flownet2 table5 run -o table5 --method dis --method flownet2 --weights flownet2=FlowNet2.pth \\
        --fbms FBMS-59 --ucf101 UCF101            # resumable: re-run to continue or add methods
    flownet2 table5 report table5                # table5/report/table5.{md,html,csv}
"""

from __future__ import annotations

import argparse

from flownet2_core.cli import (Command, UserError, non_negative_float, non_negative_int, parse_shard,
                               positive_float, positive_int, probability)

from .config import ActionSettings as _A
from .config import SegmentationSettings as _S

__all__ = ["TABLE5", "build_config"]


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UserError(f"{what} wants METHOD=VALUE, got {item!r}")
        out[name] = value
    return out


def _add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="table5_command", metavar="{run,report}", required=True)
    r = sub.add_parser("run", help="run every stage for every method (cached, resumable)",
                       description="Flow, motion segmentation + FBMS-59 evaluation, temporal stream on UCF101 "
                                   "and flow runtime for each method; each (stage, method) is kept in "
                                   "OUT/<stage>/<method>/result.json and skipped when re-run.")
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="run folder")
    m = r.add_argument_group("flow methods")
    m.add_argument("--method", action="append", required=True, dest="methods",
                   help="flow method, repeatable (see `flownet2 methods`; `exact` for generated data)")
    m.add_argument("--weights", action="append", metavar="METHOD=FILE", help="checkpoint of a method, repeatable")
    m.add_argument("--stacks", action="append", metavar="METHOD=DIR",
                   help="finished `flownet2 stacks extract` folder to use for a method (required for exact)")
    m.add_argument("-O", "--option", action="append", metavar="METHOD:KEY=VALUE",
                   help="constructor option of one method, repeatable (e.g. -O dis:preset=fast)")
    m.add_argument("--device", help="device of the deep flow methods (cpu, cuda, cuda:1 …)")
    m.add_argument("--runtime-pairs", type=positive_int, default=10, help="frame pairs timed per method (default 10)")
    r.add_argument("--only", action="append", choices=("segmentation", "action", "runtime"),
                   help="run only these stages (repeatable; default all whose data is given)")
    s = r.add_argument_group("motion segmentation (FBMS-59)")
    s.add_argument("--fbms", metavar="ROOT", help="FBMS-59 root (Trainingset/, Testset/)")
    s.add_argument("--fbms-set", action="append", choices=("Trainingset", "Testset"),
                   help="set(s) to evaluate (default Trainingset, as the paper)")
    s.add_argument("--frames", default=_S.frames, choices=("all", "10", "50", "200"), help="evaluation length in frames: all, 10, 50 or 200 (default all)")
    s.add_argument("--sampling", type=positive_int, default=_S.sampling, help=f"trajectory grid step (default {_S.sampling})")
    s.add_argument("--texture-threshold", type=non_negative_float, default=_S.texture_threshold, help="trajectory seeding: minimum structure-tensor eigenvalue (default 0.125)")
    s.add_argument("--min-length", type=positive_int, default=_S.min_length, help="shortest trajectory clustered, in frames (default 5)")
    s.add_argument("--label-short", action="store_true", help="also label trajectories shorter than --min-length (nearest clustered one)")
    s.add_argument("--cluster", choices=("multicut", "spectral"), default=_S.cluster, help="multicut (the paper's) or spectral clustering")
    s.add_argument("--multicut", choices=("gaec+kl", "gaec"), default=_S.multicut, help="multicut solver: gaec+kl (default) or gaec alone")
    s.add_argument("--num-clusters", type=positive_int, help="spectral clustering: number of clusters (default: chosen)")
    s.add_argument("--min-cluster-size", type=non_negative_float, default=_S.min_cluster_size, help="clusters smaller than this fraction of trajectories are merged (default 0.004)")
    s.add_argument("--prior", type=probability, default=_S.prior, help="multicut: prior probability that two trajectories are cut (default 0.5)")
    s.add_argument("--threshold", type=probability, default=_S.threshold, help="extracted objects: F > this (default 0.75)")
    s.add_argument("--no-images", action="store_true", help="no label maps/overlays (the report loses its strips)")
    a = r.add_argument_group("action recognition (UCF101 temporal stream)")
    a.add_argument("--ucf101", metavar="ROOT", help="UCF101 root (videos/ or UCF-101/, and ucfTrainTestlist/)")
    a.add_argument("--ucf101-videos", metavar="DIR", help="video folder, if not under ROOT")
    a.add_argument("--ucf101-splits", metavar="DIR", help="split folder, if not ROOT/ucfTrainTestlist")
    a.add_argument("--splits", type=int, nargs="+", choices=(1, 2, 3), default=list(_A.splits), help="UCF101 splits to train and test (default 1 2 3)")
    a.add_argument("--arch", default=_A.arch, help="temporal-stream network (default resnet18)")
    a.add_argument("--pretrained", metavar="FILE", help="ImageNet weights file for the network (read locally, never downloaded)")
    a.add_argument("--dropout", type=probability, help="dropout before the classifier (default: the architecture's)")
    a.add_argument("--new-length", type=positive_int, default=_A.new_length, help="flow fields stacked per input, L (default 10)")
    a.add_argument("--crop-size", type=positive_int, default=_A.crop_size, help="square crop in pixels (default 224)")
    a.add_argument("--no-flip", action="store_true", help="no horizontal flips in training (for mirror-image classes)")
    a.add_argument("--epochs", type=positive_int, default=_A.epochs, help="training epochs per split")
    a.add_argument("--batch-size", type=positive_int, default=_A.batch_size, help="total over processes")
    a.add_argument("--lr", type=positive_float, default=_A.lr, help="initial SGD learning rate")
    a.add_argument("--schedule", choices=("step", "cosine"), default=_A.schedule, help="learning-rate schedule: step or cosine")
    a.add_argument("--milestones", type=non_negative_int, nargs="+", default=list(_A.milestones), help="step schedule: epochs where the rate drops")
    a.add_argument("--warmup", type=non_negative_float, default=_A.warmup_epochs, help="linear warm-up epochs")
    a.add_argument("--weight-decay", type=non_negative_float, default=_A.weight_decay, help="SGD weight decay")
    a.add_argument("--repeat", type=positive_int, default=_A.repeat, help="passes over the training videos per epoch")
    a.add_argument("--seed", type=int, default=_A.seed, help="random seed")
    a.add_argument("--positions", type=positive_int, default=_A.positions, help="test positions per video (default 25)")
    a.add_argument("--crops", type=int, choices=(1, 5, 10), default=_A.crops, help="test crops per position: 1, 5 or 10 (default 10)")
    a.add_argument("--short-side", type=positive_int, help="stack extraction size (default: the videos' own)")
    a.add_argument("--workers", type=non_negative_int, default=_A.workers, help="data-loader processes")
    a.add_argument("--cache-mb", type=non_negative_float, default=_A.cache_mb, help="in-memory cache of decoded stacks, MB (default 0)")
    a.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    a.add_argument("--train-device", help="training/testing device (default cuda when available)")
    a.add_argument("--nproc", type=positive_int, default=1, help="train each split under torchrun with N processes")
    r.add_argument("--shard", metavar="K/N",
                   help="array jobs: only share K (0-based) of N of the sequences and of the stack "
                        "extraction; then run once without --shard to evaluate, train and time")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    rep = sub.add_parser("report", help="render table5.md/.html/.csv and plots from a run folder")
    rep.add_argument("run", metavar="RUN", help="folder written by `table5 run`")
    rep.add_argument("-o", "--output", help="report folder (default RUN/report)")


def build_config(args: argparse.Namespace):
    """A :class:`~.config.Table5Config` from ``table5 run`` arguments."""
    from flownet2_core.commands import parse_options
    from flownet2_core.methods import available_methods, check_options, method_accepts

    from .config import EXACT, ActionSettings, MethodSpec, SegmentationSettings, Table5Config

    weights = _pairs(args.weights, "--weights")
    stacks = _pairs(args.stacks, "--stacks")
    options: dict[str, dict] = {}
    for item in args.option or []:
        name, sep, kv = item.partition(":")
        if not sep or not name:
            raise UserError(f"-O wants METHOD:KEY=VALUE, got {item!r}")
        options.setdefault(name, {}).update(parse_options([kv]))
    stray = sorted((set(weights) | set(stacks) | set(options)) - set(args.methods))
    if stray:
        raise UserError(f"options given for {stray[0]!r}, which is not among the --method names")
    known = set(available_methods())
    specs = []
    for name in args.methods:
        if name != EXACT and name not in known:
            raise UserError(f"unknown flow method {name!r}; known: {', '.join(sorted(known))}, {EXACT}")
        opts = dict(options.get(name, {}))
        if name in weights:
            opts["weights"] = weights[name]
        if name != EXACT:
            # --device is the deep methods' (those that take one); -O/--weights must suit their method.
            if args.device and method_accepts(name, "device"):
                opts.setdefault("device", args.device)
            opts = check_options(name, opts)
        specs.append(MethodSpec(name, opts, stacks.get(name)))
    flow_methods = [n for n in args.methods if n != EXACT]
    if args.device and flow_methods and not any(method_accepts(n, "device") for n in flow_methods):
        check_options(flow_methods[0], {"device": args.device})  # the one-line refusal (cpu passes)
    videos = splits = None
    if args.ucf101 or args.ucf101_videos:
        from .config import resolve_ucf101

        v, s = resolve_ucf101(args.ucf101, args.ucf101_videos, args.ucf101_splits)
        videos, splits = str(v), str(s)
    seg = SegmentationSettings(sets=tuple(args.fbms_set or ("Trainingset",)),
                               frames="all" if args.frames == "all" else int(args.frames),
                               sampling=args.sampling, texture_threshold=args.texture_threshold,
                               min_length=args.min_length, label_short=args.label_short, cluster=args.cluster,
                               multicut=args.multicut, num_clusters=args.num_clusters,
                               min_cluster_size=args.min_cluster_size, prior=args.prior,
                               threshold=args.threshold, images=not args.no_images)
    act = ActionSettings(splits=tuple(args.splits), arch=args.arch, pretrained=args.pretrained,
                         dropout=args.dropout, new_length=args.new_length, crop_size=args.crop_size,
                         flip=not args.no_flip, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         schedule=args.schedule, milestones=tuple(args.milestones), warmup_epochs=args.warmup,
                         weight_decay=args.weight_decay, repeat=args.repeat, seed=args.seed,
                         positions=args.positions, crops=args.crops, short_side=args.short_side,
                         workers=args.workers, cache_mb=args.cache_mb, threads=args.threads,
                         device=args.train_device, nproc=args.nproc)
    return Table5Config(out=args.output, methods=tuple(specs), fbms_root=args.fbms, ucf101_videos=videos,
                        ucf101_splits=splits, segmentation=seg, action=act, runtime_pairs=args.runtime_pairs)


def _run(args: argparse.Namespace) -> int:
    if args.table5_command == "run":
        from .runner import HALVES, run_table5

        from flownet2_core.io import check_outputs

        cfg = build_config(args)
        check_outputs([cfg.fbms_root, args.ucf101, cfg.ucf101_videos, cfg.ucf101_splits, args.pretrained,
                       *(spec.stacks for spec in cfg.methods), *(spec.weights for spec in cfg.methods)],
                      folders=[args.output])
        shard = parse_shard(args.shard)
        res = run_table5(cfg, halves=tuple(args.only or HALVES), shard=shard, progress=not args.quiet)
        if shard is not None:
            print(f"table5: shard {shard[0]}/{shard[1]} done ({len(res)} stages worked on); run without "
                  f"--shard to evaluate, train and time")
            return 0
        skipped = sorted(k for k, v in res.items() if v.get("skipped"))
        print(f"table5: {len(res) - len(skipped)} stages run, {len(skipped)} reused -> {args.output} "
              f"(then: table5 report {args.output})")
        return 0
    from flownet2_core.io import check_outputs

    from .report import render_report

    check_outputs([args.run], folders=[args.output])
    paths = render_report(args.run, args.output)
    print(f"report: {paths['html']}  ({paths['md'].name}, {paths['csv'].name})")
    return 0


TABLE5 = Command(
    help="the paper's Table 5: every flow method through motion segmentation (FBMS-59) and action "
         "recognition (UCF101), one report",
    add_arguments=_add_arguments,
    run=_run,
    description="Run each flow method through motion segmentation with the FBMS-59 evaluation and the "
                "UCF101 temporal stream, time it (run; cached and resumable per stage and method), and "
                "render Table 5 with plots and example strips (report).",
)
