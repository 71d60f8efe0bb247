"""The synthetic generator: deterministic, and its flow is exact."""

import cv2
import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from flownet2_core.data.synthetic import (
    AffineMotion, Layer, Scene, make_pair, make_sequence, random_shape_mask, random_texture,
    render, scene_flow,
)


def warp_back(img2: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bilinear sample of img2 at x + flow(x) (float32)."""
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img2.astype(np.float32), xx + flow[..., 0], yy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interior(valid, labels1, labels2, flow):
    """Valid pixels whose four bilinear neighbours in frame 2 show the same layer."""
    h, w = valid.shape
    xx, yy = np.meshgrid(np.arange(w), np.arange(h))
    x1, y1 = xx + flow[..., 0], yy + flow[..., 1]
    ok = valid & (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    for dx in (0, 1):
        for dy in (0, 1):
            ix = np.clip(np.floor(x1).astype(int) + dx, 0, w - 1)
            iy = np.clip(np.floor(y1).astype(int) + dy, 0, h - 1)
            ok &= labels2[iy, ix] == labels1
    return ok


def integer_scene(seed=0, size=(96, 128)):
    rng = np.random.default_rng(seed)
    h, w = size
    bg = Layer(random_texture(rng, h + 40, w + 40),
               AffineMotion(center=((w - 1) / 2, (h - 1) / 2), anchor=((w + 39) / 2, (h + 39) / 2),
                            velocity=(2.0, -1.0)))
    obj = Layer(random_texture(rng, 40, 50),
                AffineMotion(center=(50.0, 40.0), anchor=(24.5, 19.5), velocity=(-5.0, 3.0)),
                random_shape_mask(rng, 40, 50, "polygon"))
    return Scene((h, w), (bg, obj))


class TestExactness:
    def test_integer_translation_warp_is_exact(self):
        # With integer motions, frame 2 at x + flow samples the texture at the
        # very coordinates frame 1 did, so warping must reproduce frame 1 bit
        # for bit on every visible, non-boundary pixel.
        scene = integer_scene()
        img1, lab1 = render(scene, 0)
        img2, lab2 = render(scene, 1)
        flow, valid = scene_flow(scene, 0, 1, lab1)
        np.testing.assert_array_equal(np.unique(flow[lab1 == 0], axis=0), [[2.0, -1.0]])
        np.testing.assert_array_equal(np.unique(flow[lab1 == 1], axis=0), [[-5.0, 3.0]])
        ok = interior(valid, lab1, lab2, flow)
        assert ok.mean() > 0.8
        np.testing.assert_array_equal(warp_back(img2, flow)[ok], img1[ok].astype(np.float32))

    @pytest.mark.parametrize("mode", ["chairs", "sd"])
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_affine_warp_reproduces_frame1(self, mode, seed):
        p = make_pair(seed, (128, 160), mode=mode)
        _, lab2 = render(p.scene, 1.0)
        ok = interior(p.valid, p.labels1, lab2, p.flow)
        err = np.abs(warp_back(p.img2, p.flow) - p.img1).max(-1)
        # Bilinear resampling twice (render, then warp) of band-limited
        # textures: measured mean 0.4-2.0 and p99 1.5-5 grey levels on
        # 8 seeds at 256×320; a flow off by one pixel gives 5-20× more.
        assert err[ok].mean() < 2.5
        assert np.percentile(err[ok], 99) < 8
        shifted = np.abs(warp_back(p.img2, p.flow + 1.0) - p.img1).max(-1)
        assert shifted[ok].mean() > 2 * err[ok].mean()

    def test_occluded_pixels_are_invalid(self):
        scene = integer_scene()
        img1, lab1 = render(scene, 0)
        _, lab2 = render(scene, 1)
        flow, valid = scene_flow(scene, 0, 1, lab1)
        h, w = lab1.shape
        yy, xx = np.mgrid[0:h, 0:w]
        x1, y1 = xx + flow[..., 0], yy + flow[..., 1]
        inside = (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
        # Integer targets: valid iff inside and the same layer is seen there.
        same = np.zeros_like(valid)
        same[inside] = lab2[y1[inside].astype(int), x1[inside].astype(int)] == lab1[inside]
        np.testing.assert_array_equal(valid, same)
        # Background pixels covered by the object in frame 2 exist and are invalid.
        assert (~valid & (lab1 == 0) & inside).sum() > 50


class TestPair:
    def test_shapes_and_types(self):
        p = make_pair(3, (64, 96))
        assert p.img1.shape == p.img2.shape == (64, 96, 3) and p.img1.dtype == np.uint8
        assert p.flow.shape == (64, 96, 2) and p.flow.dtype == np.float32
        assert p.valid.shape == (64, 96) and p.valid.dtype == bool
        assert 0.5 < p.valid.mean() < 1.0

    def test_deterministic_in_seed(self):
        a, b, c = make_pair(7, (64, 64)), make_pair(7, (64, 64)), make_pair(8, (64, 64))
        np.testing.assert_array_equal(a.img1, b.img1)
        np.testing.assert_array_equal(a.flow, b.flow)
        assert not np.array_equal(a.img1, c.img1)

    def test_sd_mode_is_small(self):
        mags = [np.linalg.norm(make_pair(s, (96, 128), mode="sd").flow, axis=-1) for s in range(4)]
        big = [np.linalg.norm(make_pair(s, (96, 128), mode="chairs").flow, axis=-1) for s in range(4)]
        # np.max propagates NaN (Python's max over a list may skip one): NaN cannot pass.
        assert np.max(mags) < 5.0
        assert np.mean([m.mean() for m in big]) > 3 * np.mean([m.mean() for m in mags])

    def test_translation_motion_is_piecewise_constant(self):
        p = make_pair(1, (96, 128), motion="translation", num_objects=2)
        for k in np.unique(p.labels1):
            f = p.flow[p.labels1 == k]
            np.testing.assert_allclose(f, f[0][None].repeat(len(f), 0), atol=1e-4)

    def test_max_translation(self):
        p = make_pair(2, (96, 128), motion="translation", max_translation=1.0)
        assert np.abs(p.flow).max() <= 1.0 + 1e-5

    @pytest.mark.parametrize("kw", [{"mode": "kitti"}, {"motion": "shear"}, {"size": (8, 8)},
                                    {"size": "big"}])
    def test_bad_arguments(self, kw):
        with pytest.raises(ValueError):
            make_pair(0, **({"size": (64, 64)} | kw))


class TestSequence:
    def test_forward_backward_are_inverse(self):
        seq = make_sequence(0, 4, (80, 112), num_objects=2)
        assert seq.frames.shape == (4, 80, 112, 3)
        assert seq.flow_fw.shape == seq.flow_bw.shape == (3, 80, 112, 2)
        assert seq.masks.shape == (4, 80, 112) and set(np.unique(seq.masks)) <= {0, 1, 2}
        h, w = 80, 112
        xx, yy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        for t in range(3):
            fw, bw = seq.flow_fw[t], seq.flow_bw[t]
            # scipy's bilinear sampling is exact in float64 (OpenCV's remap
            # quantises its weights to 1/32 px).
            coords = [yy + fw[..., 1], xx + fw[..., 0]]
            bw_at = np.stack([map_coordinates(bw[..., c].astype(np.float64), coords, order=1)
                              for c in range(2)], -1)
            ok = interior(seq.valid_fw[t], seq.masks[t], seq.masks[t + 1], fw)
            # Within a layer the motion is affine, so bilinear interpolation of
            # the backward flow is exact up to float rounding.
            np.testing.assert_allclose((fw + bw_at)[ok], 0, atol=1e-4)

    def test_masks_follow_objects(self):
        seq = make_sequence(1, 3, (80, 112), num_objects=1, motion="translation")
        f = seq.flow_fw[0][seq.masks[0] == 1][0]
        c0 = np.argwhere(seq.masks[0] == 1).mean(0)[::-1]
        c1 = np.argwhere(seq.masks[1] == 1).mean(0)[::-1]
        # Centroids move with the object, up to shape clipping at the border.
        np.testing.assert_allclose(c1 - c0, f, atol=0.75)

    def test_too_short(self):
        with pytest.raises(ValueError, match="num_frames"):
            make_sequence(0, 1)


class TestWriters:
    def test_write_pair_chairs_layout(self, tmp_path):
        from flownet2_core.data.synthetic import write_pair
        from flownet2_core.io import read_flo, read_image

        p = make_pair(4, (48, 64))
        paths = write_pair(p, tmp_path, "00042")
        assert sorted(x.name for x in tmp_path.iterdir()) == ["00042_flow.flo", "00042_img1.ppm", "00042_img2.ppm"]
        np.testing.assert_array_equal(read_image(paths["img1"]), p.img1)
        np.testing.assert_array_equal(read_image(paths["img2"]), p.img2)
        np.testing.assert_array_equal(read_flo(paths["flow"]), p.flow)

    def test_write_sequence_round_trip(self, tmp_path):
        from flownet2_core.data.synthetic import write_sequence
        from flownet2_core.io import read_flo, read_image, read_video

        seq = make_sequence(2, 3, (48, 64), num_objects=2)
        write_sequence(seq, tmp_path, video="clip.avi")
        for t in range(3):
            np.testing.assert_array_equal(read_image(tmp_path / "frames" / f"frame_{t:04d}.png"), seq.frames[t])
            m = cv2.imread(str(tmp_path / "masks" / f"frame_{t:04d}.png"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(m, seq.masks[t])
        np.testing.assert_array_equal(read_flo(tmp_path / "flow_fw" / "frame_0001.flo"), seq.flow_fw[1])
        np.testing.assert_array_equal(read_flo(tmp_path / "flow_bw" / "frame_0002.flo"), seq.flow_bw[1])
        video = read_video(tmp_path / "clip.avi")
        assert video.shape == seq.frames.shape
        # MJPG is lossy (measured mean error 6.5 grey levels on these textures);
        # a wrong frame order or colour swap gives tens.
        assert np.abs(video.astype(int) - seq.frames).mean() < 12
