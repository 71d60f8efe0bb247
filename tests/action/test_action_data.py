"""Datasets: lists, sampling, flow decoding and interleaving, crops, flips, normalisation."""

import numpy as np
import pytest
import torch

from flowapps.action.data import (IMAGENET_MEAN, IMAGENET_STD, ClipDataset, StreamConfig, TestDataset, VideoRecord,
                                  crop_resize, five_crop_boxes, hflip, load_flow, multiscale_crop_box, normalize,
                                  random_crop_box, read_annotations, split_list, subtract_mean_flow, test_offsets,
                                  train_offsets)
from flowapps.stacks.rawframes import write_flow_field, write_frame

H, W, T = 40, 56, 6  # frames per video; T − 1 flow fields


@pytest.fixture(scope="module")
def hand_stacks(tmp_path_factory):
    """Two videos with known flow: field k has u = k + x/W (a ramp) and v = −k/2; RGB
    frames constant grey levels. Stored as rawframes JPEGs (bound 20)."""
    root = tmp_path_factory.mktemp("hand")
    xs = np.arange(W, dtype=np.float32)[None, :].repeat(H, 0)
    for name in ("A/v_A_g01_c01", "B/v_B_g02_c01"):
        d = root / name
        d.mkdir(parents=True)
        for k in range(1, T + 1):
            write_frame(d, k, np.full((H, W, 3), 10 * k, np.uint8), 95)
        for k in range(1, T):
            flow = np.stack([k + xs / W, np.full((H, W), -k / 2, np.float32)], -1)
            write_flow_field(d, k, flow, quality=100)
    (root / "list_flow.txt").write_text(f"A/v_A_g01_c01 {T - 1} 0\nB/v_B_g02_c01 {T - 1} 1\n")
    (root / "list_rgb.txt").write_text(f"A/v_A_g01_c01 {T} 0\nB/v_B_g02_c01 {T} 1\n")
    return root


def expected_field(k):
    xs = np.arange(W, dtype=np.float32)[None, :].repeat(H, 0)
    return np.stack([k + xs / W, np.full((H, W), -k / 2, np.float32)], -1)


class TestLists:
    def test_read(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_flow.txt")
        assert recs == [VideoRecord("A/v_A_g01_c01", T - 1, 0), VideoRecord("B/v_B_g02_c01", T - 1, 1)]
        assert recs[1].group == 2

    def test_errors_name_the_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.txt"):
            read_annotations(tmp_path / "nope.txt")
        bad = tmp_path / "bad.txt"
        bad.write_text("A/v_A 12 0\nB/v_B twelve 1\n")
        with pytest.raises(ValueError, match=r"bad.txt:2"):
            read_annotations(bad)
        (tmp_path / "empty.txt").write_text("\n")
        with pytest.raises(ValueError, match="empty"):
            read_annotations(tmp_path / "empty.txt")

    def test_split_list_names(self, small_stacks):
        assert split_list(small_stacks, 1, "train", "flow").name == "ucf101_train_split_1_rawframes_flow.txt"
        assert split_list(small_stacks, 2, "test", "rgb").name == "ucf101_val_split_2_rawframes.txt"
        with pytest.raises(FileNotFoundError, match="ucf101_val_split_1_rawframes"):
            split_list(small_stacks / "nowhere", 1, "test", "rgb")
        with pytest.raises(ValueError):
            split_list(small_stacks, 4, "test", "rgb")


class TestSampling:
    def test_test_offsets_even_and_valid(self):
        starts = test_offsets(100, 10, 25)
        assert len(starts) == 25 and starts.min() >= 1 and starts.max() <= 91
        assert np.all(np.diff(starts) >= 3) and np.ptp(np.diff(starts)) <= 1
        assert list(test_offsets(5, 10, 3)) == [1, 1, 1]  # shorter than L: start at 1

    def test_train_offsets_one_per_segment(self):
        rng = np.random.default_rng(0)
        for _ in range(50):
            s = train_offsets(100, 10, 3, rng)
            assert 1 <= s[0] <= 31 and 31 <= s[1] <= 61 and 61 <= s[2] <= 91


class TestFlowLoading:
    def test_interleaved_and_decoded_to_pixels(self, hand_stacks):
        stack = load_flow(hand_stacks / "A/v_A_g01_c01", 2, 3, T - 1)
        assert stack.shape == (H, W, 6) and stack.dtype == np.float32
        for j, k in enumerate((2, 3, 4)):
            np.testing.assert_allclose(stack[..., 2 * j], expected_field(k)[..., 0], atol=0.1)   # u_k
            np.testing.assert_allclose(stack[..., 2 * j + 1], expected_field(k)[..., 1], atol=0.1)  # v_k

    def test_past_the_end_repeats_last_field(self, hand_stacks):
        stack = load_flow(hand_stacks / "A/v_A_g01_c01", 4, 4, T - 1)
        np.testing.assert_array_equal(stack[..., 4:6], stack[..., 2:4])
        np.testing.assert_array_equal(stack[..., 6:8], stack[..., 2:4])

    def test_missing_file_is_named(self, hand_stacks, tmp_path):
        with pytest.raises(FileNotFoundError, match="flow_x_00001.jpg"):
            load_flow(tmp_path, 1, 2, 5)

    def test_mean_subtraction(self):
        stack = np.random.default_rng(0).normal(3, 1, (8, 9, 4)).astype(np.float32)
        out = subtract_mean_flow(stack)
        np.testing.assert_allclose(out.mean(axis=(0, 1)), 0, atol=1e-5)
        np.testing.assert_allclose(out - stack, np.broadcast_to((out - stack)[:1, :1], stack.shape), atol=1e-5)


def chw(arr):
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def hwc(t):
    return t.permute(1, 2, 0).numpy()


# The hand-written (H, W, C) NumPy/OpenCV transforms that torchvision's replaced: the reference.
def old_hflip(arr, is_flow):
    out = np.ascontiguousarray(arr[:, ::-1])
    if is_flow:
        out[..., 0::2] *= -1
    return out


def old_crop_resize(arr, box, size, is_flow):
    import cv2

    y, x, ch, cw = box
    arr = arr[y:y + ch, x:x + cw]
    h, w = arr.shape[:2]
    if (w, h) == (size, size):
        return arr
    interp = cv2.INTER_AREA if size * size < w * h else cv2.INTER_LINEAR
    out = np.concatenate([cv2.resize(arr[..., c:c + 4], (size, size), interpolation=interp).reshape(size, size, -1)
                          for c in range(0, arr.shape[2], 4)], axis=2)
    if is_flow:
        out = out.astype(np.float32)
        out[..., 0::2] *= size / w
        out[..., 1::2] *= size / h
    return out


def old_normalize_rgb(arr):
    x = (arr.astype(np.float32) / 255.0 - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return x.transpose(2, 0, 1)


class TestTransforms:
    def test_flip_negates_u_only(self):
        arr = np.random.default_rng(1).normal(size=(5, 7, 4)).astype(np.float32)
        out = hwc(hflip(chw(arr), is_flow=True))
        np.testing.assert_array_equal(out[..., 0::2], -arr[:, ::-1, 0::2])
        np.testing.assert_array_equal(out[..., 1::2], arr[:, ::-1, 1::2])
        np.testing.assert_array_equal(hwc(hflip(chw(arr), is_flow=False)), arr[:, ::-1])

    def test_flip_and_crop_equal_the_old_transforms(self):
        rng = np.random.default_rng(7)
        flow = rng.normal(0, 5, (30, 41, 20)).astype(np.float32)
        img = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
        for arr, is_flow in ((flow, True), (img, False)):
            before = arr.copy()
            np.testing.assert_array_equal(hwc(hflip(chw(arr), is_flow)), old_hflip(arr, is_flow))
            for box in [(0, 0, 16, 16), (14, 25, 16, 16), (3, 7, 16, 16)] + five_crop_boxes(30, 41, 16):
                np.testing.assert_array_equal(hwc(crop_resize(chw(arr), box, 16, is_flow)),
                                              old_crop_resize(arr, box, 16, is_flow))
            np.testing.assert_array_equal(arr, before)  # the input (possibly a cached video) is untouched
        assert hflip(chw(flow), True).dtype == torch.float32 and hflip(chw(img), False).dtype == torch.uint8

    def test_normalisation_equals_the_old_one(self):
        img = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
        np.testing.assert_allclose(normalize(chw(img), StreamConfig(modality="rgb", new_length=1)).numpy(),
                                   old_normalize_rgb(img), rtol=1e-6, atol=1e-6)
        flow = np.random.default_rng(4).normal(0, 5, (9, 11, 4)).astype(np.float32)
        out = normalize(chw(flow), StreamConfig(flow_scale=20.0))
        assert out.is_contiguous() and out.shape == (4, 9, 11)
        np.testing.assert_allclose(out.numpy(), flow.transpose(2, 0, 1) / 20.0, rtol=1e-6)

    def test_resize_close_to_the_old_one(self):
        # Smooth content: torchvision's (antialiased) bilinear resize and OpenCV's
        # INTER_LINEAR (enlarging) / INTER_AREA (shrinking) agree closely, not bit for bit.
        yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
        flow = np.stack([np.sin(xx / 9) * 3, np.cos(yy / 7) * 2, xx / 16, -yy / 12], -1)
        for box, size, atol in [((4, 6, 40, 40), 32, 0.03), ((0, 0, 20, 24), 32, 1e-5), ((8, 8, 36, 36), 24, 0.05)]:
            new = hwc(crop_resize(chw(flow), box, size, True))
            np.testing.assert_allclose(new, old_crop_resize(flow, box, size, True), atol=atol)

    def test_flip_is_the_flow_of_the_mirrored_video(self):
        # An object moving right by 2 px: in the mirrored video it moves left by 2 px.
        u = np.zeros((6, 10), np.float32)
        u[:, 2:4] = 2.0
        flow = np.stack([u, np.zeros_like(u)], -1)
        mirrored = hwc(hflip(chw(flow), is_flow=True))
        assert mirrored[0, 10 - 1 - 2, 0] == -2.0 and mirrored[0, 0, 0] == 0.0

    def test_resize_scales_flow(self):
        flow = np.stack([np.full((8, 8), 1.5, np.float32), np.full((8, 8), -0.5, np.float32)], -1)
        out = hwc(crop_resize(chw(flow), (0, 0, 8, 8), 16, is_flow=True))
        np.testing.assert_allclose(out[..., 0], 3.0, atol=1e-5)
        np.testing.assert_allclose(out[..., 1], -1.0, atol=1e-5)
        img = np.full((8, 8, 3), 7, np.uint8)
        out = crop_resize(chw(img), (0, 0, 8, 8), 16, is_flow=False)
        assert out.dtype == torch.uint8 and out.min() == out.max() == 7  # images: values kept

    def test_many_channels_resize(self):
        stack = np.random.default_rng(2).normal(size=(30, 40, 20)).astype(np.float32)
        out = crop_resize(chw(stack), (2, 3, 24, 24), 12, is_flow=True)
        assert out.shape == (20, 12, 12)

    def test_five_crops(self):
        boxes = five_crop_boxes(40, 56, 32)
        assert boxes == [(0, 0, 32, 32), (0, 24, 32, 32), (8, 0, 32, 32), (8, 24, 32, 32), (4, 12, 32, 32)]

    def test_random_crop_inside(self):
        rng = np.random.default_rng(0)
        for _ in range(100):
            y, x, h, w = random_crop_box(40, 56, 32, rng)
            assert 0 <= y <= 8 and 0 <= x <= 24 and h == w == 32

    def test_multiscale_crop(self):
        rng = np.random.default_rng(0)
        scales = (1.0, 0.875, 0.75, 0.66)
        sides = {int(256 * s) if abs(int(256 * s) - 224) >= 3 else 224 for s in scales}
        seen = set()
        for _ in range(400):
            y, x, h, w = multiscale_crop_box(256, 340, 224, rng, scales, max_distort=1)
            assert h in sides and w in sides and y + h <= 256 and x + w <= 340
            idx = sorted(sides, reverse=True)
            assert abs(idx.index(h) - idx.index(w)) <= 1   # aspect distortion ≤ one step
            seen.add((y, x, h, w))
        assert len(seen) > 30


class TestDatasets:
    def cfg(self, **kw):
        base = dict(modality="flow", new_length=3, crop_size=32)
        base.update(kw)
        return StreamConfig(**base)

    def test_flow_sample_shape_and_values(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_flow.txt")
        ds = ClipDataset(recs, hand_stacks, self.cfg(mean_subtraction=False, flip=False), num_segments=2, seed=3)
        x, label = ds[1]
        assert x.shape == (2, 6, 32, 32) and x.dtype == torch.float32 and label == 1
        # v of field k is −k/2 everywhere, divided by flow_scale 20: the first start is in 1..2
        v1 = x[0, 1].mean().item() * 20
        assert any(abs(v1 + k / 2) < 0.1 for k in (1, 2))

    def test_deterministic_per_seed_epoch_index(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_flow.txt")
        ds = ClipDataset(recs, hand_stacks, self.cfg(crop="multiscale"), seed=5)
        a = ds[0][0]
        assert torch.equal(a, ds[0][0])
        other = ClipDataset(recs, hand_stacks, self.cfg(crop="multiscale"), seed=5, cache_mb=16)
        assert torch.equal(a, other[0][0])  # cached decoding gives the same sample
        ds.set_epoch(1)
        assert not torch.equal(a, ds[0][0])

    def test_rgb_normalisation(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_rgb.txt")
        ds = ClipDataset(recs, hand_stacks, StreamConfig(modality="rgb", new_length=1, crop_size=32), train=False)
        x, _ = ds[0]
        assert x.shape == (1, 3, 32, 32)
        start = int(test_offsets(T, 1, 1)[0])   # the validation frame: grey level 10·start
        want = (10 * start / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        np.testing.assert_allclose(x[0].mean(dim=(1, 2)).numpy(), want, atol=0.03)

    def test_ten_crops_include_mirrors(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_flow.txt")
        ds = TestDataset(recs, hand_stacks, self.cfg(), num_positions=4, crops=10)
        assert len(ds) == 8
        x, v = ds[5]
        assert x.shape == (10, 6, 32, 32) and v == 1
        np.testing.assert_allclose(x[5 + 4, 0::2].numpy(), -x[4, 0::2].flip(-1).numpy(), atol=1e-6)
        np.testing.assert_allclose(x[5 + 4, 1::2].numpy(), x[4, 1::2].flip(-1).numpy(), atol=1e-6)
        assert TestDataset(recs, hand_stacks, self.cfg(), num_positions=2, crops=1)[0][0].shape == (1, 6, 32, 32)

    def test_mmaction2_list_counting_rgb_frames(self, hand_stacks):
        # mmaction2's lists count RGB frames (T) for flow too; the T − 1 fields on disk win.
        recs = read_annotations(hand_stacks / "list_rgb.txt")
        ds = TestDataset(recs, hand_stacks, self.cfg(new_length=T - 1, mean_subtraction=False), num_positions=3,
                         crops=1)
        assert ds.read.total(recs[0]) == T - 1
        for i in range(len(ds)):
            x, _ = ds[i]
            np.testing.assert_allclose(x[0, 1::2].mean((1, 2)).numpy() * 20, [-k / 2 for k in range(1, T)],
                                       atol=0.1)
        gone = [VideoRecord("A/v_A_g09_c01", 5, 0)]
        with pytest.raises(FileNotFoundError, match="v_A_g09_c01"):
            ClipDataset(gone, hand_stacks, self.cfg())[0]

    def test_small_frames_are_upscaled(self, hand_stacks):
        recs = read_annotations(hand_stacks / "list_flow.txt")
        ds = ClipDataset(recs, hand_stacks, self.cfg(crop_size=64), train=True)
        assert ds[0][0].shape == (1, 6, 64, 64)

    def test_config_checks(self):
        with pytest.raises(ValueError, match="modality"):
            StreamConfig(modality="depth")
        with pytest.raises(ValueError, match="new_length"):
            StreamConfig(modality="rgb", new_length=10)
        with pytest.raises(ValueError, match="crop"):
            StreamConfig(crop="center")
        with pytest.raises(ValueError, match="crops"):
            TestDataset([VideoRecord("a", 3, 0)], ".", StreamConfig(), crops=3)
