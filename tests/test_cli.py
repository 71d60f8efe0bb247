"""The `flownet2` command end to end on generated files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flownet2_core.cli import load_commands, main
from flownet2_core.data.synthetic import make_pair, make_sequence
from flownet2_core.io import read_flo, read_image, write_flo, write_image, write_video
from flownet2_core.metrics import average_epe


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    p = make_pair(0, (64, 96), mode="sd")
    write_image(d / "a.png", p.img1)
    write_image(d / "b.png", p.img2)
    return d, p


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_core_commands_are_discovered():
    assert {"flow", "viz", "methods", "demo"} <= set(load_commands())


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("flownet2")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    for name in ("flow", "viz", "methods", "demo"):
        assert name in r.stdout


HEAVY_MODULES = ("torch", "torchvision", "cv2", "scipy", "sklearn", "pandas", "matplotlib")


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["flow", "--no-such-option"],
    ["stacks", "extract", "--help"],
    ["action", "train", "--help"],
    ["segment", "--help"],
    ["bench", "--help"],
    ["weights", "inspect", "--help"],
], ids=" ".join)
def test_help_and_argument_errors_import_no_heavy_module(argv):
    # A fresh interpreter: what `flownet2 ARGV` imports before it answers (start-up time is
    # dominated by these; see flownet2_core/cli.py).
    code = ("import sys\nfrom flownet2_core.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('LOADED:', *[m for m in {HEAVY_MODULES!r} if m in sys.modules])\n")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # the help, or the argument error (one line, no usage block) was printed
    assert "usage: flownet2" in r.stdout or r.stderr.startswith("flownet2 ")
    loaded = r.stdout.strip().splitlines()[-1].split()
    assert loaded == ["LOADED:"], f"flownet2 {' '.join(argv)} imported {loaded[1:]}"


def test_subcommand_arguments_are_added_when_that_command_is_parsed():
    from flownet2_core.cli import Command, build_parser

    added = []

    def add(name):
        def add_arguments(p):
            added.append(name)
            p.add_argument("--x", type=int, default=0)
        return add_arguments

    commands = {n: Command(help=n, add_arguments=add(n), run=lambda a: 0) for n in ("a", "b")}
    parser = build_parser(commands)
    assert parser.format_help() and added == []  # top-level help lists them without their arguments
    args = parser.parse_args(["b", "--x", "3"])
    assert (args.command, args.x, added) == ("b", 3, ["b"])
    with pytest.raises(SystemExit):
        parser.parse_args(["a", "--y"])
    assert added == ["b", "a"]


def test_methods_lists_opencv_methods(capsys):
    status, out, _ = run_cli(capsys, "methods")
    assert status == 0
    for name in ("tvl1", "deepflow", "dis", "farneback", "pcaflow"):
        assert any(line.split()[0] == name for line in out.splitlines())


def test_flow_pair_writes_flo_and_viz(capsys, pair_files, tmp_path):
    d, p = pair_files
    status, out, err = run_cli(capsys, "flow", d / "a.png", d / "b.png", "-o", tmp_path / "f.flo",
                               "--viz", tmp_path / "f.png", "--method", "dis", "-O", "preset=medium")
    assert status == 0, err
    flow = read_flo(tmp_path / "f.flo")
    assert flow.shape == (64, 96, 2)
    # DIS on a small-displacement pair: well below the 1.8 px mean motion.
    assert average_epe(flow, p.flow, p.valid) < 1.0
    assert read_image(tmp_path / "f.png").shape == (64, 96, 3)


def test_flow_frames_and_resume(capsys, tmp_path):
    seq = make_sequence(0, 4, (48, 64), num_objects=1)
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, f in enumerate(seq.frames):
        write_image(frames / f"frame_{t:04d}.png", f)
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "flow", "--frames", frames, "-o", out, "--method", "farneback")
    assert status == 0, err
    flos = sorted(out.glob("*.flo"))
    assert [f.stem for f in flos] == ["frame_0000", "frame_0001", "frame_0002"]
    assert len(list(out.glob("*.png"))) == 3
    # A re-run keeps finished pairs (resume) unless asked to overwrite.
    write_flo(flos[0], np.zeros((48, 64, 2), np.float32))
    run_cli(capsys, "flow", "--frames", frames, "-o", out, "--method", "farneback")
    assert np.all(read_flo(flos[0]) == 0)
    run_cli(capsys, "flow", "--frames", frames, "-o", out, "--method", "farneback", "--overwrite")
    assert np.any(read_flo(flos[0]) != 0)


def test_flow_video(capsys, tmp_path):
    seq = make_sequence(1, 5, (48, 64), num_objects=1)
    write_video(tmp_path / "clip.avi", seq.frames, fps=10)
    status, _, err = run_cli(capsys, "flow", "--video", tmp_path / "clip.avi", "-o", tmp_path / "out",
                             "--method", "dis", "--no-viz")
    assert status == 0, err
    # Named after the frame each flow leaves, numbered from 1 as in the rawframes layout.
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == [f"flow_{i:05d}.flo" for i in range(1, 5)]


@pytest.mark.parametrize("legend", [False, True])
def test_viz(capsys, tmp_path, legend):
    flow = make_pair(2, (40, 60)).flow
    write_flo(tmp_path / "f.flo", flow)
    args = ["viz", tmp_path / "f.flo", "-o", tmp_path / "v.png"] + (["--legend"] if legend else [])
    status, _, err = run_cli(capsys, *args)
    assert status == 0, err
    h, w, _ = read_image(tmp_path / "v.png").shape
    assert h == 40 and (w > 60 if legend else w == 60)


@pytest.mark.parametrize("case", ["missing", "bad_flo", "unknown_method", "one_image", "bad_option"])
def test_bad_input_is_one_line(capsys, tmp_path, pair_files, case):
    d, _ = pair_files
    (tmp_path / "bad.flo").write_bytes(b"not a flow file at all")
    argv = {
        "missing": ["flow", tmp_path / "nope.png", d / "b.png", "-o", tmp_path / "x.flo"],
        "bad_flo": ["viz", tmp_path / "bad.flo", "-o", tmp_path / "x.png"],
        "unknown_method": ["flow", d / "a.png", d / "b.png", "-o", tmp_path / "x.flo", "--method", "magic"],
        "one_image": ["flow", d / "a.png", "-o", tmp_path / "x.flo"],
        "bad_option": ["flow", d / "a.png", d / "b.png", "-o", tmp_path / "x.flo", "-O", "preset"],
    }[case]
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    if case in ("missing", "bad_flo"):
        assert str(argv[1]) in lines[0]
    if case == "unknown_method":
        assert "magic" in lines[0] and "tvl1" in lines[0]


def _every_action():
    """(command path, argparse action) for every option and positional of every subcommand."""
    import argparse

    from evaluations.table5.commands import TABLE5
    from flownet2_core import cli

    def walk(p, path):
        if getattr(p, "_deferred", None):  # subcommands add their arguments when used
            p._deferred(p)
            p._deferred = None
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    yield from walk(sub, path + [name])
            elif not isinstance(a, argparse._HelpAction):
                yield " ".join(path), a

    yield from walk(cli.build_parser({**cli.load_commands(), "table5": TABLE5}), ["flownet2"])


def test_every_option_of_every_command_has_help():
    """`flownet2 COMMAND … --help` documents every option and positional argument."""
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in _every_action() if not a.help]
    assert not missing, missing


def test_one_default_flow_method_across_commands():
    """Every command whose ``--method`` has a default uses the toolkit's one default, and says so."""
    from flownet2_core.methods import DEFAULT_METHOD, available_methods

    defaults = {path: a.default for path, a in _every_action() if "--method" in a.option_strings
                and a.default is not None}
    assert {"flownet2 flow", "flownet2 stacks extract", "flownet2 segment run"} <= set(defaults), defaults
    assert set(defaults.values()) == {DEFAULT_METHOD}, defaults
    assert DEFAULT_METHOD in available_methods()
    for path, a in _every_action():
        if "--method" in a.option_strings and a.default is not None:
            assert f"default {DEFAULT_METHOD}" in a.help, path
