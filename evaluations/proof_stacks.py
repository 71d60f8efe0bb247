"""Full-size proof that flow-stack extraction never loses or corrupts work.

``make proof`` runs this. On a generated mini-UCF101 it compares, byte for
byte, against one uninterrupted single-process run:

1. ``--rounds`` runs SIGKILLed at random points (after a random number of
   further finished videos, plus a random delay so kills land mid-write),
   then one run to completion;
2. a ``torchrun --nproc_per_node 2`` run (gloo, CPU);
3. three ``--shard K/3`` array jobs and a ``finalize`` by hand.

and checks that no temporary folder is left. ``make test`` runs a reduced
version of the same (tests/stacks/test_extract.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=12, help="SIGKILL rounds")
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--method", default="dis")
    p.add_argument("--seed", type=int, default=1)
    return p


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".stacks" not in p.parts and p.name != "manifest.json"}


def main(args) -> bool:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stacks"))
    from test_extract import kill_rounds  # the same kill procedure the tests use

    from flowapps.stacks.commands import collect_videos
    from flowapps.stacks.extract import ExtractConfig, extract
    from flowapps.stacks.mini_ucf101 import write_mini_ucf101

    work = Path(tempfile.mkdtemp(prefix="proof_stacks_"))
    ok = True
    try:
        mini = write_mini_ucf101(work / "ucf", classes=("MoveLeft", "MoveRight", "Expand", "Oscillate"),
                                 num_groups=args.groups, clips_per_group=2, num_frames=args.frames,
                                 size=(96, 128))
        videos = collect_videos(str(mini.video_root), str(mini.split_dir), None)
        n = len(videos) - 1  # the corrupt one never finishes
        ref = work / "ref"
        t0 = time.perf_counter()
        extract(videos, mini.video_root, ref, ExtractConfig(method=args.method, short_side=None),
                split_dir=mini.split_dir, progress=False)
        print(f"reference: {n} videos, {time.perf_counter() - t0:.1f} s")
        want = _tree(ref)

        def check(name: str, out: Path) -> None:
            nonlocal ok
            same = _tree(out) == want
            left = list(out.rglob(".tmp.*"))
            ok &= same and not left
            print(f"{name}: {'identical' if same else 'DIFFERENT'} to the reference "
                  f"({len(want)} files), {len(left)} temporary folders left")

        os.environ["OMP_NUM_THREADS"] = "1"
        kills = work / "kills"
        counts = kill_rounds(mini, kills, rounds=args.rounds, seed=args.seed, n=n)
        print(f"SIGKILL rounds: {len(counts)}; videos recorded after each kill: {counts}")
        subprocess.run([sys.executable, "-m", "flownet2_core", "stacks", "extract", "--videos",
                        str(mini.video_root), "--splits", str(mini.split_dir), "-o", str(kills),
                        "--method", args.method, "--native"], capture_output=True)
        check("killed and resumed", kills)

        dist = work / "torchrun"
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "flownet2_core", "stacks", "extract", "--videos", str(mini.video_root),
                        "--splits", str(mini.split_dir), "-o", str(dist), "--method", args.method, "--native"],
                       capture_output=True)
        check("torchrun, 2 processes (gloo)", dist)

        shards = work / "shards"
        for k in range(3):
            subprocess.run([sys.executable, "-m", "flownet2_core", "stacks", "extract", "--videos",
                            str(mini.video_root), "--splits", str(mini.split_dir), "-o", str(shards),
                            "--method", args.method, "--native", "--shard", f"{k}/3"], capture_output=True)
        subprocess.run([sys.executable, "-m", "flownet2_core", "stacks", "finalize", str(shards)],
                       capture_output=True)
        check("3 array-job shards + finalize", shards)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("stacks proof:", "PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(get_args_parser().parse_args()) else 1)
