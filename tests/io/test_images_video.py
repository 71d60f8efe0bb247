"""Images and videos: RGB order at the OpenCV boundary, round trips, error messages."""

import os

import cv2
import numpy as np
import pytest

from flownet2_core.io import (
    iter_video_frames,
    read_image,
    read_video,
    video_info,
    write_image,
    write_video,
)


def random_image(h=12, w=17, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_frames(n=6, h=48, w=64):
    """Synthetic frames with smooth content (MJPG-friendly) that differ per frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(n):
        r = (xx * 255 / (w - 1) + 10 * t) % 256
        g = yy * 255 / (h - 1)
        b = np.full((h, w), 40 * t % 256)
        frames.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    return np.stack(frames)


class TestImages:
    @pytest.mark.parametrize("ext", [".png", ".ppm", ".bmp", ".PNG"])
    def test_lossless_round_trip(self, tmp_path, ext):
        img = random_image()
        write_image(tmp_path / f"a{ext}", img)
        back = read_image(tmp_path / f"a{ext}")
        assert back.dtype == np.uint8 and back.shape == img.shape
        np.testing.assert_array_equal(back, img)

    def test_str_path(self, tmp_path):
        img = random_image(3, 4)
        write_image(str(tmp_path / "s.png"), img)
        np.testing.assert_array_equal(read_image(str(tmp_path / "s.png")), img)

    def test_pure_red_is_stored_bgr_by_opencv_convention(self, tmp_path):
        red = np.zeros((4, 5, 3), np.uint8)
        red[..., 0] = 255
        write_image(tmp_path / "red.png", red)
        raw = cv2.imread(str(tmp_path / "red.png"))  # OpenCV gives B, G, R
        np.testing.assert_array_equal(raw[0, 0], [0, 0, 255])
        np.testing.assert_array_equal(read_image(tmp_path / "red.png")[0, 0], [255, 0, 0])

    def test_reads_opencv_written_file_as_rgb(self, tmp_path):
        bgr = np.zeros((2, 2, 3), np.uint8)
        bgr[..., 0] = 200  # blue in OpenCV's order
        assert cv2.imwrite(str(tmp_path / "blue.png"), bgr)
        np.testing.assert_array_equal(read_image(tmp_path / "blue.png")[1, 1], [0, 0, 200])

    def test_jpeg_round_trip_and_quality(self, tmp_path):
        img = smooth_frames(1, 32, 40)[0]
        write_image(tmp_path / "hi.jpg", img, jpeg_quality=95)
        write_image(tmp_path / "lo.jpeg", img, jpeg_quality=10)
        hi = read_image(tmp_path / "hi.jpg")
        assert hi.shape == img.shape
        assert np.abs(hi.astype(int) - img).mean() < 3
        assert os.path.getsize(tmp_path / "lo.jpeg") < os.path.getsize(tmp_path / "hi.jpg")
        # colour order survives JPEG too
        red = np.zeros((16, 16, 3), np.uint8)
        red[..., 0] = 255
        write_image(tmp_path / "red.jpg", red)
        px = read_image(tmp_path / "red.jpg")[8, 8].astype(int)
        assert px[0] > 240 and px[1] < 15 and px[2] < 15

    def test_grey_becomes_three_channels(self, tmp_path):
        grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
        assert cv2.imwrite(str(tmp_path / "g.png"), grey)
        back = read_image(tmp_path / "g.png")
        assert back.shape == (3, 4, 3)
        for c in range(3):
            np.testing.assert_array_equal(back[..., c], grey)

    def test_write_grey(self, tmp_path):
        grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
        write_image(tmp_path / "g.png", grey)
        assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).ndim == 2
        np.testing.assert_array_equal(read_image(tmp_path / "g.png")[..., 1], grey)

    def test_16bit_converted_to_8bit(self, tmp_path):
        bgr16 = np.zeros((1, 3, 3), np.uint16)
        bgr16[0, :, 2] = [65535, 257 * 100, 0]  # red channel
        bgr16[0, :, 1] = [128, 127, 257 * 7 + 129]  # rounding: 128/257 -> 0.498 -> 0 ...
        assert cv2.imwrite(str(tmp_path / "d.png"), bgr16)
        back = read_image(tmp_path / "d.png")
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back[0, :, 0], [255, 100, 0])
        np.testing.assert_array_equal(back[0, :, 1], [0, 0, 8])

    def test_alpha_dropped(self, tmp_path):
        bgra = np.zeros((2, 2, 4), np.uint8)
        bgra[..., 2] = 99
        bgra[..., 3] = 0  # fully transparent: still the stored colour
        assert cv2.imwrite(str(tmp_path / "a.png"), bgra)
        back = read_image(tmp_path / "a.png")
        assert back.shape == (2, 2, 3)
        np.testing.assert_array_equal(back[0, 0], [99, 0, 0])

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nothere.png"):
            read_image(tmp_path / "nothere.png")

    def test_directory(self, tmp_path):
        (tmp_path / "d.png").mkdir()
        with pytest.raises(IsADirectoryError, match="d.png"):
            read_image(tmp_path / "d.png")

    def test_not_an_image(self, tmp_path):
        (tmp_path / "t.png").write_text("this is text")
        with pytest.raises(ValueError, match=r"t\.png: cannot be decoded as an image"):
            read_image(tmp_path / "t.png")

    @pytest.mark.parametrize("ext", [".png", ".jpg"])
    def test_truncated_file_is_refused_quietly(self, tmp_path, capfd, ext):
        """A file cut short is an error naming it, with nothing from libpng/libjpeg on stderr."""
        write_image(tmp_path / f"full{ext}", random_image(64, 80))
        data = (tmp_path / f"full{ext}").read_bytes()
        (tmp_path / f"cut{ext}").write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=rf"cut\{ext}: "):
            read_image(tmp_path / f"cut{ext}")
        assert capfd.readouterr().err == ""

    def test_empty_file(self, tmp_path):
        (tmp_path / "e.jpg").write_bytes(b"")
        with pytest.raises(ValueError, match=r"e\.jpg: cannot be decoded"):
            read_image(tmp_path / "e.jpg")

    def test_write_unknown_extension(self, tmp_path):
        with pytest.raises(ValueError, match=r"x\.gif: unsupported image extension '\.gif'"):
            write_image(tmp_path / "x.gif", random_image())
        assert os.listdir(tmp_path) == []

    @pytest.mark.parametrize(
        "img", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)]
    )
    def test_write_bad_arrays(self, tmp_path, img):
        with pytest.raises(ValueError, match=r"b\.png: image must"):
            write_image(tmp_path / "b.png", img)

    def test_bad_jpeg_quality(self, tmp_path):
        with pytest.raises(ValueError, match="jpeg_quality"):
            write_image(tmp_path / "q.jpg", random_image(), jpeg_quality=101)

    def test_write_atomic_and_overwrites(self, tmp_path):
        write_image(tmp_path / "a.png", random_image(seed=1))
        write_image(tmp_path / "a.png", random_image(seed=2))
        assert os.listdir(tmp_path) == ["a.png"]
        np.testing.assert_array_equal(read_image(tmp_path / "a.png"), random_image(seed=2))


class TestVideo:
    @pytest.fixture
    def avi(self, tmp_path):
        frames = smooth_frames()
        path = tmp_path / "clip.avi"
        assert write_video(path, frames, fps=10) == len(frames)
        return path, frames

    def test_round_trip(self, avi):
        path, frames = avi
        back = read_video(path)
        assert back.shape == frames.shape and back.dtype == np.uint8
        err = np.abs(back.astype(int) - frames).mean(axis=(1, 2, 3))
        assert err.max() < 4, err
        # frames come back in order: each is closest to its own original
        for i in range(len(frames)):
            dists = np.abs(frames.astype(int) - back[i]).mean(axis=(1, 2, 3))
            assert dists.argmin() == i

    def test_colour_order(self, tmp_path):
        red = np.zeros((3, 32, 32, 3), np.uint8)
        red[..., 0] = 255
        write_video(tmp_path / "red.avi", red)
        px = read_video(tmp_path / "red.avi")[1, 16, 16].astype(int)
        assert px[0] > 230 and px[1] < 25 and px[2] < 25

    def test_info(self, avi):
        path, frames = avi
        info = video_info(path)
        assert info == {"frames": 6, "fps": 10.0, "width": 64, "height": 48}

    def test_max_frames_and_iterator(self, avi):
        path, frames = avi
        assert read_video(path, max_frames=2).shape == (2, 48, 64, 3)
        assert read_video(path, max_frames=100).shape[0] == 6
        it = iter_video_frames(path)
        first = next(it)
        assert first.shape == (48, 64, 3)
        assert sum(1 for _ in it) == 5
        with pytest.raises(ValueError, match="max_frames"):
            read_video(path, max_frames=0)

    def test_no_temp_files_left(self, avi):
        path, _ = avi
        assert os.listdir(path.parent) == ["clip.avi"]

    def test_generator_input_and_grey_frames(self, tmp_path):
        gen = (np.full((16, 24), 30 * i, np.uint8) for i in range(4))
        assert write_video(tmp_path / "g.avi", gen) == 4
        back = read_video(tmp_path / "g.avi")
        assert back.shape == (4, 16, 24, 3)
        assert abs(int(back[3].mean()) - 90) < 4

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="none.avi"):
            iter_video_frames(tmp_path / "none.avi")
        with pytest.raises(FileNotFoundError, match="none.avi"):
            video_info(tmp_path / "none.avi")

    def test_directory(self, tmp_path):
        (tmp_path / "d.avi").mkdir()
        with pytest.raises(IsADirectoryError, match="d.avi"):
            read_video(tmp_path / "d.avi")

    def test_not_a_video(self, tmp_path):
        (tmp_path / "t.avi").write_text("hello")
        with pytest.raises(ValueError, match=r"t\.avi: cannot be opened as a video"):
            iter_video_frames(tmp_path / "t.avi")

    def test_opens_but_no_frames(self, tmp_path):
        w = cv2.VideoWriter(str(tmp_path / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 16))
        assert w.isOpened()
        w.release()
        with pytest.raises(ValueError, match=r"empty\.avi: .*(no frames|cannot be opened)"):
            iter_video_frames(tmp_path / "empty.avi")

    def test_write_no_frames(self, tmp_path):
        with pytest.raises(ValueError, match=r"n\.avi: no frames"):
            write_video(tmp_path / "n.avi", [])
        assert os.listdir(tmp_path) == []

    def test_write_mismatched_sizes_leaves_nothing(self, tmp_path):
        frames = [np.zeros((16, 16, 3), np.uint8), np.zeros((16, 20, 3), np.uint8)]
        with pytest.raises(ValueError, match=r"m\.avi: frame 1 is \(16, 20\)"):
            write_video(tmp_path / "m.avi", frames)
        assert os.listdir(tmp_path) == []

    def test_write_bad_frame_dtype(self, tmp_path):
        with pytest.raises(ValueError, match=r"f\.avi: frame 0 must be"):
            write_video(tmp_path / "f.avi", [np.zeros((8, 8, 3), np.float32)])

    def test_writer_cannot_open(self, tmp_path):
        with pytest.raises(ValueError, match=r"x\.xyz: OpenCV cannot open a video writer"):
            write_video(tmp_path / "x.xyz", smooth_frames(1))
        assert os.listdir(tmp_path) == []

    def test_bad_fourcc(self, tmp_path):
        with pytest.raises(ValueError, match="fourcc must be 4 characters"):
            write_video(tmp_path / "a.avi", smooth_frames(1), fourcc="MJPEG")


class TestDamagedVideo:
    """A truncated file decodes fewer frames than its container declares: that is damage, not a
    shorter video (unless asked to keep the partial video), and FFmpeg's own complaints stay off
    the terminal."""

    @pytest.fixture
    def truncated(self, tmp_path):
        rng = np.random.default_rng(0)
        write_video(tmp_path / "full.avi", (rng.random((40, 48, 64, 3)) * 255).astype(np.uint8))
        data = (tmp_path / "full.avi").read_bytes()
        (tmp_path / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
        return tmp_path / "cut.avi"

    def test_truncated_file_raises_with_both_counts(self, truncated, capfd):
        from flownet2_core.io import TruncatedVideoError

        assert video_info(truncated)["frames"] == 40
        it = iter_video_frames(truncated)
        got = []
        with pytest.raises(TruncatedVideoError, match=r"cut\.avi: decoded (\d+) of the 40 frames") as exc:
            for f in it:
                got.append(f)
        assert exc.value.decoded == len(got) and 0 < len(got) < 40 and exc.value.declared == 40
        with pytest.raises(TruncatedVideoError):
            read_video(truncated)
        assert "@ 0x" not in capfd.readouterr().err      # no "[mjpeg @ 0x…] …" lines from FFmpeg

    def test_partial_video_on_request_and_early_stop_is_fine(self, truncated):
        n = sum(1 for _ in iter_video_frames(truncated, allow_partial=True))
        assert 0 < n < 40
        assert read_video(truncated, max_frames=5).shape[0] == 5   # stopped before the damage
        assert sum(1 for _ in iter_video_frames(truncated.parent / "full.avi")) == 40
