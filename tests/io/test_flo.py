"""Middlebury .flo reading/writing, and the extension-dispatching read_flow/write_flow."""

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from flownet2_core.io import (
    UNKNOWN_FLOW,
    flow_valid_mask,
    read_flo,
    read_flo_with_valid,
    read_flow,
    write_flo,
    write_flow,
)


def random_flow(h=7, w=11, seed=0, scale=30.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((h, w, 2)) * scale).astype(np.float32)


def flo_bytes(width, height, values=None, magic=202021.25):
    header = struct.pack("<fii", magic, width, height)
    if values is None:
        return header
    return header + np.asarray(values, "<f4").tobytes()


class TestFloRoundTrip:
    def test_round_trip_exact(self, tmp_path):
        flow = random_flow()
        assert (flow < 0).any() and (np.abs(flow % 1) > 0).any()  # negative and fractional
        path = tmp_path / "a.flo"
        write_flo(path, flow)
        back = read_flo(path)
        assert back.dtype == np.float32 and back.shape == flow.shape
        np.testing.assert_array_equal(back, flow)

    def test_str_and_pathlike(self, tmp_path):
        flow = random_flow(3, 4)
        write_flo(str(tmp_path / "s.flo"), flow)
        np.testing.assert_array_equal(read_flo(Path(tmp_path / "s.flo")), flow)

    def test_float64_input_converted(self, tmp_path):
        flow = random_flow(3, 5).astype(np.float64)
        write_flo(tmp_path / "d.flo", flow)
        assert os.path.getsize(tmp_path / "d.flo") == 12 + 3 * 5 * 2 * 4
        np.testing.assert_array_equal(read_flo(tmp_path / "d.flo"), flow.astype(np.float32))

    def test_byte_layout_written(self, tmp_path):
        # 2 rows x 3 columns; u = 10*row + col, v = -u: checks width/height order,
        # row-major order and u/v interleaving.
        rows, cols = np.mgrid[0:2, 0:3]
        u = (10 * rows + cols).astype(np.float32)
        flow = np.stack([u, -u], axis=-1)
        write_flo(tmp_path / "l.flo", flow)
        raw = (tmp_path / "l.flo").read_bytes()
        assert raw[:4] == b"PIEH"
        assert struct.unpack("<ii", raw[4:12]) == (3, 2)
        vals = np.frombuffer(raw[12:], "<f4")
        np.testing.assert_array_equal(vals[:6], [0, -0, 1, -1, 2, -2])
        np.testing.assert_array_equal(vals[6:8], [10, -10])

    def test_reads_hand_written_file(self, tmp_path):
        # width 2, height 1: pixel (0,0) = (1.5, -2), pixel (0,1) = (3, 4.25)
        (tmp_path / "h.flo").write_bytes(flo_bytes(2, 1, [1.5, -2, 3, 4.25]))
        flow = read_flo(tmp_path / "h.flo")
        assert flow.shape == (1, 2, 2)
        np.testing.assert_array_equal(flow[0, 0], [1.5, -2])
        np.testing.assert_array_equal(flow[0, 1], [3, 4.25])

    def test_no_temp_files_left(self, tmp_path):
        write_flo(tmp_path / "a.flo", random_flow())
        write_flo(tmp_path / "a.flo", random_flow(seed=1))  # overwrite
        assert os.listdir(tmp_path) == ["a.flo"]
        np.testing.assert_array_equal(read_flo(tmp_path / "a.flo"), random_flow(seed=1))


class TestFloValid:
    def test_nan_and_huge_are_invalid(self, tmp_path):
        flow = random_flow(4, 5)
        flow[0, 0, 0] = np.nan
        flow[1, 2, 1] = 1e10
        flow[2, 3, 0] = -2e9
        flow[3, 4, :] = np.inf
        flow[3, 0, 0] = 9e8  # large but known
        write_flo(tmp_path / "u.flo", flow)

        raw = read_flo(tmp_path / "u.flo")
        assert np.isnan(raw[0, 0, 0]) and raw[1, 2, 1] == 1e10  # raw values kept

        back, valid = read_flo_with_valid(tmp_path / "u.flo")
        expected = np.ones((4, 5), bool)
        expected[0, 0] = expected[1, 2] = expected[2, 3] = expected[3, 4] = False
        np.testing.assert_array_equal(valid, expected)
        assert valid.dtype == bool
        assert np.all(back[~valid] == 0)
        np.testing.assert_array_equal(back[valid], flow[valid])
        assert np.isfinite(back).all()

    def test_write_with_valid_mask_uses_unknown_marker(self, tmp_path):
        flow = random_flow(3, 4)
        valid = np.ones((3, 4), bool)
        valid[1, 1] = False
        write_flo(tmp_path / "m.flo", flow, valid)
        raw = read_flo(tmp_path / "m.flo")
        np.testing.assert_array_equal(raw[1, 1], [UNKNOWN_FLOW, UNKNOWN_FLOW])
        np.testing.assert_array_equal(read_flo_with_valid(tmp_path / "m.flo")[1], valid)
        assert np.isfinite(flow).all()  # caller's array untouched

    def test_flow_valid_mask(self):
        flow = np.zeros((1, 4, 2), np.float32)
        flow[0, 1, 0] = np.nan
        flow[0, 2, 1] = -1e10
        flow[0, 3, 0] = 1e9  # exactly the threshold: known
        np.testing.assert_array_equal(flow_valid_mask(flow), [[True, False, False, True]])


class TestFloOpenCVInterop:
    def test_opencv_reads_ours(self, tmp_path):
        flow = random_flow(6, 9)
        write_flo(tmp_path / "o.flo", flow)
        np.testing.assert_array_equal(cv2.readOpticalFlow(str(tmp_path / "o.flo")), flow)

    def test_we_read_opencvs(self, tmp_path):
        flow = random_flow(5, 8, seed=3)
        assert cv2.writeOpticalFlow(str(tmp_path / "c.flo"), flow)
        np.testing.assert_array_equal(read_flo(tmp_path / "c.flo"), flow)

    def test_torchvision_reads_ours(self, tmp_path):
        from torchvision.datasets._optical_flow import _read_flo

        flow = random_flow(4, 6, seed=5)
        write_flo(tmp_path / "t.flo", flow)
        # torchvision returns channel-first (2, H, W)
        np.testing.assert_array_equal(_read_flo(str(tmp_path / "t.flo")).transpose(1, 2, 0), flow)


class TestFloBadFiles:
    def test_bad_magic(self, tmp_path):
        p = tmp_path / "x.flo"
        p.write_bytes(flo_bytes(2, 2, np.zeros(8), magic=1.0))
        with pytest.raises(ValueError, match=r"x\.flo: bad magic number 1\.0 \(expected 202021\.25\)"):
            read_flo(p)

    def test_big_endian_magic_hint(self, tmp_path):
        p = tmp_path / "be.flo"
        p.write_bytes(struct.pack(">fii", 202021.25, 1, 1) + b"\0" * 8)
        with pytest.raises(ValueError, match="be.flo: bad magic.*byte-swapped"):
            read_flo(p)

    def test_png_is_not_flo(self, tmp_path):
        p = tmp_path / "img.flo"
        ok, buf = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))
        p.write_bytes(buf.tobytes())
        with pytest.raises(ValueError, match="img.flo: bad magic number"):
            read_flo(p)

    def test_truncated_data(self, tmp_path):
        p = tmp_path / "t.flo"
        p.write_bytes(flo_bytes(4, 3, np.zeros(4 * 3 * 2 - 1)))
        with pytest.raises(ValueError, match=r"t\.flo: truncated.*4x3"):
            read_flo(p)

    def test_truncated_header(self, tmp_path):
        p = tmp_path / "h.flo"
        p.write_bytes(flo_bytes(4, 3)[:8])
        with pytest.raises(ValueError, match=r"h\.flo: truncated \.flo header"):
            read_flo(p)

    def test_tiny_file(self, tmp_path):
        p = tmp_path / "tiny.flo"
        p.write_bytes(b"PI")
        with pytest.raises(ValueError, match="tiny.flo: file is 2 bytes"):
            read_flo(p)

    def test_empty_file(self, tmp_path):
        p = tmp_path / "e.flo"
        p.write_bytes(b"")
        with pytest.raises(ValueError, match="e.flo: file is 0 bytes"):
            read_flo(p)

    def test_trailing_bytes(self, tmp_path):
        p = tmp_path / "tr.flo"
        p.write_bytes(flo_bytes(2, 2, np.zeros(8)) + b"\0\0\0\0")
        with pytest.raises(ValueError, match="tr.flo: trailing bytes"):
            read_flo(p)

    @pytest.mark.parametrize("w,h", [(100001, 2), (2, 10**9), (0, 5), (5, 0), (-3, 4), (4, -1)])
    def test_absurd_dimensions(self, tmp_path, w, h):
        p = tmp_path / "dims.flo"
        p.write_bytes(flo_bytes(w, h, np.zeros(8)))
        with pytest.raises(ValueError, match=rf"dims\.flo: implausible size width={w} height={h}"):
            read_flo(p)

    def test_large_header_small_file_refused_before_allocating(self, tmp_path):
        # 100000 x 100000 is within the dimension limit but would be 80 GB of data:
        # the size check must fire before any allocation.
        p = tmp_path / "big.flo"
        p.write_bytes(flo_bytes(100000, 100000, np.zeros(8)))
        with pytest.raises(ValueError, match=r"big\.flo: truncated.*100000x100000"):
            read_flo(p)

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.flo"):
            read_flo(tmp_path / "nope.flo")

    def test_directory(self, tmp_path):
        d = tmp_path / "dir.flo"
        d.mkdir()
        with pytest.raises(IsADirectoryError, match="dir.flo"):
            read_flo(d)


class TestFloWriteErrors:
    @pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3), (0, 5, 2), (2, 4, 5, 2)])
    def test_bad_shape(self, tmp_path, shape):
        with pytest.raises(ValueError, match="shape"):
            write_flo(tmp_path / "b.flo", np.zeros(shape, np.float32))
        assert os.listdir(tmp_path) == []

    def test_bool_dtype_refused(self, tmp_path):
        with pytest.raises(ValueError, match="dtype"):
            write_flo(tmp_path / "b.flo", np.zeros((2, 2, 2), bool))

    def test_missing_parent_dir(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="parent directory"):
            write_flo(tmp_path / "no" / "a.flo", random_flow())

    def test_target_is_directory(self, tmp_path):
        (tmp_path / "d.flo").mkdir()
        with pytest.raises(IsADirectoryError):
            write_flo(tmp_path / "d.flo", random_flow())

    def test_failed_write_keeps_old_file_and_no_temp(self, tmp_path, monkeypatch):
        p = tmp_path / "keep.flo"
        old = random_flow(seed=7)
        write_flo(p, old)

        def boom(src, dst):
            raise OSError("simulated crash before rename")

        monkeypatch.setattr(os, "replace", boom)
        with pytest.raises(OSError, match="simulated"):
            write_flo(p, random_flow(seed=8))
        monkeypatch.undo()
        assert os.listdir(tmp_path) == ["keep.flo"]
        np.testing.assert_array_equal(read_flo(p), old)


class TestReadWriteFlowDispatch:
    @pytest.mark.parametrize("ext", [".flo", ".png", ".pfm", ".FLO", ".PNG", ".Pfm"])
    def test_round_trip_with_valid(self, tmp_path, ext):
        flow = random_flow(6, 7, seed=11, scale=20.0)
        valid = np.random.default_rng(2).random((6, 7)) > 0.3
        path = tmp_path / f"f{ext}"
        write_flow(path, flow, valid)
        back, back_valid = read_flow(path)
        assert back.shape == (6, 7, 2) and back.dtype == np.float32
        np.testing.assert_array_equal(back_valid, valid)
        assert np.all(back[~valid] == 0)
        tol = 0.5 / 64 + 1e-6 if ext.lower() == ".png" else 0
        np.testing.assert_allclose(back[valid], flow[valid], rtol=0, atol=tol)

    @pytest.mark.parametrize("ext", [".flo", ".png", ".pfm"])
    def test_without_valid_all_valid(self, tmp_path, ext):
        flow = random_flow(3, 4, scale=5.0)
        write_flow(tmp_path / f"a{ext}", flow)
        _, valid = read_flow(tmp_path / f"a{ext}")
        assert valid.all()

    def test_formats_dispatch_to_the_right_writer(self, tmp_path):
        flow = random_flow(3, 4)
        write_flow(tmp_path / "a.flo", flow)
        write_flow(tmp_path / "a.png", flow)
        write_flow(tmp_path / "a.pfm", flow)
        assert (tmp_path / "a.flo").read_bytes()[:4] == b"PIEH"
        assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "a.pfm").read_bytes()[:3] == b"PF\n"

    @pytest.mark.parametrize("func", ["read", "write"])
    def test_unknown_extension(self, tmp_path, func):
        p = tmp_path / "flow.npy"
        with pytest.raises(ValueError, match=r"flow\.npy: unknown flow file extension '\.npy'"):
            if func == "read":
                read_flow(p)
            else:
                write_flow(p, random_flow())
        assert not p.exists()

    def test_pfm_write_flow_does_not_modify_input(self, tmp_path):
        flow = random_flow(2, 3)
        copy = flow.copy()
        write_flow(tmp_path / "a.pfm", flow, np.zeros((2, 3), bool))
        np.testing.assert_array_equal(flow, copy)
