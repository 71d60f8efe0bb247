"""``flownet2 segment track|cluster|eval|run``, in process."""

import json
from pathlib import Path

import pytest

from flownet2_core.cli import build_parser
from flowapps.segmentation.commands import SEGMENT
from flowapps.segmentation.synthetic import make_fbms_like_sequence, write_fbms_sequence


def run(*argv):
    args = build_parser({"segment": SEGMENT}).parse_args(["segment", *map(str, argv)])
    return args._run(args)


def test_eval_all_shots_prints_the_official_lines(golden, capsys):
    assert run("eval", "allShots.txt", "all", "allTracks.txt", "0.75") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["output file: shots/s01_perfect_pgm/Tracks12Numbers.txt", "(P,R)=(1,1) ",
                       "extracted objects counter: 2 / 2"]
    assert "(P,R)=(0.85184,0.66054) " in out and "extracted objects counter: 6 / 11" in out
    assert "summary file: allTracks_Fgeq75.00Numbers.txt" in out
    assert out[-2:] == ["6", "of 11 visible objects"]
    for shot, stem in (("s04_underseg_ppm", "Tracks24"), ("s12_bg_fragmented_pgm", "Tracks10")):
        assert (golden / "shots" / shot / f"{stem}Numbers.txt").read_text() == \
            (golden / "official" / shot / f"{stem}Numbers.txt").read_text()


def test_eval_json(golden, capsys):
    assert run("eval", "allShots.txt", "all", "allTracks.txt", "0.75", "--json", "--no-write") == 0
    d = json.loads(capsys.readouterr().out)
    assert d["overall"]["extracted_objects"] == 6 and d["overall"]["visible_objects"] == 11
    shot = {s["track_file"]: s for s in d["shots"]}["shots/s07_trackless_region_pgm/Tracks15.dat"]
    assert (shot["precision"], shot["recall"], shot["f_measure"], shot["density"]) == (0.917695, 0.681562, 0.782196, 5.34269)
    assert not (golden / "allTracks_Fgeq75.00Numbers.txt").exists()


def test_eval_single_shot_and_default_threshold(golden, capsys):
    d, t = "shots/s07_trackless_region_pgm/GroundTruth/s07_trackless_region_pgmDef.dat", "shots/s07_trackless_region_pgm/Tracks15.dat"
    assert run("eval", d, t, "0.75", "--print-matrices") == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines()[0] == "output file: shots/s07_trackless_region_pgm/Tracks15Numbers.txt"
    assert cap.err == (golden / "official/s07_trackless_region_pgm/stderr.txt").read_text()
    assert Path("shots/s07_trackless_region_pgm/Tracks15Numbers.txt").read_text() == \
        (golden / "official/s07_trackless_region_pgm/Tracks15Numbers.txt").read_text()
    run("eval", d, t, "--json")                       # no threshold: the official default 0.9
    j = json.loads(capsys.readouterr().out)
    assert j["threshold"] == 0.9 and j["extracted_objects"] == 0


def test_eval_errors_name_the_file(golden, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        run("eval", "nope.txt", "all", "allTracks.txt")
    with pytest.raises(ValueError, match="Evaluation of 20 frames is not allowed"):
        run("eval", "allShots.txt", "20", "allTracks.txt")
    bad = tmp_path / "T7.dat"
    bad.write_text("7\n0\n")
    with pytest.raises(ValueError, match="T7.dat: length of tracked sequence"):
        run("eval", "shots/s01_perfect_pgm/GroundTruth/s01_perfect_pgmDef.dat", bad)
    with pytest.raises(ValueError, match="usage"):
        run("eval", "only_one_argument")


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    d = tmp_path_factory.mktemp("seq")
    s = make_fbms_like_sequence(2, 10, (72, 96), num_objects=2)
    write_fbms_sequence(d / "toy", "toy", s.frames, s.masks, label_every=3, flow_fw=s.flow_fw, flow_bw=s.flow_bw)
    return d / "toy"


def test_run_writes_everything(sequence, tmp_path, capsys):
    assert run("run", "--sequence", sequence, "--method", "exact", "-o", tmp_path / "out", "--sampling", "4", "-q") == 0
    out = capsys.readouterr().out
    assert "trajectories on 10 frames (exact)" in out and "extracted 2 of 2 objects" in out
    for name in ("Tracks10.dat", "Tracks10Numbers.txt", "evaluation.json", "trajectories.npz",
                 "labels/toy_0000.png", "overlays/toy_0009.jpg"):
        assert (tmp_path / "out" / name).is_file(), name


def test_track_then_cluster(sequence, tmp_path, capsys):
    assert run("track", "--sequence", sequence, "--method", "farneback", "-o", tmp_path / "o", "-q") == 0
    assert (tmp_path / "o/flow/farneback/forward_toy_0000.flo").is_file()
    assert "reused" not in capsys.readouterr().out
    assert run("track", "--sequence", sequence, "--method", "farneback", "-o", tmp_path / "o", "-q") == 0
    assert "flow: 18 of 18 fields reused from the cache, 0 computed" in capsys.readouterr().out
    assert run("cluster", tmp_path / "o/trajectories.npz", "--cluster", "spectral", "--num-clusters", "3",
               "--no-images", "-q") == 0
    assert "labelled trajectories in 3 clusters" in capsys.readouterr().out
    assert (tmp_path / "o/Tracks10.dat").is_file() and not (tmp_path / "o/overlays").exists()


def test_bad_sequence_and_method(tmp_path, sequence):
    with pytest.raises(FileNotFoundError, match="missing"):
        run("run", "--sequence", tmp_path / "missing", "-o", tmp_path / "o")
    with pytest.raises(ValueError, match="unknown flow method 'nope'"):
        run("track", "--sequence", sequence, "--method", "nope", "-o", tmp_path / "o", "-q")
    with pytest.raises(ValueError, match="accepts 10, 50, 200 or all"):
        run("track", "--sequence", sequence, "--frames", "7", "-o", tmp_path / "o", "-q")


def test_fb_thresholds_reach_the_tracker(sequence, tmp_path, monkeypatch):
    """--fb-alpha1/--fb-alpha2 set SegmentationOptions.fb_alpha1/2, which track_points receives."""
    from flowapps.segmentation import commands, pipeline

    parser = build_parser({"segment": SEGMENT})
    for step in ("track", "run"):
        args = parser.parse_args(["segment", step, "--sequence", str(sequence), "-o", str(tmp_path / "o"),
                                  "--fb-alpha1", "0.02", "--fb-alpha2", "1.5"])
        opts = commands._options(args)
        assert (opts.fb_alpha1, opts.fb_alpha2) == (0.02, 1.5)
    args = parser.parse_args(["segment", "track", "--sequence", str(sequence), "-o", str(tmp_path / "o")])
    assert (commands._options(args).fb_alpha1, commands._options(args).fb_alpha2) == (0.01, 0.5)
    seen = {}
    real = pipeline.track_points
    monkeypatch.setattr(pipeline, "track_points", lambda *a, **k: seen.update(k) or real(*a, **k))
    assert run("track", "--sequence", sequence, "--method", "exact", "-o", tmp_path / "o", "-q",
               "--fb-alpha1", "0.02", "--fb-alpha2", "1.5") == 0
    assert (seen["fb_alpha1"], seen["fb_alpha2"]) == (0.02, 1.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "track", "--sequence", "s", "-o", "o", "--fb-alpha2", "-1"])
