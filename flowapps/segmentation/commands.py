"""``flownet2 segment track|cluster|eval|run``: motion segmentation from the command line.

Each sub-subcommand is a thin shell over a plain function of :mod:`flowapps.segmentation`
(:func:`~.pipeline.track_sequence`, :func:`~.pipeline.cluster_trajectories` +
:func:`~.pipeline.write_segmentation`, :func:`~.moseg_eval.evaluate_shot` /
:func:`~.moseg_eval.evaluate_all`, :func:`~.pipeline.segment_sequence`).

``segment eval`` is a drop-in for the official FBMS-59 programs, with their arguments and
relative-path rules (paths in list files are relative to the working directory)::

    flownet2 segment eval SHOTS_LIST all|10|50|200 TRACKS_LIST [THRESHOLD]   # MoSegEvalAllPR
    flownet2 segment eval SHOT_Def.dat TRACKS.dat [THRESHOLD]                 # MoSegEvalPR

It writes the same ``…Numbers.txt`` files and prints the same lines, followed by the summary;
``--json`` prints a machine-readable summary instead. As in the official programs the
threshold defaults to 0.9 when omitted (FBMS results are usually reported with 0.75).
"""

from __future__ import annotations

import argparse
import json
import sys

from flownet2_core.cli import Command, non_negative_float, positive_int, probability
from flownet2_core.commands import add_method_arguments

__all__ = ["SEGMENT", "add_arguments", "run"]

_MODES = ("all", "10", "50", "200")
_EVAL_DESCRIPTION = """\
A drop-in for the official FBMS-59 evaluation programs (MoSegEval v2.0, precision/recall):

  flownet2 segment eval SHOTS_LIST all|10|50|200 TRACKS_LIST [THRESHOLD]   (MoSegEvalAllPR)
  flownet2 segment eval SHOT_Def.dat TRACKS.dat [THRESHOLD]                 (MoSegEvalPR)

Same list files and path rules (list entries relative to the working directory), same
...Numbers.txt files written beside each track file and beside the track list, same stdout
lines, then the summary. THRESHOLD defaults to 0.9 as in the official programs; FBMS results
are usually reported with 0.75."""


def _frames(text: str):
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 10, 50, 200, all or a frame count >= 2, got {text!r}")
    return value


def _tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequence", required=True, metavar="DIR",
                   help="FBMS-layout sequence folder (frames; GroundTruth/<seq>Def.dat optional)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--frames", type=_frames, default="all",
                   help="use the first 10, 50, 200 or all frames (default all)")
    p.add_argument("--sampling", type=positive_int, default=8, help="trajectory grid step in px (default 8)")
    p.add_argument("--texture-threshold", type=non_negative_float, default=0.125,
                   help="seed only where the structure tensor's smaller eigenvalue reaches this "
                        "fraction of its frame mean (0 = everywhere; default 0.125)")
    p.add_argument("--fb-alpha1", type=non_negative_float, default=0.01,
                   help="forward-backward check: a track ends where |w_f + w_b|^2 >= A1 (|w_f|^2 + |w_b|^2) "
                        "+ A2; this sets A1 (default 0.01, as Sundaram et al.)")
    p.add_argument("--fb-alpha2", type=non_negative_float, default=0.5,
                   help="forward-backward check: the constant A2 of that test, px^2 (default 0.5, as Sundaram et al.)")
    p.add_argument("--flow-cache", metavar="DIR", help="flow cache folder (default OUTPUT/flow/METHOD)")
    add_method_arguments(p, also="or `exact` for generated sequences that carry their ground-truth flow")


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", choices=("multicut", "spectral"), default="multicut",
                   help="multicut (Keuper et al. 2015, default) or spectral clustering")
    p.add_argument("--multicut", choices=("gaec+kl", "gaec"), default="gaec+kl",
                   help="multicut solver (default GAEC then Kernighan-Lin with joins)")
    p.add_argument("--num-clusters", type=positive_int, help="spectral: number of clusters (default: eigengap)")
    p.add_argument("--min-length", type=positive_int, default=5, help="shortest trajectory clustered, frames (default 5)")
    p.add_argument("--label-short", action="store_true",
                   help="give shorter trajectories their nearest neighbours' label instead of leaving them out")
    p.add_argument("--min-cluster-size", type=non_negative_float, default=0.004,
                   help="merge smaller clusters into a neighbour (fraction of trajectories if < 1; default 0.004)")
    p.add_argument("--prior", type=probability, default=0.5, help="multicut prior β (default 0.5)")
    p.add_argument("--threshold", type=probability, default=0.75,
                   help="F-measure threshold for extracted objects in the evaluation (default 0.75)")
    p.add_argument("--no-images", action="store_true", help="skip label maps and overlays")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``segment`` subcommand's own subcommands."""
    sub = parser.add_subparsers(dest="segment_command", metavar="STEP", required=True)

    p = sub.add_parser("track", help="flow (cached) and point trajectories of a sequence")
    _tracking_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_segment=_run_track)

    p = sub.add_parser("cluster", help="segment trajectories written by `segment track`")
    p.add_argument("trajectories", metavar="TRAJ.npz", help="trajectories.npz from `segment track`")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: the file's folder)")
    p.add_argument("--sequence", metavar="DIR", help="sequence folder (default: the one recorded in the file)")
    _cluster_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_segment=_run_cluster)

    p = sub.add_parser("eval", help="FBMS-59 evaluation, a drop-in for the official MoSegEval v2.0",
                       description=_EVAL_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("args", nargs="+", metavar="ARG",
                   help="SHOTS_LIST all|10|50|200 TRACKS_LIST [THRESHOLD]  or  DEF.dat TRACKS.dat [THRESHOLD]")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the official lines")
    p.add_argument("--no-write", action="store_true", help="do not write the …Numbers.txt files")
    p.add_argument("--print-matrices", action="store_true",
                   help="print each shot's cost matrix and assignment on stderr, as the official program does")
    p.set_defaults(_segment=_run_eval)

    p = sub.add_parser("run", help="track, cluster, write label maps/overlays and evaluate, in one go")
    _tracking_args(p)
    _cluster_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_segment=_run_run)


def run(args: argparse.Namespace) -> int:
    return int(args._segment(args) or 0)


# ---------------------------------------------------------------- steps
def _options(args):
    from .affinities import PairwiseModel
    from .pipeline import SegmentationOptions

    return SegmentationOptions(
        sampling=getattr(args, "sampling", 8), texture_threshold=getattr(args, "texture_threshold", 0.125),
        fb_alpha1=getattr(args, "fb_alpha1", 0.01), fb_alpha2=getattr(args, "fb_alpha2", 0.5),
        min_length=getattr(args, "min_length", 5), label_short=getattr(args, "label_short", False),
        cluster=getattr(args, "cluster", "multicut"), multicut=getattr(args, "multicut", "gaec+kl"),
        num_clusters=getattr(args, "num_clusters", None),
        min_cluster_size=getattr(args, "min_cluster_size", 0.004),
        model=PairwiseModel(prior=getattr(args, "prior", 0.5)))


def _method_options(args) -> dict:
    """The method's options, checked against what it takes (``exact`` takes none of them)."""
    from flownet2_core.commands import method_options, parse_options

    if args.method == "exact":
        return parse_options(args.option)
    return method_options(args)


def _check_outputs(args, sequence) -> None:
    """No output folder that is, or contains, the sequence folder (before any work)."""
    from flownet2_core.io import check_outputs

    check_outputs([sequence], folders=[args.output])


def _run_track(args) -> int:
    from .pipeline import cached_flow_fields, track_sequence

    _check_outputs(args, args.sequence)
    cached = cached_flow_fields(args.sequence, args.output, args.method, args.frames, args.flow_cache)
    traj = track_sequence(args.sequence, args.output, args.method, frames=args.frames, options=_options(args),
                          flow_cache=args.flow_cache, method_options=_method_options(args),
                          progress=not args.quiet)
    _say_reused(cached)
    print(f"{len(traj)} trajectories on {traj.num_frames} frames "
          f"(mean length {traj.lengths.mean() if len(traj) else 0:.1f}) -> {args.output}/trajectories.npz")
    return 0


def _print_result(track_file, labels, evaluation, out) -> None:
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    print(f"{int((labels >= 0).sum())} labelled trajectories in {k} clusters -> {track_file}")
    if evaluation is not None:
        e = evaluation
        print(f"density {float(e.density):.3f} %  precision {float(e.precision):.4f}  recall {float(e.recall):.4f}  "
              f"F {float(e.f_measure):.4f}  extracted {e.extracted_objects} of {e.visible_objects} objects "
              f"(F > {float(e.threshold):.2f}) -> {out}/evaluation.json")


def _run_cluster(args) -> int:
    from pathlib import Path

    from .fbms import read_sequence
    from .pipeline import cluster_trajectories, write_segmentation
    from .trajectories import load_trajectories

    traj, meta = load_trajectories(args.trajectories)
    seq_dir = args.sequence or meta.get("sequence")
    if not seq_dir:
        raise ValueError(f"{args.trajectories}: no sequence folder recorded; pass --sequence")
    out = Path(args.output) if args.output else Path(args.trajectories).parent
    from flownet2_core.io import check_outputs

    check_outputs([seq_dir], folders=[out])
    seq = read_sequence(seq_dir)
    labels = cluster_trajectories(traj, _options(args), progress=not args.quiet)
    track_file, evaluation = write_segmentation(seq, traj, labels, out, method=meta.get("method", ""),
                                                threshold=args.threshold, images=not args.no_images,
                                                progress=not args.quiet)
    _print_result(track_file, labels, evaluation, out)
    return 0


def _threshold(text: str) -> float:
    # atof semantics: the official programs accept any leading number.
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"threshold must be a number, got {text!r}") from None


def _run_eval(args) -> int:
    from flownet2_core.io import atomic_write_text

    from .moseg_eval import evaluate_all, evaluate_shot, numbers_path

    a = list(args.args)
    if len(a) >= 3 and a[1] in _MODES or (len(a) >= 2 and a[1].isdigit()):
        if len(a) not in (3, 4):
            raise ValueError("usage: segment eval SHOTS_LIST all|10|50|200 TRACKS_LIST [THRESHOLD]")
        thr = _threshold(a[3]) if len(a) == 4 else 0.9
        lines: list[str] = []
        log = (lambda s: None) if args.json else print
        res = evaluate_all(a[0], a[1], a[2], thr, write_numbers=not args.no_write,
                           log=lambda s: (lines.append(s), log(s)))
        if args.print_matrices:
            for s in res.shots:
                print(s.matrices_text(), end="", file=sys.stderr)
        if args.json:
            print(json.dumps(res.as_dict(), indent=1))
        else:
            print()
            if not args.no_write:
                print(f"summary file: {res.summary_path()}")
            print(res.summary_text(), end="")
        return 0
    if len(a) not in (2, 3):
        raise ValueError("usage: segment eval SHOTS_LIST all|10|50|200 TRACKS_LIST [THRESHOLD] "
                         "or segment eval DEF.dat TRACKS.dat [THRESHOLD]")
    thr = _threshold(a[2]) if len(a) == 3 else 0.9
    res = evaluate_shot(a[0], a[1], thr)
    if args.print_matrices:
        print(res.matrices_text(), end="", file=sys.stderr)
    if not args.no_write:
        atomic_write_text(numbers_path(a[1]), res.numbers_text())
    if args.json:
        print(json.dumps({"def_file": res.def_file, "track_file": res.track_file,
                          "threshold": float(f"{float(res.threshold):.6g}"), **res.printed()}, indent=1))
    else:
        if not args.no_write:
            print(f"output file: {numbers_path(a[1])}")
        print(res.numbers_text(), end="")
    return 0


def _say_reused(cached: tuple[int, int]) -> None:
    """A re-run says how much flow it reused from the cache (none computed when all was)."""
    have, total = cached
    if have:
        print(f"flow: {have} of {total} fields reused from the cache, {total - have} computed")


def _run_run(args) -> int:
    from .pipeline import cached_flow_fields, segment_sequence

    _check_outputs(args, args.sequence)
    cached = cached_flow_fields(args.sequence, args.output, args.method, args.frames, args.flow_cache)
    res = segment_sequence(args.sequence, args.output, args.method, frames=args.frames, options=_options(args),
                           threshold=args.threshold, flow_cache=args.flow_cache,
                           method_options=_method_options(args), images=not args.no_images,
                           progress=not args.quiet)
    _say_reused(cached)
    print(f"{res.num_trajectories} trajectories on {res.num_frames} frames ({res.method})")
    _print_result(res.track_file, res.labels, res.evaluation, args.output)
    return 0


SEGMENT = Command(
    help="motion segmentation: trajectories, multicut, FBMS-59 evaluation",
    add_arguments=add_arguments,
    run=run,
    description=("Motion segmentation of FBMS-layout sequences: point trajectories from any flow "
                 "method, multicut (or spectral) clustering, label maps and overlays, and the "
                 "FBMS-59 evaluation (a port of the official MoSegEval v2.0)."),
)
