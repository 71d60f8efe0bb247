"""``flownet2 stacks extract|finalize``: the CLI over :mod:`.extract` (imported when a
command runs, so that ``flownet2 --help`` does not load OpenCV and the flow methods)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flownet2_core.cli import Command, UserError, int_range, parse_shard, positive_float, positive_int
from flownet2_core.commands import add_method_arguments, method_options

from .ucf101 import collect_videos

__all__ = ["STACKS"]


def _add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="stacks_command", metavar="{extract,finalize}", required=True)
    e = sub.add_parser("extract", help="extract frames and flow stacks (sharded, resumable)",
                       description="Decode each video, resize, compute flow between consecutive frames "
                                   "and write img_/flow_x_/flow_y_%%05d.jpg per video. Re-run the same "
                                   "command to resume; under torchrun each rank takes a share.")
    e.add_argument("--videos", required=True, metavar="DIR", help="video root (<Class>/v_*.avi)")
    e.add_argument("--splits", metavar="DIR", help="UCF101 split folder (classInd.txt, trainlist0K.txt …)")
    e.add_argument("--list", metavar="FILE", help="instead of --splits: '<relative path> [label]' per line")
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (rawframes per video, manifest.json, annotation lists, failures.txt)")
    size = e.add_mutually_exclusive_group()
    size.add_argument("--size", nargs=2, type=positive_int, metavar=("W", "H"), help="resize frames to W×H")
    size.add_argument("--short-side", type=positive_int, default=256,
                      help="shrink so the short side is at most this (default 256, as denseflow: "
                           "UCF101's 320×240 keeps its size)")
    size.add_argument("--native", action="store_true", help="keep the videos' own size")
    e.add_argument("--upscale", action="store_true",
                   help="also enlarge videos whose short side is below --short-side (scales the flow "
                        "values too; not what denseflow/TSN do)")
    e.add_argument("--bound", type=positive_float, default=20.0, help="flow clipped to ±bound px before quantising (default 20)")
    e.add_argument("--quality", type=int_range(0, 100), default=98,
                   help="flow JPEG quality (default 98: p99 error 1.4 grey steps; 95 gives 3.2)")
    e.add_argument("--rgb-quality", type=int_range(0, 100), default=95, help="RGB frame JPEG quality (default 95)")
    e.add_argument("--flow-format", choices=("jpg", "flo", "npz"), default="jpg",
                   help="jpg: rawframes (default); flo: raw .flo; npz: float16 array per video")
    e.add_argument("--no-rgb", action="store_true", help="do not write img_*.jpg")
    e.add_argument("--batch-size", type=positive_int, default=8, help="flow pairs per method.batch() call")
    e.add_argument("--writers", type=positive_int, default=2, help="JPEG writer threads (default 2)")
    e.add_argument("--shard", metavar="K/N", help="array jobs: do share K (0-based) of N, no finalize")
    e.add_argument("--dry-run", action="store_true", help="print what would be done and an estimate")
    e.add_argument("--accept-partial", action="store_true",
                   help="extract the frames that decode from a video that ends before the frame count its "
                        "container declares (damaged or truncated), marked in the manifest, instead of "
                        "failing it")
    add_method_arguments(e)
    f = sub.add_parser("finalize", help="merge worker records into manifest.json and annotation lists")
    f.add_argument("output", metavar="DIR", help="the stacks folder to finalize")


def _run(args: argparse.Namespace) -> int:
    from .extract import ExtractConfig, estimate, extract, finalize

    if args.stacks_command == "finalize":
        m = finalize(args.output)
        print(f"{args.output}/manifest.json: {m['num_videos']} videos, {m['num_frames']} frames, "
              f"{m['num_flows']} flow fields, {len(m['failures'])} failures")
        return 1 if m["failures"] else 0
    from flownet2_core.io import check_outputs

    check_outputs([args.videos, args.splits, args.list], folders=[args.output])
    if args.upscale and (args.native or args.size):
        raise UserError("--upscale only changes --short-side resizing; with --native or --size it would do nothing")
    cfg = ExtractConfig(method=args.method, options=method_options(args),
                        size=tuple(args.size) if args.size else None,
                        short_side=None if args.native else args.short_side, upscale=args.upscale,
                        bound=args.bound,
                        quality=args.quality, rgb_quality=args.rgb_quality, flow_format=args.flow_format, write_rgb=not args.no_rgb)
    if not Path(args.videos).is_dir():
        raise UserError(f"{args.videos}: video root is not a folder")
    videos = collect_videos(args.videos, args.splits, args.list)
    if args.dry_run:
        est = estimate(videos, args.videos, cfg, batch_size=args.batch_size, writer_threads=args.writers)
        print(f"{est['videos']} videos ({len(est['unreadable'])} unreadable), {est['frames']} frames, "
              f"{est['flow_fields']} flow fields with {cfg.method}")
        for s in est["sizes"]:  # sizes are W×H everywhere
            (sw, sh), (w, h) = s["source"], s["size"]
            kept = "kept" if (sw, sh) == (w, h) else f"resized to {w}×{h}"
            print(f"{s['videos']} video{'s' if s['videos'] != 1 else ''} of {sw}×{sh}: {kept}")
        if est["seconds"] is not None:
            print(f"measured on {est['sample']} as the run does it (batch {args.batch_size}, "
                  f"{args.writers} writers): {1000 * est['seconds_per_field']:.1f} ms per flow field; "
                  f"≈ {est['bytes'] / 1e9:.2f} GB on disk; ≈ {est['seconds'] / 3600:.2f} h on one worker "
                  f"(divide by the number of workers)")
        for rel, msg in est["unreadable"][:5]:
            print(f"unreadable: {rel}: {msg}")
        return 0
    summary = extract(videos, args.videos, args.output, cfg, split_dir=args.splits,
                      shard=parse_shard(args.shard), batch_size=args.batch_size,
                      writer_threads=args.writers, accept_partial=args.accept_partial)
    print(summary.line())
    for rel, decoded, declared in summary.partial:
        print(f"partial (accepted): {rel}: decoded {decoded} of the {declared} frames its container declares")
    for rel, msg in summary.failed:
        print(f"failed: {rel}: {msg}", file=sys.stderr)
    return 1 if summary.failed else 0


STACKS = Command(help="UCF101 frames and flow stacks (rawframes layout), sharded and resumable",
                 add_arguments=_add_arguments, run=_run)
