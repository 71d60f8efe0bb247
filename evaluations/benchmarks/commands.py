"""``flownet2 bench run|report|export|mini``: the benchmark CLI.

Every subcommand calls one plain function:
:func:`~evaluations.benchmarks.runner.run_benchmark`,
:func:`~evaluations.benchmarks.report.render_report`,
:func:`~evaluations.benchmarks.runner.export_submission`,
:func:`~flownet2_core.data.mini.write_mini_all`.

Example::

    flownet2 bench run --dataset sintel-clean --root MPI-Sintel-complete \\
        --method tvl1 --method dis -o results
    flownet2 bench report results          # results/report/report.{md,html}, *.csv
    flownet2 bench export --dataset kitti-2015 --root data_scene_flow --method dis -o kitti_sub
"""

from __future__ import annotations

import argparse

from flownet2_core.cli import Command, UserError, non_negative_int, positive_int
from flownet2_core.commands import parse_options
from flownet2_core.data.names import BENCHMARK_DATASETS as DATASETS

__all__ = ["BENCH"]

_DATASET_ALIASES = {"sintel": "sintel-clean", "kitti": "kitti-2015"}


def _dataset(text: str) -> str:
    name = _DATASET_ALIASES.get(text, text)
    if name not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose from {', '.join(DATASETS)}")
    return name


def _method_args(p: argparse.ArgumentParser, multiple: bool) -> None:
    if multiple:
        p.add_argument("--method", action="append", required=True, dest="methods",
                       help="flow method, repeatable (see `flownet2 methods`)")
    else:
        p.add_argument("--method", required=True, help="flow method (see `flownet2 methods`)")
    p.add_argument("--weights", help="checkpoint for the learned methods (FlowNet2, RAFT)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (the deep methods; classical ones run on the CPU)")
    p.add_argument("-O", "--option", action="append", metavar="KEY=VALUE",
                   help="method constructor option, repeatable (given to every method: each must take it)")


def _options(args, name: str) -> dict:
    """Constructor keywords of method ``name``, checked (one line naming a refused option).

    ``-O`` goes to every method. With one method, ``--weights``/``--device`` go to it as they
    are (the method decides: see :func:`flownet2_core.methods.check_options`); with several
    (``bench run``), each goes to the methods that take it, and is refused only when none does.
    """
    from flownet2_core.methods import check_options, method_accepts

    names = getattr(args, "methods", None) or [args.method]
    opts = parse_options(args.option)
    for key in ("weights", "device"):
        value = getattr(args, key, None)
        if value is None:
            continue
        if len(names) == 1 or method_accepts(name, key):
            opts[key] = value
        elif not any(method_accepts(n, key) for n in names):
            check_options(names[0], {key: value})  # the one-line refusal (device=cpu passes)
    return check_options(name, opts)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", metavar="{run,report,export,mini}", required=True)
    r = sub.add_parser("run", help="evaluate methods on a dataset (resumable)",
                       description="Per-frame EPE/Fl/outliers/AAE and runtime for each method; results "
                                   "are appended to OUT/frames.csv and OUT/runs.json. Re-run to resume.")
    r.add_argument("--dataset", required=True, type=_dataset, help=f"one of {', '.join(DATASETS)} "
                   "(sintel = sintel-clean, kitti = kitti-2015)")
    r.add_argument("--pass", dest="pass_name", choices=("clean", "final", "both"),
                   help="Sintel pass (overrides the dataset's)")
    r.add_argument("--root", help="dataset folder (not needed for motorcycle)")
    r.add_argument("--split", help="train (default), val (chairs default)")
    r.add_argument("-o", "--output", default="bench_results", help="results folder (default bench_results)")
    r.add_argument("--max-frames", type=positive_int, help="first N pairs only")
    r.add_argument("--warmup", type=non_negative_int, default=1, help="untimed calls before timing (default 1)")
    r.add_argument("--save-flows", type=non_negative_int, default=2, help="keep the flow of the first N pairs (galleries)")
    r.add_argument("--no-resume", action="store_true", help="recompute rows already in the results")
    _method_args(r, multiple=True)
    rep = sub.add_parser("report", help="render Markdown/HTML/CSV from a results folder")
    rep.add_argument("results", help="folder written by `bench run`")
    rep.add_argument("-o", "--output", help="report folder (default RESULTS/report)")
    rep.add_argument("--title", default="Optical flow benchmarks", help="title of the report")
    e = sub.add_parser("export", help="write a test-split submission (Sintel .flo tree, KITTI PNGs)")
    e.add_argument("--dataset", required=True, type=_dataset, help="dataset whose official submission layout to write")
    e.add_argument("--root", required=True, help="dataset root folder")
    e.add_argument("-o", "--output", required=True, help="output folder")
    _method_args(e, multiple=False)
    m = sub.add_parser("mini", help="write the miniature benchmark datasets (generated, exact GT)")
    m.add_argument("output", help="folder to write the miniature datasets into")
    m.add_argument("--size", nargs=2, type=positive_int, default=(96, 64), metavar=("W", "H"),
                   help="W H of the generated frames (default 96 64)")


def _run(args: argparse.Namespace) -> int:
    from flownet2_core.data.mini import write_mini_all

    from flownet2_core.io import check_outputs

    from .report import render_report
    from .runner import export_submission, run_benchmark

    if args.bench_command == "run":
        datasets = [args.dataset]
        if args.pass_name:
            if not args.dataset.startswith("sintel"):
                raise UserError("--pass applies to Sintel only")
            datasets = ["sintel-clean", "sintel-final"] if args.pass_name == "both" else [f"sintel-{args.pass_name}"]
        if not args.dataset.startswith("motorcycle") and not args.root:
            raise UserError(f"--root is needed for {args.dataset}")
        check_outputs([args.root, args.weights], folders=[args.output])
        options = {m: _options(args, m) for m in args.methods}  # every method's, before any work
        for ds in datasets:
            run_benchmark(ds, args.root, args.methods, args.output, split=args.split,
                          method_options=options,
                          max_frames=args.max_frames, warmup=args.warmup, save_flows=args.save_flows,
                          resume=not args.no_resume)
        return 0
    if args.bench_command == "report":
        check_outputs([args.results], folders=[args.output])
        paths = render_report(args.results, args.output, title=args.title)
        print(f"report: {paths['html']}  ({paths['md'].name}, {paths['table'].name})")
        return 0
    if args.bench_command == "export":
        check_outputs([args.root, args.weights], folders=[args.output])
        export_submission(args.dataset, args.root, args.method, args.output,
                          options=_options(args, args.method))
        return 0
    roots = write_mini_all(args.output, size=(args.size[1], args.size[0]))  # (H, W)
    for name, root in roots.items():
        print(f"{name}: {root}")
    return 0


BENCH = Command(
    help="flow benchmarks: run methods on Sintel/KITTI/Middlebury/Chairs/HD1K, report, export",
    add_arguments=_add_arguments,
    run=_run,
    description="Evaluate flow methods on benchmark datasets in their published layouts "
                "(run), render Table 4-style reports (report), write test-set submissions "
                "(export), or generate miniature datasets (mini).",
)
