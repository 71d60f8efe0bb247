"""Tracking speed: point trajectories on a 200-frame 640×480 sequence at sampling 8, given the flow.

The clip is generated (an FBMS-like scene) and written frame by frame with its exact forward and
backward flow as ``.flo`` files, the way :class:`flowapps.segmentation.FlowStore` caches computed
flow. Only the tracking is timed: reading the cached flow and the frames, seeding (with the
texture test), advection, the three termination tests and recording the points
(:func:`flowapps.segmentation.track_points`). The target is < 30 s.

    python evaluations/bench_tracking.py [--frames 200] [--size 640 480] [--sampling 8] [--workdir DIR]

Prints one JSON line; exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import platform


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"), help="frame size W H")
    p.add_argument("--sampling", type=int, default=8)
    p.add_argument("--workdir", help="keep the generated clip here and reuse it (default: a temporary folder)")
    args = p.parse_args(argv)

    from flowapps.segmentation.proof import tracking_speed

    res = tracking_speed(args.frames, (args.size[1], args.size[0]), args.sampling, args.workdir)
    res.update(benchmark="tracking", target_seconds=30, machine=platform.processor() or platform.machine())
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
