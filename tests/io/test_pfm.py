"""PFM reading/writing (bottom-up rows, both byte orders, 1 and 3 channels)."""

import os

import numpy as np
import pytest

from flownet2_core.io import read_pfm, read_pfm_flow, write_pfm, write_pfm_flow


def random_data(shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 17).astype(np.float32)


class TestPfmRoundTrip:
    @pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
    @pytest.mark.parametrize("little_endian", [True, False])
    def test_round_trip(self, tmp_path, shape, little_endian):
        data = random_data(shape)
        write_pfm(tmp_path / "a.pfm", data, little_endian=little_endian)
        back = read_pfm(tmp_path / "a.pfm")
        assert back.dtype == np.float32 and back.dtype.isnative and back.shape == shape
        assert back.flags.c_contiguous
        np.testing.assert_array_equal(back, data)

    def test_one_channel_3d_input_is_written_as_pf_lower(self, tmp_path):
        data = random_data((3, 4, 1))
        write_pfm(tmp_path / "a.pfm", data)
        assert (tmp_path / "a.pfm").read_bytes().startswith(b"Pf\n4 3\n")
        np.testing.assert_array_equal(read_pfm(tmp_path / "a.pfm"), data[:, :, 0])

    def test_header_and_bottom_up_storage(self, tmp_path):
        data = np.array([[1, 2, 3], [4, 5, 6]], np.float32)  # top row 1 2 3
        write_pfm(tmp_path / "o.pfm", data)
        raw = (tmp_path / "o.pfm").read_bytes()
        header = b"Pf\n3 2\n-1.0\n"
        assert raw.startswith(header)
        np.testing.assert_array_equal(np.frombuffer(raw[len(header):], "<f4"), [4, 5, 6, 1, 2, 3])

    def test_reads_hand_written_little_endian_bottom_up(self, tmp_path):
        # Asymmetric 3x2 image: stored rows bottom-up, so the file starts with the bottom row.
        top_down = np.array([[0, 1], [10, 11], [20, 21]], np.float32)
        body = top_down[::-1].astype("<f4").tobytes()
        (tmp_path / "h.pfm").write_bytes(b"Pf\n2 3\n-1.000000\n" + body)
        back = read_pfm(tmp_path / "h.pfm")
        np.testing.assert_array_equal(back, top_down)
        assert back[0, 1] == 1 and back[2, 0] == 20

    def test_reads_hand_written_big_endian_three_channels(self, tmp_path):
        top_down = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) - 4.5
        body = top_down[::-1].astype(">f4").tobytes()
        (tmp_path / "be.pfm").write_bytes(b"PF\n3 2\n1.0\n" + body)
        np.testing.assert_array_equal(read_pfm(tmp_path / "be.pfm"), top_down)
        # the same bytes read as little-endian would be garbage: byte order really matters
        assert not np.array_equal(np.frombuffer(body, "<f4"), top_down[::-1].ravel())

    def test_scale_magnitude_ignored_and_header_whitespace(self, tmp_path):
        data = np.array([[1.5, -2.0]], np.float32)
        (tmp_path / "s.pfm").write_bytes(b"Pf\n2  1\n-0.5\n" + data.astype("<f4").tobytes())
        np.testing.assert_array_equal(read_pfm(tmp_path / "s.pfm"), data)


class TestPfmFlow:
    def test_flow_round_trip_and_third_channel(self, tmp_path):
        flow = random_data((4, 6, 2), seed=2)
        write_pfm_flow(tmp_path / "f.pfm", flow)
        full = read_pfm(tmp_path / "f.pfm")
        assert full.shape == (4, 6, 3) and np.all(full[..., 2] == 0)
        back = read_pfm_flow(tmp_path / "f.pfm")
        assert back.shape == (4, 6, 2) and back.flags.c_contiguous
        np.testing.assert_array_equal(back, flow)

    def test_flow_drops_third_channel_of_things3d_style_file(self, tmp_path):
        data = random_data((3, 5, 3), seed=4)
        write_pfm(tmp_path / "t.pfm", data, little_endian=False)
        np.testing.assert_array_equal(read_pfm_flow(tmp_path / "t.pfm"), data[..., :2])

    def test_one_channel_is_not_flow(self, tmp_path):
        write_pfm(tmp_path / "disp.pfm", random_data((3, 4)))
        with pytest.raises(ValueError, match=r"disp\.pfm: 1-channel PFM"):
            read_pfm_flow(tmp_path / "disp.pfm")

    def test_torchvision_reads_ours(self, tmp_path):
        from torchvision.datasets.utils import _read_pfm

        flow = random_data((4, 5, 2), seed=6)
        write_pfm_flow(tmp_path / "tv.pfm", flow)
        np.testing.assert_array_equal(_read_pfm(str(tmp_path / "tv.pfm")).transpose(1, 2, 0), flow)


class TestPfmBadFiles:
    def write(self, tmp_path, content, name="bad.pfm"):
        p = tmp_path / name
        p.write_bytes(content)
        return p

    def test_bad_magic(self, tmp_path):
        p = self.write(tmp_path, b"P6\n2 2\n255\n" + bytes(12))
        with pytest.raises(ValueError, match=r"bad\.pfm: bad header 'P6'.*not a PFM file"):
            read_pfm(p)

    def test_malformed_dims(self, tmp_path):
        p = self.write(tmp_path, b"PF\nab 2\n-1.0\n" + bytes(48))
        with pytest.raises(ValueError, match=r"bad\.pfm: malformed PFM header"):
            read_pfm(p)

    def test_header_only_partial(self, tmp_path):
        p = self.write(tmp_path, b"PF\n2")
        with pytest.raises(ValueError, match=r"bad\.pfm: malformed PFM header"):
            read_pfm(p)

    def test_zero_scale(self, tmp_path):
        p = self.write(tmp_path, b"Pf\n1 1\n0.0\n" + bytes(4))
        with pytest.raises(ValueError, match=r"bad\.pfm: PFM scale must be a non-zero"):
            read_pfm(p)

    def test_truncated(self, tmp_path):
        p = self.write(tmp_path, b"PF\n4 3\n-1.0\n" + bytes(4 * 3 * 3 * 4 - 4))
        with pytest.raises(ValueError, match=r"bad\.pfm: truncated.*4x3x3"):
            read_pfm(p)

    def test_trailing(self, tmp_path):
        p = self.write(tmp_path, b"Pf\n1 1\n-1.0\n" + bytes(8))
        with pytest.raises(ValueError, match=r"bad\.pfm: trailing bytes"):
            read_pfm(p)

    @pytest.mark.parametrize("dims", [b"200000 2", b"2 0", b"0 0", b"-5 3"])
    def test_absurd_dimensions(self, tmp_path, dims):
        p = self.write(tmp_path, b"PF\n" + dims + b"\n-1.0\n" + bytes(48))
        with pytest.raises(ValueError, match=r"bad\.pfm: implausible size"):
            read_pfm(p)

    def test_large_header_small_file_refused_before_allocating(self, tmp_path):
        p = self.write(tmp_path, b"PF\n100000 100000\n-1.0\n" + bytes(48))
        with pytest.raises(ValueError, match=r"bad\.pfm: truncated"):
            read_pfm(p)

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="missing.pfm"):
            read_pfm(tmp_path / "missing.pfm")

    def test_directory(self, tmp_path):
        (tmp_path / "d.pfm").mkdir()
        with pytest.raises(IsADirectoryError, match="d.pfm"):
            read_pfm(tmp_path / "d.pfm")


class TestPfmWriteErrors:
    @pytest.mark.parametrize("shape", [(3, 4, 2), (3,), (0, 4), (2, 3, 4, 3)])
    def test_bad_shape(self, tmp_path, shape):
        with pytest.raises(ValueError, match="shape"):
            write_pfm(tmp_path / "w.pfm", np.zeros(shape, np.float32))
        assert os.listdir(tmp_path) == []
