"""Flow-stack extraction throughput: the whole pipeline vs flow compute alone.

For each method, on generated 320×240 videos (the UCF101 size), prints

* flow alone: frames decoded beforehand, ``method.batch`` over every pair;
* full pipeline: :func:`flowapps.stacks.extract.extract` (decode + flow +
  JPEG encoding + atomic folder writes), wall time;

as flow fields per second, their ratio, and the pipeline's overhead per
field in ms. Usage::

    python -m evaluations.bench_stacks --methods dis tvl1 --videos 4 --frames 25
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path



def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["dis", "tvl1"])
    p.add_argument("--videos", type=int, default=4, help="videos per method")
    p.add_argument("--frames", type=int, default=25, help="frames per video")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--weights", help="checkpoint for flownet2* methods (default: seeded random "
                   "weights saved to a temporary file: timing only, the flow is meaningless)")
    p.add_argument("--device", help="device for flownet2* methods")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave)")
    return p


_RANDOM_WEIGHTS: dict[str, str] = {}


def _options(name: str, args) -> dict:
    opts = {}
    if name.startswith("flownet2"):
        opts["weights"] = args.weights or _random_weights(name)
        if args.device:
            opts["device"] = args.device
    return opts


def _random_weights(name: str) -> str:
    """A seeded randomly initialised checkpoint of the method's network and width (timing only)."""
    if name not in _RANDOM_WEIGHTS:
        import torch

        from flownet2_core.models import build_model, save_checkpoint
        from flownet2_core.weights import weights_for_method

        torch.manual_seed(0)
        entry = weights_for_method(name)
        path = Path(tempfile.mkdtemp(prefix="bench_weights_")) / f"{name}_random.pth.tar"
        save_checkpoint(path, build_model(entry.arch, width=entry.width).eval())
        _RANDOM_WEIGHTS[name] = str(path)
    return _RANDOM_WEIGHTS[name]


def bench_method(name: str, args, root: Path) -> dict:
    from flowapps.stacks.commands import collect_videos
    from flowapps.stacks.extract import ExtractConfig, extract
    from flownet2_core.io import read_video
    from flownet2_core.methods import get_method

    videos = collect_videos(str(root / "videos"), None, str(root / "list.txt"))
    method = get_method(name, **_options(name, args))
    decoded = [read_video(root / "videos" / v.rel) for v in videos]
    method.batch(decoded[0][:2], decoded[0][1:3])  # warm-up: build objects / load weights
    t0 = time.perf_counter()
    fields = 0
    for frames in decoded:
        for s in range(0, len(frames) - 1, args.batch_size):
            e = min(len(frames) - 1, s + args.batch_size)
            method.batch(frames[s:e], frames[s + 1:e + 1])
            fields += e - s
    alone = time.perf_counter() - t0

    out = Path(tempfile.mkdtemp(prefix="bench_stacks_"))
    try:
        cfg = ExtractConfig(method=name, options=_options(name, args), short_side=None)
        t0 = time.perf_counter()
        summary = extract(videos, root / "videos", out, cfg, batch_size=args.batch_size, progress=False)
        full = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert summary.flows == fields and not summary.failed
    return {"method": name, "fields": fields, "alone_fps": fields / alone, "full_fps": fields / full,
            "ratio": alone / full, "overhead_ms": 1000 * (full - alone) / fields}


def main(args) -> list[dict]:
    import os

    import torch

    from flowapps.stacks.mini_ucf101 import render_video, video_scene
    from flownet2_core.io import write_video

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench_stacks_data_"))
    try:
        (root / "videos" / "Clip").mkdir(parents=True)
        lines = []
        for i in range(args.videos):
            scene = video_scene("MoveRight", 1, i + 1, size=(240, 320), num_frames=args.frames)
            name = f"Clip/v_Clip_g01_c{i + 1:02d}.avi"
            write_video(root / "videos" / name, render_video(scene, args.frames))
            lines.append(f"{name} 0\n")
        (root / "list.txt").write_text("".join(lines))
        print(f"{args.videos} videos × {args.frames} frames at 320×240, batch {args.batch_size}, "
              f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
        print(f"{'method':<14}{'fields':>7}{'alone f/s':>11}{'full f/s':>10}{'full/alone':>12}{'overhead ms/field':>19}")
        rows = []
        for name in args.methods:
            r = bench_method(name, args, root)
            rows.append(r)
            print(f"{name:<14}{r['fields']:>7}{r['alone_fps']:>11.2f}{r['full_fps']:>10.2f}"
                  f"{100 * r['ratio']:>11.1f}%{r['overhead_ms']:>19.2f}")
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
