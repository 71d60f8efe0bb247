"""Bad inputs tried from the CLI as a new user would, and what each one gets: ``docs/robustness.md``.

Every case is one ``flownet2 …`` command run against a small tree of good and hostile files
(:func:`make_inputs`): a missing or damaged file, a path that would overwrite an input, an
option the method does not take, a number out of range. Each must end with exit status 1 or
2, a last stderr line that names the culprit, no traceback, and its inputs unchanged.
``tests/test_robustness.py`` runs every case with these assertions; this script writes the
table (paths shown relative to the input tree)::

    python -m evaluations.robustness -o docs/robustness.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CASES", "Case", "make_inputs", "run_case", "snapshot", "to_markdown"]


@dataclass(frozen=True)
class Case:
    """``argv`` with ``{d}`` for the input tree; ``must``: texts the error line holds."""

    area: str
    what: str
    argv: tuple[str, ...]
    must: tuple[str, ...] = ()


def _c(area: str, what: str, cmd: str, *must: str) -> Case:
    return Case(area, what, tuple(cmd.split()), tuple(must))


_PAIR = "flow {d}/a.png {d}/b.png --method farneback"
_STACKS = "stacks extract --videos {d}/videos --list {d}/list.txt --native"

CASES: list[Case] = [
    # ------------------------------------------------------------- never destroy input
    _c("overwrite", "flow output is image 1", _PAIR + " -o {d}/a.png", "a.png"),
    _c("overwrite", "flow output is image 1 through `..`", _PAIR + " -o {d}/frames/../a.png", "a.png"),
    _c("overwrite", "flow output is a symlink to image 1", _PAIR + " -o {d}/link.png", "link.png"),
    _c("overwrite", "flow output is a hard link to image 1", _PAIR + " -o {d}/hard.png", "hard.png"),
    _c("overwrite", "--viz onto image 2", _PAIR + " -o {d}/x.flo --viz {d}/b.png", "b.png"),
    _c("overwrite", "--viz and -o the same file", _PAIR + " -o {d}/x.png --viz {d}/x.png", "x.png"),
    _c("overwrite", "flow --frames into its own folder", "flow --frames {d}/frames -o {d}/frames --method farneback",
       "frames"),
    _c("overwrite", "flow --frames into the folder above", "flow --frames {d}/frames -o {d} --method farneback",
       "frames"),
    _c("overwrite", "viz onto the flow it reads", "viz {d}/zero.flo -o {d}/zero.flo", "zero.flo"),
    _c("overwrite", "stacks output is the video folder", "stacks extract --videos {d}/videos -o {d}/videos",
       "videos"),
    _c("overwrite", "stacks output contains the video folder", "stacks extract --videos {d}/videos -o {d}",
       "videos"),
    _c("overwrite", "segment run into the folder above the frames",
       "segment run --sequence {d}/frames -o {d}/frames/.. -q", "frames"),
    _c("overwrite", "bench run into its dataset root",
       "bench run --dataset sintel --root {d}/frames -o {d}/frames --method dis", "frames"),
    _c("overwrite", "bench report into its results folder", "bench report {d}/res -o {d}/res", "res"),
    _c("overwrite", "table5 run into the folder holding FBMS", "table5 run -o {d} --fbms {d}/frames --method dis",
       "frames"),
    _c("overwrite", "weights convert onto its input", "weights convert {d}/FlowNet2-s_weights.caffemodel "
       "-o {d}/FlowNet2-s_weights.caffemodel", "caffemodel"),
    # ------------------------------------------------------------- output formats
    _c("format", "flow -o with an image extension it cannot write", _PAIR + " -o {d}/out.jpg", ".flo", ".png"),
    _c("format", "flow -o without an extension", _PAIR + " -o {d}/out", ".flo"),
    _c("format", "--viz to a .flo", _PAIR + " -o {d}/x.flo --viz {d}/v.flo", ".png"),
    # ------------------------------------------------------------- options per method
    _c("options", "--device cuda for a CPU-only method", _PAIR + " -o {d}/x.flo --device cuda", "cuda"),
    _c("options", "--weights for a classical method", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method dis "
       "--weights {d}/w.pth", "weights"),
    _c("options", "-O with an unknown key", _PAIR + " -o {d}/x.flo -O nosuchkey=1", "nosuchkey"),
    _c("options", "-O with another method's key", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method dis -O levels=3",
       "levels"),
    _c("options", "-O without '='", _PAIR + " -o {d}/x.flo -O winsize", "winsize"),
    _c("options", "unknown flow method", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method nosuch", "nosuch"),
    _c("options", "bench: one -O that only one of two methods takes", "bench run --dataset motorcycle -o {d}/b "
       "--method dis --method farneback -O preset=fast", "farneback", "preset"),
    _c("options", "stacks: --device cuda for dis", _STACKS + " -o {d}/s --method dis --device cuda", "cuda"),
    _c("options", "segment: --device cuda:1 for dis", "segment run --sequence {d}/frames -o {d}/s --device cuda:1",
       "cuda:1"),
    _c("options", "table5: -O for an option dis lacks", "table5 run -o {d}/t --fbms {d}/frames --method dis "
       "-O dis:nosuch=1", "nosuch"),
    _c("options", "--viz with a frames folder", "flow --frames {d}/frames -o {d}/o --method farneback "
       "--viz {d}/v.png", "--viz"),
    _c("options", "--max-frames with a pair", _PAIR + " -o {d}/x.flo --max-frames 5", "--max-frames"),
    _c("options", "--no-viz with a pair", _PAIR + " -o {d}/x.flo --no-viz", "--no-viz"),
    # ------------------------------------------------------------- numbers
    _c("numbers", "--batch-size 0", _PAIR + " -o {d}/x.flo --batch-size 0", "--batch-size"),
    _c("numbers", "--max-frames -3", "flow --video {d}/clip.avi -o {d}/o --max-frames -3", "--max-frames"),
    _c("numbers", "--max-flow nan", _PAIR + " -o {d}/x.flo --max-flow nan", "--max-flow"),
    _c("numbers", "stacks --size 0 10", _STACKS + " -o {d}/s --size 0 10", "--size"),
    _c("numbers", "stacks --short-side -1", "stacks extract --videos {d}/videos --list {d}/list.txt -o {d}/s "
       "--short-side -1", "--short-side"),
    _c("numbers", "stacks --quality 101", _STACKS + " -o {d}/s --quality 101", "--quality"),
    _c("options", "stacks --upscale with --native", _STACKS + " -o {d}/s --upscale", "--upscale", "--native"),
    _c("numbers", "bench --warmup -1", "bench run --dataset motorcycle -o {d}/b --method dis --warmup -1",
       "--warmup"),
    _c("numbers", "segment --threshold 1.5", "segment run --sequence {d}/frames -o {d}/s --threshold 1.5",
       "--threshold"),
    _c("numbers", "segment --num-clusters 0", "segment run --sequence {d}/frames -o {d}/s --cluster spectral "
       "--num-clusters 0", "--num-clusters"),
    _c("numbers", "table5 --prior -0.1", "table5 run -o {d}/t --method dis --prior -0.1", "--prior"),
    _c("numbers", "train --iterations 0", "train stage -o {d}/r --iterations 0", "--iterations"),
    _c("numbers", "train --crop not a multiple of 64", "train stage -o {d}/r --crop 100x100 --iterations 1",
       "crop"),
    # ------------------------------------------------------------- damaged and hostile files
    _c("files", "image 1 missing", "flow {d}/nope.png {d}/b.png -o {d}/x.flo --method farneback", "nope.png"),
    _c("files", "image 1 is a folder", "flow {d}/frames {d}/b.png -o {d}/x.flo --method farneback", "frames"),
    _c("files", "image 1 is text with a .png name", "flow {d}/text.png {d}/b.png -o {d}/x.flo --method farneback",
       "text.png"),
    _c("files", "image 2 is a truncated PNG", "flow {d}/a.png {d}/cut.png -o {d}/x.flo --method farneback",
       "cut.png", "truncated PNG"),
    _c("files", "images of different sizes", "flow {d}/a.png {d}/small.png -o {d}/x.flo --method farneback",
       "small.png", "24×16"),
    _c("files", "empty .flo", "viz {d}/empty.flo -o {d}/v.png", "empty.flo"),
    _c("files", ".flo with a wrong magic number", "viz {d}/magic.flo -o {d}/v.png", "magic.flo"),
    _c("files", ".flo whose header claims 10⁹ pixels", "viz {d}/huge.flo -o {d}/v.png", "huge.flo"),
    _c("files", "truncated .flo", "viz {d}/short.flo -o {d}/v.png", "short.flo"),
    _c("files", ".pfm that is garbage", "viz {d}/bad.pfm -o {d}/v.png", "bad.pfm"),
    _c("files", "8-bit PNG given as KITTI flow", "viz {d}/a.png -o {d}/v.png", "a.png"),
    _c("files", "weights file holding pickled code", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method flownet2-s "
       "--weights {d}/evil.pth", "evil.pth", "refusing"),
    _c("files", "weights file that is text", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method flownet2-s "
       "--weights {d}/text.png", "text.png"),
    _c("files", "weights of another network", "flow {d}/a.png {d}/b.png -o {d}/x.flo --method flownet2-s "
       "--weights {d}/sd.pth", "sd.pth"),
    _c("files", "weights inspect on a missing file", "weights inspect {d}/nope.pth", "nope.pth"),
    _c("files", "video that is not a video", "flow --video {d}/text.avi -o {d}/o --method farneback", "text.avi"),
    _c("files", "truncated video", "flow --video {d}/cut.avi -o {d}/o --method farneback", "cut.avi",
       "frames its container declares"),
    _c("files", "empty frames folder", "flow --frames {d}/emptydir -o {d}/o --method farneback", "emptydir"),
    _c("lists", "stacks: a video listed twice", _STACKS.replace("list.txt", "dup.txt") + " -o {d}/s "
       "--method farneback", "dup.txt:2", "already listed"),
    _c("lists", "stacks: label not a number", _STACKS.replace("list.txt", "badlabel.txt") + " -o {d}/s "
       "--method farneback", "badlabel.txt:1"),
    _c("lists", "stacks: listed video missing", _STACKS.replace("list.txt", "missing.txt") + " -o {d}/s "
       "--method farneback", "not under"),
    _c("lists", "stacks: --splits without classInd.txt", "stacks extract --videos {d}/videos --splits {d}/frames "
       "-o {d}/s --method farneback", "classInd.txt"),
    _c("lists", "stacks: both --splits and --list", "stacks extract --videos {d}/videos --splits {d}/frames "
       "--list {d}/list.txt -o {d}/s", "--list"),
    _c("lists", "action: annotation list with a duplicate", "action train --stacks {d}/frames --modality flow "
       "--train-list {d}/dupann.txt --val-list {d}/dupann.txt -o {d}/a", "dupann.txt:2"),
    _c("segmentation", "segment run on a missing folder", "segment run --sequence {d}/nope -o {d}/s", "nope"),
    _c("segmentation", "segment eval with a shot list naming a missing Def.dat",
       "segment eval {d}/shots.txt all {d}/tracks.txt 0.75", "Def.dat"),
    _c("table5", "table5 with no data root", "table5 run -o {d}/t --method dis", "FBMS", "UCF101"),
    _c("table5", "table5 with exact flow but no stacks", "table5 run -o {d}/t --method exact --ucf101 {d}/ucf",
       "exact", "--stacks"),
    _c("table5", "table5 report of a folder that is no run", "table5 report {d}/frames -o {d}/rep", "frames"),
    _c("train", "train --data of an unknown kind", "train stage -o {d}/r --data marbles --iterations 1", "marbles"),
    _c("train", "train --init of a missing file", "train stage -o {d}/r --init {d}/nope.pth --iterations 1",
       "nope.pth"),
    _c("train", "train --freeze of a sub-network the model lacks", "train stage -o {d}/r --arch FlowNet2-S "
       "--freeze flownetc --iterations 1 --width 0.0625 --size 64x64 --crop 64x64 --val-size 64x64", "flownetc"),
]


def make_inputs(d: Path) -> Path:
    """The tree every case runs against (good files beside hostile ones)."""
    import cv2
    import torch

    from flownet2_core.io import write_flo, write_video
    from flownet2_core.models import build_model

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    a = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(d / "a.png"), a)
    cv2.imwrite(str(d / "b.png"), np.roll(a, 1, axis=1))
    cv2.imwrite(str(d / "small.png"), a[:16, :24])
    os.symlink(d / "a.png", d / "link.png")
    os.link(d / "a.png", d / "hard.png")
    (d / "frames").mkdir()
    cv2.imwrite(str(d / "frames" / "f_001.png"), a)
    cv2.imwrite(str(d / "frames" / "f_002.png"), np.roll(a, 1, axis=1))
    (d / "emptydir").mkdir()
    (d / "res").mkdir()
    (d / "res" / "frames.csv").write_text("dataset,method\n")
    (d / "text.png").write_text("not an image\n")
    (d / "cut.png").write_bytes((d / "b.png").read_bytes()[:200])
    (d / "text.avi").write_text("not a video\n")
    (d / "FlowNet2-s_weights.caffemodel").write_bytes(b"not really caffe")
    write_flo(d / "zero.flo", np.zeros((8, 8, 2), np.float32))
    (d / "empty.flo").write_bytes(b"")
    (d / "magic.flo").write_bytes(b"ABCD" + np.array([2, 2], "<i4").tobytes() + bytes(32))
    (d / "huge.flo").write_bytes(b"PIEH" + np.array([40000, 30000], "<i4").tobytes() + bytes(64))
    (d / "short.flo").write_bytes((d / "zero.flo").read_bytes()[:-40])
    (d / "bad.pfm").write_bytes(b"PF\n-1 -1\nnan\n\x00\x01")
    frames = (rng.random((12, 32, 48, 3)) * 255).astype(np.uint8)
    write_video(d / "clip.avi", frames)
    write_video(d / "cut.avi", frames)
    data = (d / "cut.avi").read_bytes()
    (d / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
    (d / "videos" / "Walk").mkdir(parents=True)
    write_video(d / "videos" / "Walk" / "v_Walk_g01_c01.avi", frames)
    (d / "list.txt").write_text("Walk/v_Walk_g01_c01.avi 0\n")
    (d / "dup.txt").write_text("Walk/v_Walk_g01_c01.avi 0\nWalk/v_Walk_g01_c01.avi 0\n")
    (d / "badlabel.txt").write_text("Walk/v_Walk_g01_c01.avi walk\n")
    (d / "missing.txt").write_text("Walk/v_Walk_g09_c09.avi 0\n")
    (d / "dupann.txt").write_text("Walk/v1 10 0\nWalk/v1 10 0\n")
    (d / "shots.txt").write_text("1\nnowhere/xDef.dat\n")
    (d / "tracks.txt").write_text("nowhere/Tracks10.dat\n")
    (d / "ucf" / "videos").mkdir(parents=True)
    (d / "ucf" / "ucfTrainTestlist").mkdir()
    (d / "ucf" / "ucfTrainTestlist" / "classInd.txt").write_text("1 Walk\r\n")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo this should never run",))

    with open(d / "evil.pth", "wb") as fh:
        pickle.dump({"state_dict": {}, "x": Evil()}, fh)
    torch.save(build_model("FlowNet2-SD", width=1 / 16).state_dict(), d / "sd.pth")
    return d


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file's bytes under ``d`` (links not followed). Inputs are unchanged when every
    file of the first snapshot is in the second with the same bytes (a refused command may
    still have kept finished work in its own new output folder: the flow of the frames of a
    truncated video that did decode)."""
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = Path(root) / n
            out[os.path.relpath(p, d)] = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
    return out


def run_case(case: Case, d: Path) -> tuple[int, str]:
    """Run one case in this process; returns (exit status, stderr)."""
    from flownet2_core import cli

    from .table5.commands import TABLE5

    commands = {**cli.load_commands(), "table5": TABLE5}  # also where the install predates table5
    argv = [a.format(d=d) for a in case.argv]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(argv, commands)
        except SystemExit as exc:  # argparse errors exit from the parser
            status = exc.code if isinstance(exc.code, int) else 2
    return int(status), err.getvalue()


def last_line(stderr: str) -> str:
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def to_markdown(rows: list[tuple[Case, int, str]], d: Path, seconds: float) -> str:
    def clean(text: str) -> str:
        return text.replace(os.fspath(d), "DIR").replace("|", "\\|")

    out = ["# Robustness: bad inputs tried from the CLI\n\n",
           f"{len(rows)} commands a new user might type with a slip in them, each run against a tree of good and "
           "hostile files (`DIR`: made by `evaluations.robustness.make_inputs`: images, frames, a video and a "
           "truncated copy, damaged `.flo`/`.pfm` files, a weights file holding pickled code, another "
           "network's weights, list files with duplicates …). Each ends with the exit status shown, its "
           "last stderr line below (no traceback), and every input file byte for byte unchanged: "
           "`tests/test_robustness.py` checks all of that for every row. Generated by "
           "`python -m evaluations.robustness -o docs/robustness.md` "
           f"({time.strftime('%Y-%m-%d')}, {seconds:.0f} s for all cases).\n\n",
           "| # | area | what was tried | command | exit | message |\n|---:|---|---|---|---:|---|\n"]
    for i, (case, status, err) in enumerate(rows, 1):
        cmd = "flownet2 " + " ".join(case.argv).replace("{d}", "DIR")
        out.append(f"| {i} | {case.area} | {case.what} | `{clean(cmd)}` | {status} | {clean(last_line(err))} |\n")
    return "".join(out)


def main(argv=None) -> int:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="docs/robustness.md")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        d = make_inputs(Path(tmp) / "in")
        before = snapshot(d)
        rows, t0 = [], time.perf_counter()
        for case in CASES:
            status, err = run_case(case, d)
            rows.append((case, status, err))
            print(f"{status}  {case.what}: {last_line(err)[:100]}", file=sys.stderr)
        bad = [c.what for c, s, _ in rows if s not in (1, 2)]
        after = snapshot(d)
        if {k: after.get(k) for k in before} != before:
            print("an input changed", file=sys.stderr)
            return 1
        from flownet2_core.io import atomic_write_text

        atomic_write_text(args.output, to_markdown(rows, d, time.perf_counter() - t0))
    print(f"{len(rows)} cases → {args.output}" + (f"; NOT refused: {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
