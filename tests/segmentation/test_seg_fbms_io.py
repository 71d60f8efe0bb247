"""FBMS-59 file formats: Def.dat, netpbm ground truth, track files, list files, sequence folders."""

from pathlib import Path

import numpy as np
import pytest

from flowapps.segmentation.fbms import (ShotDefinition, TrackSet, color_code, list_frames, read_definition,
                                        read_gt_frame, read_pnm, read_sequence, read_shot_list, read_track_list,
                                        read_tracks, write_definition, write_pnm, write_shot_list, write_track_list,
                                        write_tracks)
from flowapps.segmentation.synthetic import write_fbms_sequence

GOLDEN = Path(__file__).parent / "data" / "fbms_eval_cases"


class TestDefinition:
    def test_reads_golden_ppm_definition(self):
        d = read_definition(GOLDEN / "shots/s04_underseg_ppm/GroundTruth/s04_underseg_ppmDef.dat")
        assert d.region_codes == (1056816, 16776960, 65535, 16711935)
        assert d.total_frames == 24
        assert d.labelled_frames == (0, 8, 16, 23)
        assert d.gt_files[1] == "s04_underseg_ppm_0008.ppm"
        assert d.input_files[1] == "s04_underseg_ppm_0008.jpg"
        assert d.penalty.shape == (4, 4) and d.penalty[0, 1] == 1
        assert d.gt_path(0).is_file()

    def test_round_trip(self, tmp_path):
        d = ShotDefinition((0, 255, 128), 17, (0, 8, 16), ("a_0.pgm", "a_8.pgm", "a_16.pgm"),
                           ("a_0.jpg", "a_8.jpg", "a_16.jpg"))
        write_definition(tmp_path / "aDef.dat", d)
        back = read_definition(tmp_path / "aDef.dat")
        assert back == ShotDefinition(d.region_codes, 17, d.labelled_frames, d.gt_files, d.input_files,
                                      path=tmp_path / "aDef.dat")
        assert back.folder == tmp_path

    def test_crlf_line_ends(self, tmp_path):
        src = (GOLDEN / "shots/s01_perfect_pgm/GroundTruth/s01_perfect_pgmDef.dat").read_text()
        (tmp_path / "xDef.dat").write_bytes(src.replace("\n", "\r\n").encode())
        d = read_definition(tmp_path / "xDef.dat")
        assert d.labelled_frames == (0, 5, 11) and d.gt_files[0] == "s01_perfect_pgm_0000.pgm"

    def test_colour_lookup_unlisted_is_background_and_later_wins(self):
        d = ShotDefinition((10, 20, 20), 5, (), (), ())
        assert d.color_to_region(np.array([10, 20, 99])).tolist() == [0, 2, 0]

    def test_errors_name_the_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope"):
            read_definition(tmp_path / "nopeDef.dat")
        bad = tmp_path / "badDef.dat"
        bad.write_text("header\n\nTotal number of regions:\nthree\n")
        with pytest.raises(ValueError, match="badDef.dat.*number of regions"):
            read_definition(bad)
        short = tmp_path / "shortDef.dat"
        short.write_text("header\n\nTotal number of regions:\n2\nScale of region 0:\n0\n")
        with pytest.raises(ValueError, match="shortDef.dat"):
            read_definition(short)


class TestNetpbm:
    @pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((5, 7, 3), np.uint8), ((4, 3), np.uint16)])
    def test_round_trip(self, tmp_path, shape, dtype):
        a = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, shape).astype(dtype)
        write_pnm(tmp_path / "x.pnm", a)
        np.testing.assert_array_equal(read_pnm(tmp_path / "x.pnm"), a)

    def test_byte_layout(self, tmp_path):
        # RGB order on disk (OpenCV works in BGR), 16-bit samples big-endian.
        (tmp_path / "c.ppm").write_bytes(b"P6\n2 1\n255\n" + bytes([1, 2, 3, 4, 5, 6]))
        np.testing.assert_array_equal(read_pnm(tmp_path / "c.ppm"), [[[1, 2, 3], [4, 5, 6]]])
        (tmp_path / "d.pgm").write_bytes(b"P5\n2 1\n65535\n" + bytes([1, 2, 0, 3]))
        d = read_pnm(tmp_path / "d.pgm")
        assert d.dtype == np.uint16 and d.tolist() == [[258, 3]]
        write_pnm(tmp_path / "e.ppm", np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
        assert (tmp_path / "e.ppm").read_bytes() == b"P6\n2 1\n255\n" + bytes([1, 2, 3, 4, 5, 6])
        write_pnm(tmp_path / "f.pgm", np.array([[258, 3]], np.uint16))
        assert (tmp_path / "f.pgm").read_bytes() == b"P5\n2 1\n65535\n" + bytes([1, 2, 0, 3])

    def test_ascii_with_comments(self, tmp_path):
        (tmp_path / "a.pgm").write_text("P2\n# a comment\n3 2\n# another\n255\n0 1 2\n3 4 255\n")
        np.testing.assert_array_equal(read_pnm(tmp_path / "a.pgm"), [[0, 1, 2], [3, 4, 255]])

    def test_bad_files(self, tmp_path):
        (tmp_path / "a.pgm").write_bytes(b"GIF89a")
        with pytest.raises(ValueError, match="a.pgm.*not a PGM"):
            read_pnm(tmp_path / "a.pgm")
        (tmp_path / "b.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(10))
        with pytest.raises(ValueError, match="b.pgm.*truncated"):
            read_pnm(tmp_path / "b.pgm")
        with pytest.raises(FileNotFoundError, match="c.pgm"):
            read_pnm(tmp_path / "c.pgm")

    def test_ppm_ground_truth_with_weights(self):
        d = read_definition(GOLDEN / "shots/s04_underseg_ppm/GroundTruth/s04_underseg_ppmDef.dat")
        codes, w = read_gt_frame(d, 0)
        rgb = read_pnm(d.gt_path(0))
        grey = read_pnm(d.gt_path(0).with_suffix(".pgm"))
        np.testing.assert_array_equal(codes, color_code(rgb))
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, (grey / 255.0).astype(np.float32))
        assert set(np.unique(codes)) <= set(d.region_codes)

    def test_missing_weight_map(self, tmp_path):
        write_pnm(tmp_path / "g_0.ppm", np.zeros((4, 4, 3), np.uint8))
        d = ShotDefinition((0,), 1, (0,), ("g_0.ppm",), ("",), path=tmp_path / "gDef.dat")
        with pytest.raises(FileNotFoundError, match="g_0.pgm"):
            read_gt_frame(d, 0)


class TestTracks:
    def test_round_trip(self, tmp_path):
        ts = TrackSet.from_lists(10, [(0, [[1.5, 2.25, 3], [2.5, 3.0, 4]]), (2, [[0.0, 0.0, 0]]), (1, np.zeros((0, 3)))])
        write_tracks(tmp_path / "T.dat", ts)
        back = read_tracks(tmp_path / "T.dat")
        assert back.sequence_length == 10
        assert back.labels.tolist() == [0, 2, 1]
        assert back.lengths.tolist() == [2, 1, 0]
        np.testing.assert_allclose(back.xy, ts.xy)
        assert back.frames.tolist() == [3, 4, 0]

    def test_reads_golden_track_file(self):
        ts = read_tracks(GOLDEN / "shots/s04_underseg_ppm/Tracks24.dat")
        assert ts.sequence_length == 24 and len(ts) == 1293
        assert ts.labels[0] == 0 and ts.lengths[0] == 8
        np.testing.assert_allclose(ts.xy[0], [113.80, 7.06])

    def test_errors_name_the_file(self, tmp_path):
        p = tmp_path / "T.dat"
        p.write_text("10\n2\n0 2\n1 1 0\n")
        with pytest.raises(ValueError, match="T.dat.*ends early"):
            read_tracks(p)
        p.write_text("10\n1\n-1 1\n1 1 0\n")
        with pytest.raises(ValueError, match="T.dat.*negative label"):
            read_tracks(p)
        p.write_text("10\n1\nzero 1\n1 1 0\n")
        with pytest.raises(ValueError, match="T.dat.*integer label"):
            read_tracks(p)
        p.write_text("10\n1\n0 1\n1 y 0\n")
        with pytest.raises(ValueError, match="T.dat.*not a number"):
            read_tracks(p)
        with pytest.raises(FileNotFoundError, match="missing.dat"):
            read_tracks(tmp_path / "missing.dat")


class TestLists:
    def test_shot_list(self, tmp_path):
        write_shot_list(tmp_path / "s.txt", ["a/aDef.dat", "b/bDef.dat"])
        assert read_shot_list(tmp_path / "s.txt") == ["a/aDef.dat", "b/bDef.dat"]
        (tmp_path / "bad.txt").write_text("3\na\nb\n")
        with pytest.raises(ValueError, match="bad.txt.*3 shots"):
            read_shot_list(tmp_path / "bad.txt")

    def test_track_list_skips_one_character_tokens(self, tmp_path):
        (tmp_path / "t.txt").write_text("2\n\nx/T10.dat\n  y/T10.dat\n")
        assert read_track_list(tmp_path / "t.txt") == ["x/T10.dat", "y/T10.dat"]
        write_track_list(tmp_path / "u.txt", ["p.dat", "q.dat"])
        assert read_track_list(tmp_path / "u.txt") == ["p.dat", "q.dat"]


class TestSequenceFolders:
    def test_frames_sorted_by_number(self, tmp_path):
        for name in ("cars1_10.jpg", "cars1_2.jpg", "cars1_1.jpg", "notes.txt"):
            (tmp_path / name).write_bytes(b"")
        assert [f.name for f in list_frames(tmp_path)] == ["cars1_1.jpg", "cars1_2.jpg", "cars1_10.jpg"]

    @pytest.mark.parametrize("fmt", ["pgm", "ppm"])
    def test_writer_and_reader_agree(self, tmp_path, fmt):
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 255, (6, 12, 16, 3), dtype=np.uint8)
        masks = np.zeros((6, 12, 16), np.int32)
        masks[:, 2:6, 3:9] = 1
        masks[:, 8:11, 10:15] = 2
        flow = rng.normal(size=(5, 12, 16, 2)).astype(np.float32)
        seq = write_fbms_sequence(tmp_path / "toy", "toy", frames, masks, label_every=2, gt_format=fmt,
                                  flow_fw=flow, flow_bw=-flow)
        assert seq.name == "toy" and len(seq.frames) == 6
        np.testing.assert_array_equal(seq.read_frames(), frames)
        d = seq.definition
        assert d.labelled_frames == (0, 2, 4, 5) and d.total_frames == 6 and d.num_regions == 3
        codes, w = read_gt_frame(d, 1)
        np.testing.assert_array_equal(d.color_to_region(codes), masks[2])
        assert (w == 1).all()
        assert (tmp_path / "toy/flow/exact/forward_toy_0000.flo").is_file()
        assert (tmp_path / "toy/flow/exact/backward_toy_0005.flo").is_file()

    def test_missing_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nothing"):
            read_sequence(tmp_path / "nothing")
        (tmp_path / "empty").mkdir()
        with pytest.raises(FileNotFoundError, match="no frames"):
            read_sequence(tmp_path / "empty")
