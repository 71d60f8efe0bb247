"""The port of the FBMS-59 evaluator (MoSegEval v2.0): golden cases from the official program,
and edge cases computed by hand."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from flowapps.segmentation.fbms import ShotDefinition, TrackSet, write_definition, write_pnm, write_shot_list, write_track_list, write_tracks
from flowapps.segmentation.colors import cluster_rgb
from flowapps.segmentation.hungarian import hungarian_libhungarian
from flowapps.segmentation.moseg_eval import evaluate_all, evaluate_shot, numbers_path

GOLDEN = Path(__file__).parent / "data" / "fbms_eval_cases"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["shots"]


# --------------------------------------------------------------------------- golden cases
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_shot_reproduces_official_numbers(golden, name):
    exp = EXPECTED[name]
    res = evaluate_shot(exp["def_file"], exp["track_file"], 0.75)
    assert abs(float(res.precision) - exp["precision"]) <= 2e-5
    assert abs(float(res.recall) - exp["recall"]) <= 2e-5
    assert abs(float(res.f_measure) - exp["f_measure"]) <= 2e-5
    assert abs(float(res.density) - exp["density"]) <= 2e-4
    assert res.visible_objects == exp["visible_objects"]
    assert res.extracted_objects == exp["extracted_objects"]
    assert res.num_regions == exp["regions"] and res.num_clusters == exp["n_clusters"]
    assert res.evaluated_frames == exp["frames"]
    assert res.used_labelled_frames == len(exp["labelled_frames"])
    printed = res.printed()
    assert f"{printed['density']:g}" == exp["printed"]["density"]
    assert " ".join(f"{printed[k]:g}" for k in ("precision", "recall", "f_measure")) == exp["printed"]["avg_P_R_F"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_output_files_are_identical(golden, name):
    exp = EXPECTED[name]
    res = evaluate_shot(exp["def_file"], exp["track_file"], 0.75)
    stem = Path(exp["track_file"]).stem
    assert res.numbers_text() == (golden / "official" / name / f"{stem}Numbers.txt").read_text()
    assert res.matrices_text() == (golden / "official" / name / "stderr.txt").read_text()
    assert numbers_path(exp["track_file"]) == exp["track_file"][:-4] + "Numbers.txt"


def test_golden_all_shots(golden):
    lines = []
    res = evaluate_all("allShots.txt", "all", "allTracks.txt", 0.75, write_numbers=True, log=lines.append)
    assert len(res.shots) == 4
    # The all-shots program averages the per-shot values as printed, without weights.
    for key, attr in (("precision", "precision"), ("recall", "recall"), ("density", "density")):
        mean = np.mean([EXPECTED[n][key] for n in EXPECTED])
        assert abs(float(getattr(res, attr)) - mean) < 1e-5
    p, r = res.precision, res.recall
    assert abs(float(res.f_measure) - 2 * p * r / (p + r)) < 1e-6
    assert res.extracted_objects == sum(e["extracted_objects"] for e in EXPECTED.values())
    assert res.visible_objects == sum(e["visible_objects"] for e in EXPECTED.values())
    assert lines[:3] == ["output file: shots/s01_perfect_pgm/Tracks12Numbers.txt", "(P,R)=(1,1) ",
                         "extracted objects counter: 2 / 2"]
    assert lines[-1] == "extracted objects counter: 6 / 11"
    text = (golden / "allTracks_Fgeq75.00Numbers.txt").read_text()
    assert text.startswith("Evaluation results for segmentations obtained using all frames\nMoSegEval Version 2.0\n")
    assert "4 shots were evaluated." in text and "\n6\nof 11 visible objects\n" in text
    for name, exp in EXPECTED.items():   # the per-shot files it wrote equal the official ones
        stem = Path(exp["track_file"]).stem
        assert Path(numbers_path(exp["track_file"])).read_text() == (golden / "official" / name / f"{stem}Numbers.txt").read_text()


def test_threshold_is_strict(golden):
    exp = EXPECTED["s01_perfect_pgm"]
    assert evaluate_shot(exp["def_file"], exp["track_file"], 1.0).extracted_objects == 0   # F = 1 is not > 1
    res = evaluate_shot(exp["def_file"], exp["track_file"], 0.9)
    assert res.extracted_objects == 2 and "F-measure > 0.90" in res.numbers_text()


def test_cluster_colours():
    assert cluster_rgb(0) == (255, 10, 10) and cluster_rgb(4) == (255, 0, 255)
    assert cluster_rgb(40) == (0, 1, 2) and cluster_rgb(99) == (59, 60, 61)


# --------------------------------------------------------------------------- Hungarian
def test_hungarian_port_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 9))
        c = rng.integers(-10000, 1, (n, n)) * (rng.random((n, n)) < 0.6)
        cols = hungarian_libhungarian(c)
        assert sorted(cols.tolist()) == list(range(n))
        r, k = linear_sum_assignment(c)
        assert c[np.arange(n), cols].sum() == c[r, k].sum()


def test_hungarian_tie_break_is_libhungarian():
    # Both assignments cost -7500. libhungarian subtracts the column minima ([[0, 0], [2500, 2500]])
    # and matches greedily in row order: row 0 -> column 0. (SciPy's linear_sum_assignment returns
    # row 0 -> column 1 here, which is why the evaluator keeps the port.)
    c = np.array([[-2500, -7500], [0, -5000]])
    assert hungarian_libhungarian(c).tolist() == [0, 1]
    r, k = linear_sum_assignment(c)
    assert c[r, k].sum() == -7500


def test_hungarian_tie_break_matches_official(golden):
    # s12: clusters 3 and 4 tie on regions 3 / dummy; the official program chose the identity.
    exp = EXPECTED["s12_bg_fragmented_pgm"]
    res = evaluate_shot(exp["def_file"], exp["track_file"], 0.75)
    assert res.assignment.tolist() == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- edge cases
def make_shot(folder: Path, gts: list[np.ndarray], frames: list[int], total: int, codes=(0, 255, 128)) -> Path:
    """A .pgm shot: one grey GT image per labelled frame."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for f, g in zip(frames, gts):
        write_pnm(folder / f"x_{f:04d}.pgm", g.astype(np.uint8))
        names.append(f"x_{f:04d}.pgm")
    path = folder / "xDef.dat"
    write_definition(path, ShotDefinition(tuple(codes), total, tuple(frames), tuple(names), tuple(names)))
    return path


def halves(h=10, w=10):
    g = np.zeros((h, w), np.uint8)
    g[:, w // 2:] = 255
    return g


def points(label, xy, frame=0):
    return (label, [[x, y, frame] for x, y in xy])


def test_unused_cluster_label(tmp_path):
    """Labels 0 and 2 used, 1 never: cluster 1 is empty and left to the dummy region."""
    d = make_shot(tmp_path, [halves()], [0], 10)
    ts = TrackSet.from_lists(10, [points(0, [(1, y)]) for y in range(5)] + [points(2, [(8, y)]) for y in range(5)])
    res = evaluate_shot(d, ts)
    assert res.num_clusters == 3
    assert (float(res.precision), float(res.recall), float(res.f_measure)) == (1.0, 1.0, 1.0)
    assert [(c, r, k) for c, r, *_, k in res.pairs] == [(0, 0, "pair"), (1, -1, "unused cluster"), (2, 1, "pair")]
    assert res.extracted_objects == 1 and res.visible_objects == 1
    assert abs(float(res.density) - 10.0) < 1e-5           # 5 of 50 pixels in each region


def test_invisible_region_is_not_counted(tmp_path):
    """Region 2 is listed but appears in no labelled frame (and a zero-weight region is invisible too)."""
    d = make_shot(tmp_path, [halves()], [0], 10, codes=(0, 255, 128))
    ts = TrackSet.from_lists(10, [points(0, [(1, 1)]), points(1, [(8, 1)])])
    res = evaluate_shot(d, ts)
    assert res.visible_regions == [0, 1] and res.visible_objects == 1
    assert float(res.f_measure) == 1.0 and res.extracted_objects == 1
    # .ppm ground truth whose weight map is 0 on the right half: region 1 becomes invisible.
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[:, 5:] = (0, 0, 255)
    write_pnm(tmp_path / "y_0000.ppm", rgb)
    wmap = np.full((10, 10), 255, np.uint8)
    wmap[:, 5:] = 0
    write_pnm(tmp_path / "y_0000.pgm", wmap)
    write_definition(tmp_path / "yDef.dat", ShotDefinition((0, 255), 10, (0,), ("y_0000.ppm",), ("",)))
    res = evaluate_shot(tmp_path / "yDef.dat", ts)
    assert res.visible_regions == [0] and res.visible_objects == 0
    assert float(res.precision) == 1.0          # the point on region 1 weighs 0 in every count


def test_points_outside_image_and_rounding(tmp_path):
    """(int)(v + 0.5f) truncates towards zero: −0.7 and −1.2 land on column 0, −1.6 and 9.5 are outside."""
    d = make_shot(tmp_path, [np.zeros((10, 10))], [0], 10, codes=(0,))
    xs = [-0.7, -1.2, -1.6, 9.4, 9.5]
    ts = TrackSet.from_lists(10, [points(0, [(x, 5.0)]) for x in xs] + [points(0, [(3.0, -0.6)])])
    res = evaluate_shot(d, ts)
    assert abs(float(res.density) - 4.0) < 1e-5     # 4 of 100 pixels hit: −0.7, −1.2, 9.4, and y=−0.6
    assert float(res.precision) == 1.0 and float(res.recall) == 1.0


def test_fewer_clusters_than_regions(tmp_path):
    """One cluster over three regions: the two regions left over count P = 1, R = 0."""
    g = np.zeros((10, 30), np.uint8)
    g[:, 10:20] = 255
    g[:, 20:] = 128
    d = make_shot(tmp_path, [g], [0], 10)
    pts = [(2, y) for y in range(5)] + [(12, y) for y in range(3)] + [(22, y) for y in range(2)]
    res = evaluate_shot(d, TrackSet.from_lists(10, [points(0, [p]) for p in pts]))
    assert res.pairs[0][:2] == (0, 0) and res.pairs[0][-1] == "pair"
    assert sorted(p[1] for p in res.pairs[1:]) == [1, 2]
    assert all(p[-1] == "empty cluster" for p in res.pairs[1:])
    p, r = (0.5 + 1 + 1) / 3, 1 / 3
    assert abs(float(res.precision) - p) < 1e-6 and abs(float(res.recall) - r) < 1e-6
    assert abs(float(res.f_measure) - 2 * p * r / (p + r)) < 1e-6
    assert res.extracted_objects == 0 and res.visible_objects == 2
    assert "1 0 0 (empty cluster)" in res.numbers_text()


def test_empty_track_file(tmp_path):
    d = make_shot(tmp_path, [halves()], [0], 10)
    res = evaluate_shot(d, TrackSet.from_lists(10, []))
    assert res.num_clusters == 0
    assert [k for *_, k in res.pairs] == ["empty cluster", "empty cluster"]
    assert float(res.precision) == 1.0 and float(res.recall) == 0.0 and float(res.density) == 0.0


def test_frame_window(tmp_path):
    """Labelled frames are used up to the first one whose index exceeds the sequence length."""
    gts = [halves()] * 4
    d = make_shot(tmp_path, gts, [0, 10, 11, 20], 30)
    track = [(0, [[1, 1, f] for f in range(30)]), (1, [[8, 1, f] for f in range(30)])]
    assert evaluate_shot(d, TrackSet.from_lists(10, track)).used_labelled_frames == 2      # 0 and 10
    assert evaluate_shot(d, TrackSet.from_lists(30, track)).used_labelled_frames == 4
    with pytest.raises(ValueError, match="length of tracked sequence \\(15\\)"):
        evaluate_shot(d, TrackSet.from_lists(15, track))


def test_track_with_gaps_is_rejected(tmp_path):
    d = make_shot(tmp_path, [halves(), halves()], [0, 3], 10)
    ts = TrackSet.from_lists(10, [(0, [[1, 1, 0], [1, 1, 5]])])
    with pytest.raises(ValueError, match="consecutive"):
        evaluate_shot(d, ts)


def test_all_shots_mode_skips_short_shots_without_using_a_track_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_shot(tmp_path / "a", [halves()], [0], 8)
    make_shot(tmp_path / "b", [halves()], [0], 12)
    write_tracks(tmp_path / "b" / "T10.dat", TrackSet.from_lists(10, [points(0, [(1, 1)]), points(1, [(8, 1)])]))
    write_shot_list(tmp_path / "shots.txt", ["a/xDef.dat", "b/xDef.dat"])
    write_track_list(tmp_path / "tracks.txt", ["b/T10.dat"])
    lines = []
    res = evaluate_all("shots.txt", "10", "tracks.txt", 0.75, log=lines.append)
    assert lines[0] == "Only 8 frames. a/xDef.dat ignored."
    assert len(res.shots) == 1 and res.skipped == [("a/xDef.dat", 8)]
    assert float(res.f_measure) == 1.0 and res.summary_path() == "tracks_Fgeq75.00Numbers.txt"
    # In "all" mode both shots are evaluated, and the list is one track file short.
    with pytest.raises(ValueError, match="tracks.txt.*fewer than the shots"):
        evaluate_all("shots.txt", "all", "tracks.txt", 0.75)
    # Track files computed on another length than the mode.
    write_tracks(tmp_path / "b" / "T10.dat", TrackSet.from_lists(12, [points(0, [(1, 1)])]))
    with pytest.raises(ValueError, match="different numbers of frames"):
        evaluate_all("shots.txt", "10", "tracks.txt", 0.75)
    with pytest.raises(ValueError, match="Evaluation of 20 frames is not allowed"):
        evaluate_all("shots.txt", "20", "tracks.txt", 0.75)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        evaluate_all("nope.txt", "all", "tracks.txt", 0.75)


# --------------------------------------------------------------------------- inconsistent data: one-line errors
def test_ground_truth_of_another_size_is_an_error(tmp_path):
    d = make_shot(tmp_path, [halves(10, 10), halves(12, 10)], [0, 5], 10)
    ts = TrackSet.from_lists(10, [(0, [[1, 1, f] for f in range(10)])])
    with pytest.raises(ValueError, match=r"x_0005.pgm: ground truth is 10×12, the shot's first labelled frame "
                                         r"x_0000.pgm is 10×10"):
        evaluate_shot(d, ts)


@pytest.mark.parametrize("frame", [10, 25, -1])
def test_def_naming_a_frame_outside_the_shot_is_an_error(tmp_path, frame):
    from flowapps.segmentation.fbms import read_definition

    d = make_shot(tmp_path, [halves(), halves()], [0, frame], 10)
    with pytest.raises(ValueError, match=rf"xDef.dat: labelled frame 1 is frame {frame}, outside the shot's 10 "
                                         r"frames \(0 … 9\)"):
        read_definition(d)


def test_track_count_mismatches_are_errors(tmp_path, monkeypatch):
    from flowapps.segmentation.fbms import read_tracks

    monkeypatch.chdir(tmp_path)
    make_shot(tmp_path / "a", [halves()], [0], 10)
    write_tracks(tmp_path / "a" / "T10.dat", TrackSet.from_lists(10, [points(0, [(1, 1)]), points(1, [(8, 1)])]))
    write_shot_list(tmp_path / "shots.txt", ["a/xDef.dat"])
    write_track_list(tmp_path / "tracks.txt", ["a/T10.dat", "a/T10.dat"])
    with pytest.raises(ValueError, match=r"tracks.txt: lists 2 track files for the 1 shots evaluated"):
        evaluate_all("shots.txt", "all", "tracks.txt", 0.75)
    # A header announcing fewer tracks than the file holds.
    text = (tmp_path / "a" / "T10.dat").read_text().splitlines()
    text[1] = "1"
    (tmp_path / "a" / "T10.dat").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"T10.dat: 5 numbers after the 1 tracks its header announces"):
        read_tracks(tmp_path / "a" / "T10.dat")
