"""Issue 18, tried as a new user would: outputs never overwrite inputs, every option of every
method is checked (one line), numbers are range-checked where parsed.

Every case runs ``flownet2 …`` through :func:`flownet2_core.cli.main` and checks the exit status
(2), exactly one line on stderr naming the culprit, no traceback, and, where an input was
at stake, that its bytes are unchanged. Images are tiny (32×48) and methods fast (dis, farneback).
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np
import pytest

from evaluations.benchmarks.commands import BENCH
from evaluations.table5.commands import TABLE5
from flowapps.segmentation.commands import SEGMENT
from flowapps.stacks.commands import STACKS
from flownet2_core import cli
from flownet2_core.commands import FLOW, VIZ, WEIGHTS
from flownet2_core.io import check_outputs, read_flow, write_flo
from flownet2_core.methods import check_options, get_method, method_accepts

# The commands under test, given explicitly (table5 may not be in an older install's entry points).
COMMANDS = {"flow": FLOW, "viz": VIZ, "weights": WEIGHTS, "stacks": STACKS, "segment": SEGMENT, "bench": BENCH, "table5": TABLE5}


@pytest.fixture
def files(tmp_path):
    """a.png, b.png (32×48 noise, b = a shifted 1 px) and frames/ holding both."""
    rng = np.random.default_rng(0)
    a = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    b = np.roll(a, 1, axis=1)
    cv2.imwrite(str(tmp_path / "a.png"), a)
    cv2.imwrite(str(tmp_path / "b.png"), b)
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "f_001.png"), a)
    cv2.imwrite(str(tmp_path / "frames" / "f_002.png"), b)
    (tmp_path / "videos" / "Walk").mkdir(parents=True)
    return tmp_path


def _snapshot(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
            for d, _, names in os.walk(root) for f in names}


def one_line_error(capsys, *argv, must=()):
    """Run ``flownet2 ARGV``; assert status 2 and one stderr line holding each of ``must``."""
    try:
        status = cli.main([str(a) for a in argv], COMMANDS)
    except SystemExit as exc:  # argparse errors exit from the parser
        status = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2, (status, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in must:
        assert str(text) in lines[0], (text, lines[0])
    return lines[0]


# ---------------------------------------------------------------- never destroy input
@pytest.mark.parametrize("case", ["output_is_input", "output_through_dotdot", "output_through_symlink",
                                  "output_hard_link", "viz_is_input", "frames_into_frames",
                                  "frames_into_parent", "viz_cmd_onto_its_input", "output_equals_viz"])
def test_flow_never_overwrites_an_input(capsys, files, case):
    d = files
    a, b = d / "a.png", d / "b.png"
    if case == "output_through_symlink":
        os.symlink(a, d / "link.png")
    if case == "output_hard_link":
        os.link(a, d / "hard.png")
    if case == "viz_cmd_onto_its_input":
        write_flo(d / "f.flo", np.zeros((32, 48, 2), np.float32))
    pair = ["flow", a, b, "--method", "farneback"]
    argv, must = {
        "output_is_input": (pair + ["-o", a], [a]),
        "output_through_dotdot": (pair + ["-o", d / "frames" / ".." / "a.png"], ["a.png"]),
        "output_through_symlink": (pair + ["-o", d / "link.png"], ["link.png", a]),
        "output_hard_link": (pair + ["-o", d / "hard.png"], ["hard.png", a]),
        "viz_is_input": (pair + ["-o", d / "x.flo", "--viz", b], [b]),
        "frames_into_frames": (["flow", "--frames", d / "frames", "-o", d / "frames", "--method", "farneback"],
                               [d / "frames"]),
        "frames_into_parent": (["flow", "--frames", d / "frames", "-o", d, "--method", "farneback"],
                               [d / "frames"]),
        "viz_cmd_onto_its_input": (["viz", d / "f.flo", "-o", d / "f.flo"], ["f.flo"]),
        "output_equals_viz": (pair + ["-o", d / "x.png", "--viz", d / "x.png"], ["x.png"]),
    }[case]
    before = _snapshot(d)
    one_line_error(capsys, *argv, must=must)
    assert _snapshot(d) == before  # nothing written, nothing changed


@pytest.mark.parametrize("case", ["stacks_same", "stacks_contains", "segment_run", "segment_track",
                                  "bench_run", "bench_report", "table5_run", "table5_report"])
def test_writing_commands_refuse_input_folders(capsys, files, case):
    d = files
    (d / "res").mkdir()
    (d / "res" / "frames.csv").write_text("dataset,method\n")
    argv, must = {
        "stacks_same": (["stacks", "extract", "--videos", d / "videos", "-o", d / "videos", "--method", "dis"],
                        [d / "videos"]),
        "stacks_contains": (["stacks", "extract", "--videos", d / "videos", "-o", d, "--method", "dis"],
                            [d / "videos"]),
        "segment_run": (["segment", "run", "--sequence", d / "frames", "-o", d / "frames" / "..", "-q"],
                        ["frames"]),
        "segment_track": (["segment", "track", "--sequence", d / "frames", "-o", d / "frames", "-q"],
                          [d / "frames"]),
        "bench_run": (["bench", "run", "--dataset", "sintel", "--root", d / "frames", "-o", d / "frames",
                       "--method", "dis"], [d / "frames"]),
        "bench_report": (["bench", "report", d / "res", "-o", d / "res"], [d / "res"]),
        "table5_run": (["table5", "run", "-o", d, "--fbms", d / "frames", "--method", "dis"], [d / "frames"]),
        "table5_report": (["table5", "report", d / "res", "-o", d / "res" / "."], [d / "res"]),
    }[case]
    before = _snapshot(d)
    one_line_error(capsys, *argv, must=must)
    assert _snapshot(d) == before


def test_weights_convert_refuses_its_input_as_output(capsys, tmp_path):
    src = tmp_path / "FlowNet2-s_weights.caffemodel"
    src.write_bytes(b"not really caffe")
    one_line_error(capsys, "weights", "convert", src, "-o", src, must=[src])
    assert src.read_bytes() == b"not really caffe"


def test_output_folder_inside_the_input_folder_is_allowed(capsys, files):
    d = files
    status = cli.main(["flow", "--frames", str(d / "frames"), "-o", str(d / "frames" / "flow"),
                       "--method", "farneback"], COMMANDS)
    assert status == 0, capsys.readouterr().err
    assert (d / "frames" / "flow" / "f_001.flo").exists()


# ---------------------------------------------------------------- output format
def test_flow_png_output_is_a_kitti_png(capsys, files):
    d = files
    status = cli.main(["flow", str(d / "a.png"), str(d / "b.png"), "-o", str(d / "out.png"),
                       "--method", "farneback"], COMMANDS)
    assert status == 0, capsys.readouterr().err
    raw = cv2.imread(str(d / "out.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (32, 48, 3)  # not .flo bytes
    flow, valid = read_flow(d / "out.png")
    assert valid.all() and np.abs(flow).max() > 0


@pytest.mark.parametrize("argv, must", [
    (["-o", "{d}/out.jpg"], ["out.jpg", ".flo", ".png", ".pfm"]),
    (["-o", "{d}/out"], ["out", ".flo"]),
    (["-o", "{d}/x.flo", "--viz", "{d}/v.flo"], ["v.flo", ".png"]),
], ids=["jpg", "no_extension", "viz_not_an_image"])
def test_flow_output_format_follows_the_extension_or_is_refused(capsys, files, argv, must):
    d = files
    argv = [a.format(d=d) for a in argv]
    one_line_error(capsys, "flow", d / "a.png", d / "b.png", "--method", "farneback", *argv, must=must)
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "b.png", "frames", "videos"]


# ---------------------------------------------------------------- options on every method
@pytest.mark.parametrize("argv, must", [
    (["--method", "tvl1", "--device", "cuda"], ["tvl1", "cuda", "CPU"]),
    (["--method", "dis", "--weights", "F"], ["dis", "weights", "preset"]),
    (["--method", "farneback", "-O", "nosuchkey=1"], ["farneback", "nosuchkey", "winsize"]),
    (["--method", "dis", "-O", "levels=3"], ["dis", "levels"]),
], ids=["device_cuda", "weights", "unknown_key", "other_methods_key"])
def test_flow_refuses_options_the_method_does_not_take(capsys, files, argv, must):
    d = files
    one_line_error(capsys, "flow", d / "a.png", d / "b.png", "-o", d / "x.flo", *argv, must=must)
    assert not (d / "x.flo").exists()


def test_device_cpu_is_a_no_op_for_classical_methods(capsys, files):
    d = files
    status = cli.main(["flow", str(d / "a.png"), str(d / "b.png"), "-o", str(d / "x.flo"),
                       "--method", "farneback", "--device", "cpu"], COMMANDS)
    assert status == 0, capsys.readouterr().err


@pytest.mark.parametrize("case", ["bench_one_O_two_methods", "bench_device", "stacks_device", "segment_device",
                                  "segment_weights", "table5_option"])
def test_other_commands_refuse_options_the_method_does_not_take(capsys, files, case):
    d = files
    argv, must = {
        "bench_one_O_two_methods": (["bench", "run", "--dataset", "motorcycle", "-o", d / "b", "--method", "dis",
                                     "--method", "farneback", "-O", "preset=fast"], ["farneback", "preset"]),
        "bench_device": (["bench", "run", "--dataset", "motorcycle", "-o", d / "b", "--method", "dis",
                          "--device", "cuda"], ["dis", "cuda"]),
        "stacks_device": (["stacks", "extract", "--videos", d / "videos", "-o", d / "s", "--method", "dis",
                           "--device", "cuda"], ["dis", "cuda"]),
        "segment_device": (["segment", "run", "--sequence", d / "frames", "-o", d / "s", "--device", "cuda:1"],
                           ["dis", "cuda:1"]),
        "segment_weights": (["segment", "track", "--sequence", d / "frames", "-o", d / "s", "--method",
                             "farneback", "--weights", d / "w.pth"], ["farneback", "weights"]),
        "table5_option": (["table5", "run", "-o", d / "t", "--fbms", d / "frames", "--method", "dis",
                           "-O", "dis:nosuch=1"], ["dis", "nosuch"]),
    }[case]
    one_line_error(capsys, *argv, must=must)
    for out in ("b", "s", "t"):
        assert not (d / out).exists()


def test_segment_run_accepts_device_cpu_for_a_classical_method(capsys, files):
    d = files
    status = cli.main(["segment", "run", "--sequence", str(d / "frames"), "-o", str(d / "s"), "--device", "cpu",
                       "--no-images", "-q"], COMMANDS)
    assert status == 0, capsys.readouterr().err
    assert (d / "s" / "trajectories.npz").exists()


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("argv, option", [
    (["flow", "{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--batch-size", "0"], "--batch-size"),
    (["flow", "--video", "{d}/v.avi", "-o", "{d}/o", "--max-frames", "-3"], "--max-frames"),
    (["flow", "{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--max-flow", "nan"], "--max-flow"),
    (["stacks", "extract", "--videos", "{d}/videos", "-o", "{d}/s", "--size", "0", "10"], "--size"),
    (["stacks", "extract", "--videos", "{d}/videos", "-o", "{d}/s", "--short-side", "-1"], "--short-side"),
    (["stacks", "extract", "--videos", "{d}/videos", "-o", "{d}/s", "--quality", "101"], "--quality"),
    (["bench", "run", "--dataset", "motorcycle", "-o", "{d}/b", "--method", "dis", "--warmup", "-1"], "--warmup"),
    (["bench", "run", "--dataset", "motorcycle", "-o", "{d}/b", "--method", "dis", "--max-frames", "x"],
     "--max-frames"),
    (["segment", "run", "--sequence", "{d}/frames", "-o", "{d}/s", "--threshold", "1.5"], "--threshold"),
    (["segment", "run", "--sequence", "{d}/frames", "-o", "{d}/s", "--cluster", "spectral", "--num-clusters", "0"],
     "--num-clusters"),
    (["table5", "run", "-o", "{d}/t", "--method", "dis", "--batch-size", "0"], "--batch-size"),
    (["table5", "run", "-o", "{d}/t", "--method", "dis", "--prior", "-0.1"], "--prior"),
], ids=lambda v: v if isinstance(v, str) else v[0])
def test_numbers_are_range_checked_where_parsed(capsys, files, argv, option):
    d = files
    one_line_error(capsys, *[a.format(d=d) for a in argv], must=[option])


# ---------------------------------------------------------------- helpers
class TestCheckOutputs:
    def test_distinct_paths_pass(self, tmp_path):
        (tmp_path / "in").mkdir()
        check_outputs([tmp_path / "a.png", tmp_path / "in"], files=[tmp_path / "o.flo", None],
                      folders=[tmp_path / "in" / "sub", tmp_path / "out"])

    def test_file_is_an_input(self, tmp_path):
        (tmp_path / "a.png").write_bytes(b"x")
        with pytest.raises(ValueError, match=r"output .*/sub/\.\./a\.png is the input .*/a\.png"):
            (tmp_path / "sub").mkdir()
            check_outputs([tmp_path / "a.png"], files=[tmp_path / "sub" / ".." / "a.png"])

    def test_symlinked_folder(self, tmp_path):
        (tmp_path / "in").mkdir()
        os.symlink(tmp_path / "in", tmp_path / "alias")
        with pytest.raises(ValueError, match="output folder .*alias is the input"):
            check_outputs([tmp_path / "in"], folders=[tmp_path / "alias"])

    def test_folder_containing_an_input(self, tmp_path):
        with pytest.raises(ValueError, match="contains the input"):
            check_outputs([tmp_path / "x" / "y" / "a.png"], folders=[tmp_path / "x"])

    def test_two_outputs_one_file(self, tmp_path):
        with pytest.raises(ValueError, match="are the same file"):
            check_outputs([], files=[tmp_path / "o.png", tmp_path / "." / "o.png"])

    def test_not_yet_existing_paths_compare_by_name(self, tmp_path):
        with pytest.raises(ValueError, match="is the input"):
            check_outputs([tmp_path / "new" / "f.flo"], files=[tmp_path / "new" / ".." / "new" / "f.flo"])


class TestArgumentTypes:
    @pytest.mark.parametrize("parse, good, bad", [
        (cli.positive_int, [("1", 1), ("16", 16)], ["0", "-1", "1.5", "x"]),
        (cli.non_negative_int, [("0", 0), ("3", 3)], ["-1", "x"]),
        (cli.image_size, [("512x384", (384, 512)), ("320×240", (240, 320))], ["0x10", "512", "axb", "1x2x3"]),
        (cli.positive_float, [("0.5", 0.5)], ["0", "-2", "nan", "inf", "x"]),
        (cli.non_negative_float, [("0", 0.0)], ["-0.1", "nan"]),
        (cli.probability, [("0", 0.0), ("1", 1.0), ("0.75", 0.75)], ["1.01", "-0.5", "nan"]),
        (cli.int_range(0, 100), [("0", 0), ("100", 100)], ["101", "-1"]),
    ], ids=["positive_int", "non_negative_int", "image_size", "positive_float", "non_negative_float", "probability",
            "int_range"])
    def test_values(self, parse, good, bad):
        for text, value in good:
            assert parse(text) == value
        for text in bad:
            with pytest.raises(argparse.ArgumentTypeError):
                parse(text)


class TestMethodOptions:
    def test_constructor_keywords_are_the_options(self):
        assert method_accepts("dis", "preset") and method_accepts("dis", "threads")
        assert not method_accepts("dis", "weights") and not method_accepts("farneback", "device")
        assert method_accepts("flownet2", "device") and method_accepts("raft-small", "batch_size")

    def test_device_rule(self):
        assert check_options("tvl1", {"device": "cpu"}) == {}
        assert check_options("tvl1", {"device": "CPU", "threads": 1}) == {"threads": 1}
        with pytest.raises(ValueError, match="'tvl1' runs on the CPU only; device 'cuda'"):
            check_options("tvl1", {"device": "cuda"})
        assert check_options("flownet2", {"device": "cuda"}) == {"device": "cuda"}  # checked when built

    def test_get_method_refuses_before_building(self):
        with pytest.raises(ValueError, match="'farneback' has no option 'preset'; its options: .*winsize"):
            get_method("farneback", preset="fast")
        with pytest.raises(ValueError, match="unknown flow method"):
            check_options("magic", {})


# ---------------------------------------------------------------- nothing silently wrong
def test_nan_flow_from_broken_weights_is_an_error_and_writes_nothing(capsys, files, learned_package):
    """Weights full of NaN (a broken download, a diverged training run): `flow` says so in one
    line and writes no file, instead of a .flo of NaN with exit 0; the method API raises the
    same error, for single pairs and for batches."""
    import torch

    from flownet2_core.methods import DEFAULT_LEARNED_METHOD

    path = learned_package()
    torch.save({k: torch.full_like(v, float("nan")) for k, v in torch.load(path).items()}, path)
    out = files / "out.flo"
    one_line_error(capsys, "flow", files / "a.png", files / "b.png", "-o", out, "--method", DEFAULT_LEARNED_METHOD,
                   must=(DEFAULT_LEARNED_METHOD, "non-finite", "nothing was written"))
    assert not out.exists()
    method = get_method(DEFAULT_LEARNED_METHOD)
    img = cv2.imread(str(files / "a.png"))[..., ::-1].copy()
    with pytest.raises(ValueError, match="non-finite"):
        method(img, img)
    with pytest.raises(ValueError, match="non-finite"):
        method.batch(img[None], img[None])


def test_error_raised_under_a_progress_bar_is_printed_after_it(capsys):
    """A command that fails with a progress bar open (updated by hand, so the traceback's frame
    keeps it alive): the bar is closed (its last state on its own line) before the one-line
    error, which is the last line of stderr, whole."""
    from tqdm import tqdm

    def run(args):
        bar = tqdm(total=10, desc="working", file=sys.stderr, mininterval=0)
        for i in range(10):
            if i == 3:
                raise ValueError("item 3 is broken")
            bar.update()

    status = cli.main(["boom"], {"boom": cli.Command(help="fails half-way", add_arguments=lambda p: None, run=run)})
    err = capsys.readouterr().err
    assert status == 2
    last = err.rstrip("\n").split("\n")[-1]
    assert last == "flownet2 boom: error: item 3 is broken", repr(err)
    assert "working" in err and "Traceback" not in err


@pytest.fixture
def damaged_video(tmp_path):
    """videos/Walk/v_Walk_g01_c01.avi whole (12 frames) and v_Walk_g01_c02.avi cut to 60 %."""
    from flownet2_core.io import write_video

    rng = np.random.default_rng(0)
    folder = tmp_path / "videos" / "Walk"
    folder.mkdir(parents=True)
    for name in ("v_Walk_g01_c01.avi", "v_Walk_g01_c02.avi"):
        write_video(folder / name, (rng.random((12, 32, 48, 3)) * 255).astype(np.uint8))
    data = (folder / "v_Walk_g01_c02.avi").read_bytes()
    (folder / "v_Walk_g01_c02.avi").write_bytes(data[: int(len(data) * 0.6)])
    (tmp_path / "list.txt").write_text("Walk/v_Walk_g01_c01.avi 0\nWalk/v_Walk_g01_c02.avi 0\n")
    return tmp_path


def test_damaged_video_fails_the_stacks_run_with_both_counts(capsys, damaged_video):
    """The truncated video is not taken as a shorter one: failures.txt names it with the decoded
    and declared counts, the whole one is extracted, and the run exits 1."""
    root = damaged_video
    status = cli.main(["stacks", "extract", "--videos", str(root / "videos"), "--list", str(root / "list.txt"),
                       "-o", str(root / "out"), "--method", "farneback", "--native", "--writers", "1"], COMMANDS)
    capsys.readouterr()
    assert status == 1
    failures = (root / "out" / "failures.txt").read_text()
    assert "v_Walk_g01_c02.avi" in failures and "of the 12 frames its container declares" in failures
    assert "v_Walk_g01_c01" not in failures


def test_damaged_video_fails_flow_video(capsys, damaged_video):
    """`flow --video` keeps the flow of the frames that decoded (finished work) but exits 2 with
    the counts as its last line, after the progress bar."""
    status = cli.main(["flow", "--video", str(damaged_video / "videos" / "Walk" / "v_Walk_g01_c02.avi"),
                       "-o", str(damaged_video / "flows"), "--method", "farneback"], COMMANDS)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("flownet2 flow: error: ") and "v_Walk_g01_c02.avi: decoded 6 of the 12 frames" in last


def test_accept_partial_extracts_the_decoded_frames_and_marks_them(capsys, damaged_video):
    """With --accept-partial the truncated video is extracted from the frames that decode,
    exits 0, and the manifest marks it with both counts; the whole one is unmarked."""
    import json

    root = damaged_video
    status = cli.main(["stacks", "extract", "--videos", str(root / "videos"), "--list", str(root / "list.txt"),
                       "-o", str(root / "out"), "--method", "farneback", "--native", "--writers", "1",
                       "--accept-partial"], COMMANDS)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "(1 partial, accepted)" in out and "v_Walk_g01_c02.avi: decoded 6 of the 12 frames" in out
    m = json.loads((root / "out" / "manifest.json").read_text())
    assert m["videos"]["Walk/v_Walk_g01_c02"] == {"frames": 6, "flows": 5, "label": 0, "width": 48, "height": 32,
                                                   "declared_frames": 12}
    assert "declared_frames" not in m["videos"]["Walk/v_Walk_g01_c01"]
    assert m["partial"] == [{"video": "Walk/v_Walk_g01_c02.avi", "frames": 6, "declared_frames": 12}]
    assert m["failures"] == [] and (root / "out" / "failures.txt").read_text() == ""
    assert len(list((root / "out" / "Walk" / "v_Walk_g01_c02").glob("flow_x_*.jpg"))) == 5


def test_flow_video_accept_partial_keeps_the_flow_and_says_so(capsys, damaged_video):
    video = damaged_video / "videos" / "Walk" / "v_Walk_g01_c02.avi"
    # Without the flag: exit 2, one line naming the file, the counts and the way on.
    status = cli.main(["flow", "--video", str(video), "-o", str(damaged_video / "strict"), "--method", "farneback",
                       "--no-viz"], COMMANDS)
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if "pair/s" not in ln]  # not the bar
    assert status == 2 and len(err) == 1
    assert "v_Walk_g01_c02.avi: decoded 6 of the 12 frames" in err[0] and "--accept-partial" in err[0]
    status = cli.main(["flow", "--video", str(video), "-o", str(damaged_video / "flows"), "--method", "farneback",
                       "--no-viz", "--accept-partial"], COMMANDS)
    out = capsys.readouterr().out
    assert status == 0
    assert "5 flow fields in" in out and "partial video accepted: decoded 6 of the 12 frames" in out
    assert sorted(p.name for p in (damaged_video / "flows").iterdir()) == [f"flow_{i:05d}.flo" for i in range(1, 6)]
    # A re-run says what it kept.
    cli.main(["flow", "--video", str(video), "-o", str(damaged_video / "flows"), "--method", "farneback",
              "--no-viz", "--accept-partial"], COMMANDS)
    assert "5 flow fields in" in (out := capsys.readouterr().out) and "(5 kept from an earlier run)" in out


_SLOW_FLOW = """
import sys, cv2, numpy as np
from flownet2_core import cli
from flownet2_core.methods import FlowMethod, register

@register("slow-test", "one OpenCV call that runs for minutes")
class Slow(FlowMethod):
    name = "slow-test"

    def compute(self, a, b):
        cv2.setNumThreads(1)
        print("computing", flush=True)
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(epsilon=1e-12, innnerIterations=100000,  # sic
                                                      outerIterations=100000, nscales=1, warps=1)
        ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
        return tvl1.calc(ga, gb, None)

sys.argv = ["flownet2", *sys.argv[1:]]
sys.exit(cli.main())
"""


def test_ctrl_c_stops_a_long_single_computation(files):
    """Ctrl-C while one long OpenCV call runs (minutes): the command ends with status 130 and
    "interrupted", without waiting for the call, and leaves neither the output nor a
    temporary file. (Before, the signal waited for the call to return: the guard fails.)"""
    import signal
    import subprocess
    import time

    out = files / "out.flo"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_FLOW, "flow", str(files / "a.png"), str(files / "b.png"), "-o", str(out),
         "--method", "slow-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal would start it
    try:
        assert proc.stdout.readline() == "computing\n"
        time.sleep(1)  # into the OpenCV call (a signal before it would be handled at once anyway)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # a hang guard: the call alone would run for minutes
    finally:
        proc.kill()
    assert proc.returncode == 130 and err == "flownet2 flow: interrupted\n", err
    assert not out.exists() and not list(files.glob(".out.flo*"))


# ---------------------------------------------------------------- options that would do nothing
@pytest.mark.parametrize("argv, must", [
    (["--frames", "{d}/frames", "-o", "{d}/o", "--viz", "{d}/v.png"], ["--viz", "--no-viz"]),
    (["{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--no-viz"], ["--no-viz"]),
    (["{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--max-frames", "5"], ["--max-frames"]),
    (["{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--overwrite"], ["--overwrite"]),
    (["{d}/a.png", "{d}/b.png", "-o", "{d}/x.flo", "--accept-partial"], ["--accept-partial"]),
    (["--frames", "{d}/frames", "-o", "{d}/o", "--accept-partial"], ["--accept-partial", "--video"]),
], ids=["viz_with_frames", "no_viz_with_pair", "max_frames_with_pair", "overwrite_with_pair",
        "accept_partial_with_pair", "accept_partial_with_frames"])
def test_options_that_would_do_nothing_are_refused(capsys, files, argv, must):
    d = files
    one_line_error(capsys, "flow", *[a.format(d=d) for a in argv], "--method", "farneback", must=must)
    assert not (d / "o").exists() and not (d / "x.flo").exists()


def test_max_frames_limits_a_frames_folder(capsys, files):
    d = files
    cv2.imwrite(str(d / "frames" / "f_003.png"), cv2.imread(str(d / "a.png")))
    status = cli.main(["flow", "--frames", str(d / "frames"), "-o", str(d / "o"), "--method", "farneback",
                       "--max-frames", "2", "--no-viz"], COMMANDS)
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in (d / "o").iterdir()) == ["f_001.flo"]


def test_scripts_report_bad_input_in_one_line(capsys, tmp_path):
    """The evaluation scripts (run_script) answer bad input as the CLI does: one line, status 2."""
    def bad():
        raise FileNotFoundError(f"{tmp_path / 'none.pth'}: no such checkpoint")

    assert cli.run_script("eval_trained", bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eval_trained: error:") and "none.pth" in err
    assert cli.run_script("x", lambda: {"rows": 1}) == 0 and cli.run_script("x", lambda: 1) == 1
    with pytest.raises(RuntimeError):  # a bug is not bad input: its traceback stays
        cli.run_script("x", lambda: (_ for _ in ()).throw(RuntimeError("bug")))


def test_file_errors_are_one_line_without_errno(capsys, tmp_path):
    """A failed file operation reads `PATH: reason`; an OSError naming no file is a fault, not input."""
    import errno

    def disk_full():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out.flo"))

    assert cli.run_script("flownet2 flow", disk_full) == 2
    err = capsys.readouterr().err
    assert err == f"flownet2 flow: error: {tmp_path / 'out.flo'}: {os.strerror(errno.ENOSPC)}\n"
    img = np.zeros((64, 64, 3), np.uint8)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), img)
    assert cli.main(["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                     "-o", str(tmp_path / "no" / "x.flo")], {"flow": FLOW}) == 2
    err = capsys.readouterr().err
    assert err == f"flownet2 flow: error: {tmp_path / 'no' / 'x.flo'}: parent directory does not exist\n"
    with pytest.raises(OSError):
        cli.run_script("x", lambda: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
