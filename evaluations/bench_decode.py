"""Video decoding for flow stacks: OpenCV (what the pipeline uses) vs PyAV.

Writes a generated 320×240 clip (the UCF101 size) with three codecs (UCF101
itself is XVID in .avi), decodes it to RGB with both libraries, checks they
return the same frames and prints the median ms per frame. PyAV is not a
dependency of the project: ``pip install av`` to run this.

    python -m evaluations.bench_decode --frames 100
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--runs", type=int, default=5)
    return p


def main(args) -> None:
    try:
        import av
    except ImportError:
        raise SystemExit("PyAV is not installed: pip install av") from None

    from flowapps.stacks.mini_ucf101 import render_video, video_scene
    from flownet2_core.io import read_video, write_video

    def av_decode(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])

    frames = render_video(video_scene("MoveRight", 1, 1, size=(240, 320), num_frames=args.frames),
                          args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.frames} frames 320×240, median of {args.runs} runs, ms per frame (RGB out)")
        print(f"{'codec':<7}{'opencv':>9}{'pyav':>9}{'pyav/opencv':>13}  same frames")
        for fourcc, ext in (("MJPG", "avi"), ("XVID", "avi"), ("mp4v", "mp4")):
            path = Path(tmp) / f"clip_{fourcc}.{ext}"
            write_video(path, frames, fourcc=fourcc)
            a, b = read_video(path), av_decode(path)
            same = a.shape == b.shape and bool(np.array_equal(a, b))
            ms = {}
            for name, fn in (("opencv", read_video), ("pyav", av_decode)):
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    fn(path)
                    times.append(time.perf_counter() - t0)
                ms[name] = 1000 * statistics.median(times) / len(a)
            print(f"{fourcc:<7}{ms['opencv']:>9.3f}{ms['pyav']:>9.3f}{ms['pyav'] / ms['opencv']:>12.2f}×  {same}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
