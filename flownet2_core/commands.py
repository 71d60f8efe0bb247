"""The core's subcommands: ``flow``, ``viz``, ``methods``, ``demo``.

Each is a :class:`~flownet2_core.cli.Command` registered in ``pyproject.toml``
under the ``flownet2.commands`` entry-point group; each calls a plain function
(:mod:`flownet2_core.jobs`, :mod:`flownet2_core.methods`,
:mod:`flownet2_core.demo`).
"""

from __future__ import annotations

import argparse

from .cli import Command, UserError, positive_float, positive_int

__all__ = ["FLOW", "VIZ", "METHODS", "DEMO", "WEIGHTS", "parse_options"]


def _value(text: str):
    """'3' → 3, '0.5' → 0.5, 'true' → True, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: list[str] | None) -> dict:
    """``["preset=fast", "threads=2"]`` → ``{"preset": "fast", "threads": 2}``."""
    options = {}
    for item in pairs or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise UserError(f"option {item!r} is not KEY=VALUE")
        options[key.replace("-", "_")] = _value(val)
    return options


def add_method_arguments(p: argparse.ArgumentParser, also: str = "") -> None:
    """``--method``, ``--weights``, ``--device``, ``-O KEY=VALUE``: shared by every
    command that computes flow, with the one default method
    (:data:`flownet2_core.methods.DEFAULT_METHOD`). ``also`` names extra ``--method`` values
    a command accepts (``segment run``'s ``exact``)."""
    from .methods.registry import DEFAULT_METHOD

    p.add_argument("--method", default=DEFAULT_METHOD,
                   help=f"flow method (see `flownet2 methods`){', ' + also if also else ''}; default {DEFAULT_METHOD}")
    p.add_argument("--weights", help="weights file for learned methods (FlowNet2, RAFT)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="FlowNet2 methods: fp32 (default), bf16 (CPU and CUDA: autocast, flow heads in "
                        "float32; speed and accuracy in docs/benchmarks.md) or fp16 (CUDA)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (deep methods; classical methods run on the CPU: "
                                     "cpu is accepted for them, another device refused)")
    p.add_argument("-O", "--option", action="append", metavar="KEY=VALUE",
                   help="method constructor option, repeatable (e.g. -O preset=fast)")


def method_options(args: argparse.Namespace) -> dict:
    """``-O``, ``--weights``, ``--device`` and ``--precision`` as constructor keywords of ``args.method``,
    checked against what that method takes (one line naming a refused option, before any
    work; :func:`flownet2_core.methods.check_options`)."""
    from .methods import check_options

    options = parse_options(args.option)
    for key in ("weights", "device", "precision"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    return check_options(args.method, options)


# ---------------------------------------------------------------- flow
def _flow_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="*", metavar="IMG", help="two images: IMG1 IMG2")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--frames", metavar="DIR", help="a folder of frames: flow between consecutive ones")
    src.add_argument("--video", metavar="FILE", help="a video: flow between consecutive frames")
    p.add_argument("-o", "--output", required=True,
                   help="flow file for a pair (.flo; .png = KITTI 16-bit; .pfm); output folder for --frames/--video")
    p.add_argument("--viz", metavar="PNG", help="colour-coded image of the flow (pair mode)")
    p.add_argument("--no-viz", action="store_true", help="no PNGs beside the .flo files (--frames/--video)")
    p.add_argument("--max-flow", type=positive_float, help="fixed colour scale in pixels (default: per image)")
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="--frames/--video: pairs read and handed to the method together (default 8; "
                        "learned methods run up to as many per forward pass as memory allows)")
    p.add_argument("--max-frames", type=positive_int, help="use only the first N frames of the video or folder")
    p.add_argument("--overwrite", action="store_true", help="recompute pairs whose outputs exist")
    p.add_argument("--accept-partial", action="store_true",
                   help="--video: a video that ends before the frame count its container declares (damaged "
                        "or truncated) keeps the flow of the frames that decode and exits 0, saying so")
    add_method_arguments(p)


def _flow_run(args: argparse.Namespace) -> int:
    from . import jobs
    from .io.video import TruncatedVideoError

    options = method_options(args)
    common = dict(method=args.method, options=options, max_flow=args.max_flow)
    if args.frames or args.video:
        if args.images:
            raise UserError("give either IMG1 IMG2 or --frames/--video, not both")
        if args.viz:
            raise UserError("--viz names the picture of one pair's flow; with --frames/--video a .png is "
                            "written beside each .flo (--no-viz for none)")
        folder = dict(viz=not args.no_viz, overwrite=args.overwrite, batch_size=args.batch_size,
                      max_frames=args.max_frames)
        if args.frames:
            if args.accept_partial:
                raise UserError("--accept-partial is for --video (a folder of frames has no declared count)")
            written = jobs.flow_frames(args.frames, args.output, **common, **folder)
        else:
            try:
                written = jobs.flow_video(args.video, args.output, **common, **folder,
                                          accept_partial=args.accept_partial)
            except TruncatedVideoError as e:
                raise UserError(f"{e}; the flow fields written so far are kept in {args.output}; "
                                "re-run with --accept-partial to accept the decoded part") from None
        kept = f" ({written.skipped} kept from an earlier run)" if written.skipped else ""
        print(f"{len(written)} flow fields in {args.output}{kept}")
        if written.declared is not None:
            print(f"{args.video}: partial video accepted: decoded {len(written) + 1} of the "
                  f"{written.declared} frames its container declares")
        return 0
    if len(args.images) != 2:
        raise UserError(f"need two images (IMG1 IMG2) or --frames/--video; got {len(args.images)} image(s)")
    for flag, given in (("--no-viz", args.no_viz), ("--max-frames", args.max_frames is not None),
                        ("--overwrite", args.overwrite), ("--accept-partial", args.accept_partial)):
        if given:  # a pair always writes -o (and --viz when given): these would do nothing
            raise UserError(f"{flag} is for --frames/--video; a pair writes -o (and --viz if given)")
    flow = jobs.flow_pair(*args.images, args.output, viz=args.viz, **common)
    mag = (flow ** 2).sum(-1) ** 0.5
    print(f"{args.output}: {flow.shape[1]}×{flow.shape[0]}, mean |flow| {mag.mean():.2f} px, max {mag.max():.2f} px")
    return 0


FLOW = Command(
    help="compute optical flow for an image pair, a folder of frames or a video",
    description="Compute optical flow. Pair: flownet2 flow IMG1 IMG2 -o out.flo [--viz out.png]. "
                "Folder/video: flownet2 flow --frames DIR -o OUT_DIR (a .flo and .png per "
                "consecutive pair; finished pairs are skipped on a re-run).",
    add_arguments=_flow_arguments, run=_flow_run,
)


# ---------------------------------------------------------------- viz
def _viz_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", metavar="FILE", help="flow file: .flo, KITTI .png or .pfm")
    p.add_argument("-o", "--output", required=True, help="output image (.png)")
    p.add_argument("--max-flow", type=positive_float, help="fixed colour scale in pixels (default: this field's max)")
    p.add_argument("--legend", action="store_true", help="put the colour-wheel key beside the image")


def _viz_run(args: argparse.Namespace) -> int:
    from .jobs import viz_flow

    img = viz_flow(args.flow, args.output, max_flow=args.max_flow, legend=args.legend)
    print(f"{args.output}: {img.shape[1]}×{img.shape[0]}")
    return 0


VIZ = Command(help="colour-code a flow file (Middlebury colour wheel)",
              add_arguments=_viz_arguments, run=_viz_run)


# ---------------------------------------------------------------- methods
def _methods_run(args: argparse.Namespace) -> int:
    from .methods import available_methods, unavailable_methods

    methods = available_methods()
    unavailable = unavailable_methods()
    width = max(map(len, methods), default=0)
    for name, desc in methods.items():
        why = unavailable.get(name)
        print(f"{name:<{width}}  {desc}" + (f" [unavailable: {why}]" if why else ""))
    return 0


METHODS = Command(help="list the registered flow methods (and why any cannot run as they are)",
                  add_arguments=lambda p: None, run=_methods_run)


# ---------------------------------------------------------------- demo
def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--only", action="append", metavar="SECTION",
                   help="run only these sections (entry-point names, repeatable)")


def _demo_run(args: argparse.Namespace) -> int:
    from .demo import run_demo

    index = run_demo(args.output, only=args.only)
    print(f"demo written: {index}")
    return 0


DEMO = Command(help="run the demo on generated data; writes demo_out/index.html",
               add_arguments=_demo_arguments, run=_demo_run)


# ---------------------------------------------------------------- weights
def _weights_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="weights_command", metavar="{inspect,convert}", required=True)
    i = sub.add_parser("inspect", help="which model and width a checkpoint holds, its parameters and hash, "
                                       "and which registry entry it is")
    i.add_argument("file", metavar="FILE", help="checkpoint (.pth.tar, released or saved by this toolkit)")
    i.add_argument("--json", action="store_true", help="print the whole description as JSON")
    c = sub.add_parser("convert", help="convert original Caffe weights (.caffemodel or .caffemodel.h5); no Caffe needed",
                       description="Convert a <Name>_weights.caffemodel[.h5] of the original FlowNet 2.0 release "
                                   "into this toolkit's checkpoint layout (BGR→RGB flip of the first layers, "
                                   "widths read from the weights).")
    c.add_argument("file", metavar="FILE", help="<Name>_weights.caffemodel or <Name>_weights.caffemodel.h5")
    c.add_argument("-o", "--output", help="output .pth.tar (default <Name>_converted.pth.tar beside FILE)")
    c.add_argument("--prototxt", help="<Name>_deploy.prototxt.template, to check layer order and channel counts")
    c.add_argument("--caffe-conventions", action="store_true",
                   help="mark the checkpoint with Caffe's conventions (align_corners=True upsampling, "
                        "zero-fill warping) instead of the PyTorch port's")


def _weights_run(args: argparse.Namespace) -> int:
    import json

    from .models.checkpoint import inspect_checkpoint

    if args.weights_command == "convert":
        from .io import check_outputs
        from .models.caffe import convert_caffe, converted_filename

        out = args.output or converted_filename(args.file)
        check_outputs([args.file, args.prototxt], files=[out])
        try:
            info = convert_caffe(args.file, out,
                                 prototxt=args.prototxt, caffe_conventions=args.caffe_conventions)
        except ImportError as exc:
            raise UserError(str(exc)) from None
        print(f"{info['out']}: {info['display_name']} ({info['parameters']:,} parameters) "
              f"from {info['format']} file {info['source']} (sha256 {info['source_sha256'][:16]}…)")
        return 0

    info = inspect_checkpoint(args.file)
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True, default=str))
        return 0
    conv = ", ".join(f"{k}={v}" for k, v in info["conventions"].items())
    lines = [
        f"file:        {info['path']} ({info['size_bytes']:,} bytes)",
        f"sha256:      {info['sha256']}",
        f"model:       {info['display_name']} (architecture {info['model']}, width {info['width']:g}"
        f"{', batch norm' if info['batch_norm'] else ''})",
        f"parameters:  {info['parameters']:,} in {info['tensors']} tensors ({', '.join(info['dtypes'])})",
        f"epoch:       {info['epoch']}   best_EPE: {info['best_EPE']}",
        f"conventions: {conv} ({info['conventions_source']})",
    ]
    entry = info.get("entry")
    if entry:
        method = f"; flow method {entry['method']}" if entry["method"] else ""
        lines.append(f"registry:    {entry['name']} ({entry['origin']}{method}): {entry['source']}")
        if (entry["min_size"], entry["zoom"], entry["ensemble"]) != (0, 1.0, 1):
            lines.append(f"runs with:   min_size {entry['min_size']}, zoom {entry['zoom']:g}, ensemble "
                         f"{entry['ensemble']} (its flow method's defaults)")
        if entry["licence"]:
            lines.append(f"licence:     {entry['licence']}")
        if entry["metrics"]:
            lines.append("published:   " + "; ".join(f"{k} {m['value']:.4g} ({m['source']})"
                                                   for k, m in entry["metrics"].items()))
    else:
        lines.append("registry:    no entry (not a file the weights registry describes, or renamed)")
    print("\n".join(lines))
    return 0


WEIGHTS = Command(help="inspect FlowNet2 checkpoints (model, width, parameters, SHA-256, conventions)",
                  add_arguments=_weights_arguments, run=_weights_run)
