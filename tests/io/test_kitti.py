"""KITTI 16-bit PNG flow reading/writing."""

import os

import cv2
import numpy as np
import pytest

from flownet2_core.io import encode_kitti_flow, read_kitti_flow, write_kitti_flow

QUANT = 0.5 / 64 + 1e-6  # rounding to the nearest 1/64 px


def random_flow(h=9, w=13, seed=0, scale=40.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((h, w, 2)) * scale).astype(np.float32)


def write_raw_kitti(path, r, g, b):
    """Write a 16-bit PNG whose stored R, G, B channels are r, g, b (OpenCV wants B, G, R)."""
    bgr = np.stack([b, g, r], axis=-1).astype(np.uint16)
    assert cv2.imwrite(str(path), bgr)


class TestKittiRoundTrip:
    def test_round_trip_within_quantisation(self, tmp_path):
        flow = random_flow()
        assert (flow < 0).any()
        write_kitti_flow(tmp_path / "f.png", flow)
        back, valid = read_kitti_flow(tmp_path / "f.png")
        assert back.dtype == np.float32 and back.shape == flow.shape
        assert valid.dtype == bool and valid.all()
        np.testing.assert_allclose(back, flow, rtol=0, atol=QUANT)

    def test_exact_for_multiples_of_one_64th(self, tmp_path):
        flow = np.array([[[-512.0, 511.984375], [0.015625, -3.5]]], np.float32)
        write_kitti_flow(tmp_path / "e.png", flow)
        np.testing.assert_array_equal(read_kitti_flow(tmp_path / "e.png")[0], flow)

    def test_stored_channel_layout(self, tmp_path):
        # u = 1.5 -> R = 32768 + 96; v = -2 -> G = 32768 - 128; valid -> B = 1
        flow = np.zeros((2, 3, 2), np.float32)
        flow[..., 0] = 1.5
        flow[..., 1] = -2.0
        valid = np.array([[True, False, True], [True, True, True]])
        write_kitti_flow(tmp_path / "l.png", flow, valid)
        raw = cv2.imread(str(tmp_path / "l.png"), cv2.IMREAD_UNCHANGED)  # B, G, R
        assert raw.dtype == np.uint16 and raw.shape == (2, 3, 3)
        np.testing.assert_array_equal(raw[..., 2][valid], 32768 + 96)
        np.testing.assert_array_equal(raw[..., 1][valid], 32768 - 128)
        np.testing.assert_array_equal(raw[..., 0], valid.astype(np.uint16))
        # invalid pixel: u = v = 0 stored
        np.testing.assert_array_equal(raw[0, 1], [0, 32768, 32768])

    def test_invalid_pixels(self, tmp_path):
        flow = random_flow(4, 5)
        valid = np.ones((4, 5), bool)
        valid[0, 0] = valid[3, 4] = False
        flow[2, 2, 1] = np.nan  # unknown flow is written invalid even without the mask
        write_kitti_flow(tmp_path / "i.png", flow, valid)
        back, back_valid = read_kitti_flow(tmp_path / "i.png")
        expected = valid.copy()
        expected[2, 2] = False
        np.testing.assert_array_equal(back_valid, expected)
        assert np.all(back[~expected] == 0)
        np.testing.assert_allclose(back[expected], flow[expected], atol=QUANT)

    def test_clipping(self):
        flow = np.array([[[1000.0, -1000.0], [511.99, -512.3]]], np.float32)
        enc = encode_kitti_flow(flow)
        np.testing.assert_array_equal(enc[0, 0], [65535, 0, 1])
        np.testing.assert_array_equal(enc[0, 1], [65535, 0, 1])

    def test_reader_zeroes_invalid_kitti_style_zeros(self, tmp_path):
        # Real KITTI files store R = G = 0 at invalid pixels (which decodes to -512 px).
        r = np.array([[0, 32768 + 64]])
        g = np.array([[0, 32768 - 32]])
        b = np.array([[0, 1]])
        write_raw_kitti(tmp_path / "k.png", r, g, b)
        flow, valid = read_kitti_flow(tmp_path / "k.png")
        np.testing.assert_array_equal(valid, [[False, True]])
        np.testing.assert_array_equal(flow[0, 0], [0, 0])
        np.testing.assert_array_equal(flow[0, 1], [1.0, -0.5])

    def test_valid_is_any_nonzero_b(self, tmp_path):
        zero = np.full((1, 3), 32768)
        write_raw_kitti(tmp_path / "b.png", zero, zero, np.array([[0, 1, 7]]))
        np.testing.assert_array_equal(read_kitti_flow(tmp_path / "b.png")[1], [[False, True, True]])

    def test_valid_shape_mismatch(self, tmp_path):
        with pytest.raises(ValueError, match="valid must have shape"):
            write_kitti_flow(tmp_path / "v.png", random_flow(3, 4), np.ones((4, 3), bool))


# torchvision 0.29 deprecates its image decoders (in favour of TorchCodec) and warns on use.
@pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
class TestKittiTorchvisionInterop:
    def test_torchvision_reads_ours(self, tmp_path):
        from torchvision.datasets._optical_flow import _read_16bits_png_with_flow_and_valid_mask

        flow = random_flow(6, 10, seed=4)
        valid = np.random.default_rng(1).random((6, 10)) > 0.25
        write_kitti_flow(tmp_path / "t.png", flow, valid)
        tv_flow, tv_valid = _read_16bits_png_with_flow_and_valid_mask(str(tmp_path / "t.png"))
        ours, our_valid = read_kitti_flow(tmp_path / "t.png")
        assert tv_flow.shape == (2, 6, 10)  # torchvision is channel-first
        np.testing.assert_array_equal(tv_valid, our_valid)
        # we store u = v = 0 at invalid pixels, so even those agree
        np.testing.assert_array_equal(tv_flow.transpose(1, 2, 0), ours)

    def test_agrees_with_torchvision_on_valid_pixels_of_kitti_style_file(self, tmp_path):
        from torchvision.datasets._optical_flow import _read_16bits_png_with_flow_and_valid_mask

        rng = np.random.default_rng(3)
        r, g = rng.integers(0, 65536, (2, 5, 6))
        b = (rng.random((5, 6)) > 0.5).astype(int)
        r[b == 0] = 0
        g[b == 0] = 0
        write_raw_kitti(tmp_path / "k.png", r, g, b)
        tv_flow, tv_valid = _read_16bits_png_with_flow_and_valid_mask(str(tmp_path / "k.png"))
        ours, our_valid = read_kitti_flow(tmp_path / "k.png")
        np.testing.assert_array_equal(tv_valid, our_valid)
        tv_flow = tv_flow.transpose(1, 2, 0)
        np.testing.assert_array_equal(tv_flow[our_valid], ours[our_valid])
        assert np.all(tv_flow[~our_valid] == -512)  # torchvision leaves -512 there; we give 0
        assert np.all(ours[~our_valid] == 0)


class TestKittiBadFiles:
    def test_8bit_png(self, tmp_path):
        assert cv2.imwrite(str(tmp_path / "e.png"), np.zeros((2, 2, 3), np.uint8))
        with pytest.raises(ValueError, match=r"e\.png: uint8 image with 3 channel\(s\).*16-bit"):
            read_kitti_flow(tmp_path / "e.png")

    def test_16bit_grey(self, tmp_path):
        assert cv2.imwrite(str(tmp_path / "g.png"), np.zeros((2, 2), np.uint16))
        with pytest.raises(ValueError, match=r"g\.png: uint16 image with 1 channel"):
            read_kitti_flow(tmp_path / "g.png")

    def test_not_an_image(self, tmp_path):
        (tmp_path / "n.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        with pytest.raises(ValueError, match=r"n\.png: cannot be decoded"):
            read_kitti_flow(tmp_path / "n.png")

    def test_truncated_png(self, tmp_path):
        write_kitti_flow(tmp_path / "full.png", random_flow(20, 20))
        data = (tmp_path / "full.png").read_bytes()
        (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=r"cut\.png: cannot be decoded"):
            read_kitti_flow(tmp_path / "cut.png")

    def test_empty_file(self, tmp_path):
        (tmp_path / "z.png").write_bytes(b"")
        with pytest.raises(ValueError, match=r"z\.png"):
            read_kitti_flow(tmp_path / "z.png")

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="gone.png"):
            read_kitti_flow(tmp_path / "gone.png")

    def test_directory(self, tmp_path):
        (tmp_path / "d.png").mkdir()
        with pytest.raises(IsADirectoryError, match="d.png"):
            read_kitti_flow(tmp_path / "d.png")

    def test_write_is_atomic_no_temp_left(self, tmp_path):
        write_kitti_flow(tmp_path / "a.png", random_flow())
        assert os.listdir(tmp_path) == ["a.png"]
