"""ChairsSDHom and FlyingThings3D (full release and subset): layouts, pairing, flow read back
exactly and the right way up, torchvision's reader on the same files."""

import cv2
import numpy as np
import pytest

from flownet2_core.data.datasets import list_samples, load_sample
from flownet2_core.data.mini import (
    write_mini_chairs_sdhom,
    write_mini_things,
    write_mini_things_subset,
    write_mini_training,
)
from flownet2_core.data.synthetic import make_pair, make_sequence
from flownet2_core.io import read_image, write_pfm, write_pfm_flow

SIZE = (32, 48)


def _rel(root):
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _raw_pfm(path):
    """The stored float rows of a PFM file, in file order (no flip): (H, W, C)."""
    data = path.read_bytes()
    lines = data.split(b"\n", 3)
    kind, (w, h), scale = lines[0], map(int, lines[1].split()), float(lines[2])
    assert kind == b"PF" and scale < 0
    return np.frombuffer(lines[3], "<f4").reshape(h, w, 3)


def _things_seq(seed, frames=3):
    """What the miniature writers render for one camera of one sequence (see mini._things_sequence)."""
    return make_sequence(seed=seed, num_frames=frames + 2, size=SIZE, num_objects=2, max_translation=4.0)


def _warp_error(img1, img2, flow, valid):
    """Mean |img1 − img2(x + flow)| over valid pixels that stay inside the image."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = (xs + flow[..., 0]).astype(np.float32), (ys + flow[..., 1]).astype(np.float32)
    back = cv2.remap(img2.astype(np.float32), mx, my, cv2.INTER_LINEAR)
    inside = valid & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return float(np.abs(back - img1.astype(np.float32))[inside].mean())


class TestChairsSDHom:
    def test_layout_and_pairs(self, tmp_path):
        root = write_mini_chairs_sdhom(tmp_path / "ChairsSDHom", pairs=2, test_pairs=1, size=SIZE)
        assert _rel(root) == {
            "data/train/t0/00000.png", "data/train/t1/00000.png", "data/train/flow/00000.pfm",
            "data/train/t0/00001.png", "data/train/t1/00001.png", "data/train/flow/00001.pfm",
            "data/test/t0/00000.png", "data/test/t1/00000.png", "data/test/flow/00000.pfm"}
        train = list_samples("chairs-sdhom", tmp_path)          # parent folder accepted
        assert [s.id for s in train] == ["00000", "00001"]
        assert train[0].img1 == root / "data/train/t0/00000.png"
        assert train[0].img2 == root / "data/train/t1/00000.png"
        assert [s.id for s in list_samples("chairs-sdhom", root, "test")] == ["00000"]

    def test_reads_back_exactly(self, tmp_path):
        root = write_mini_chairs_sdhom(tmp_path, pairs=2, test_pairs=0, size=SIZE, seed=100)
        for k, s in enumerate(list_samples("chairs-sdhom", root)):
            p = make_pair(100 + k, SIZE, mode="sd", num_objects=2)
            fr = load_sample(s)
            np.testing.assert_array_equal(fr.gt, p.flow)
            np.testing.assert_array_equal(fr.img1, p.img1)
            np.testing.assert_array_equal(fr.img2, p.img2)
            assert fr.valid.all() and fr.occluded is None

    def test_rows_flipped_once(self, tmp_path):
        """The file stores the bottom row first; the reader gives the top row first."""
        root = write_mini_chairs_sdhom(tmp_path, pairs=1, test_pairs=0, size=SIZE, seed=100)
        p = make_pair(100, SIZE, mode="sd", num_objects=2)
        assert not np.array_equal(p.flow, p.flow[::-1])         # a flip would show
        raw = _raw_pfm(root / "data/train/flow/00000.pfm")
        np.testing.assert_array_equal(raw[0, :, :2], p.flow[-1])  # first stored row = bottom row
        np.testing.assert_array_equal(raw[:, :, 2], 0)
        fr = load_sample(list_samples("chairs-sdhom", root)[0])
        np.testing.assert_array_equal(fr.gt[0], p.flow[0])
        np.testing.assert_array_equal(fr.gt, raw[::-1, :, :2])

    def test_nan_pixels_are_invalid(self, tmp_path):
        root = write_mini_chairs_sdhom(tmp_path, pairs=1, test_pairs=0, size=SIZE)
        flow = np.ones(SIZE + (2,), np.float32)
        flow[3, 4] = np.nan
        flow[5, 6, 1] = 1e10
        write_pfm_flow(root / "data/train/flow/00000.pfm", flow)
        fr = load_sample(list_samples("chairs-sdhom", root)[0])
        assert not fr.valid[3, 4] and not fr.valid[5, 6] and fr.valid.sum() == SIZE[0] * SIZE[1] - 2
        assert fr.gt[3, 4].tolist() == [0, 0] and fr.gt[5, 6].tolist() == [0, 0]
        assert np.isfinite(fr.gt).all()

    def test_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="data/train"):
            list_samples("chairs-sdhom", tmp_path)
        root = write_mini_chairs_sdhom(tmp_path, pairs=1, test_pairs=0, size=SIZE)
        with pytest.raises(ValueError, match="'train' or 'test'"):
            list_samples("chairs-sdhom", root, "val")
        (root / "data/train/t1/00000.png").unlink()
        with pytest.raises(FileNotFoundError, match="t1/00000.png"):
            list_samples("chairs-sdhom", root)


class TestOrientation:
    """Independent of the generator: img2 sampled at x + flow reproduces img1, and would
    not with the rows flipped (a second flip of the .pfm data) or v negated."""

    @pytest.mark.parametrize("name", ["chairs-sdhom", "things-clean"])
    def test_flow_matches_images(self, tmp_path, name):
        if name == "chairs-sdhom":
            root = write_mini_chairs_sdhom(tmp_path, pairs=1, test_pairs=0, size=(64, 96))
        else:
            root = write_mini_things(tmp_path, sequences=1, frames=2, test_sequences=0, size=(64, 96))
        fr = load_sample(list_samples(name, root)[0])
        right = _warp_error(fr.img1, fr.img2, fr.gt, fr.valid)
        flipped = _warp_error(fr.img1, fr.img2, fr.gt[::-1], fr.valid)
        v_negated = _warp_error(fr.img1, fr.img2, fr.gt * [1, -1], fr.valid)
        assert right < 0.7 * min(flipped, v_negated), (right, flipped, v_negated)


class TestThingsFull:
    def test_layout(self, tmp_path):
        root = write_mini_things(tmp_path, sequences=2, frames=3, test_sequences=1, size=SIZE)
        files = _rel(root)
        for f in ("frames_cleanpass/TRAIN/A/0000/left/0006.png", "frames_finalpass/TRAIN/B/0001/right/0008.png",
                  "frames_cleanpass/TEST/A/0000/right/0007.png",
                  "optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0006_L.pfm",
                  "optical_flow/TRAIN/B/0001/into_past/right/OpticalFlowIntoPast_0008_R.pfm",
                  "optical_flow/TEST/A/0000/into_future/right/OpticalFlowIntoFuture_0007_R.pfm"):
            assert f in files
        # as in the release, the edge frames have flow towards frames that are not there
        assert "optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0008_L.pfm" in files
        assert "optical_flow/TRAIN/A/0000/into_past/left/OpticalFlowIntoPast_0006_L.pfm" in files
        assert "frames_cleanpass/TRAIN/A/0000/left/0009.png" not in files

    def test_pairs(self, tmp_path):
        root = write_mini_things(tmp_path / "FlyingThings3D", sequences=2, frames=3, test_sequences=1, size=SIZE)
        fw = list_samples("things-clean", tmp_path)            # parent folder accepted
        assert [s.id for s in fw] == ["A/0000/left/0006-0007", "A/0000/left/0007-0008",
                                      "B/0001/left/0006-0007", "B/0001/left/0007-0008"]
        s = fw[1]
        assert s.img1 == root / "frames_cleanpass/TRAIN/A/0000/left/0007.png"
        assert s.img2 == root / "frames_cleanpass/TRAIN/A/0000/left/0008.png"
        assert s.flow == root / "optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0007_L.pfm"
        assert s.sequence == "A/0000"
        bw = list_samples("things-final", root, direction="past", camera="right")
        assert [x.id for x in bw][:2] == ["A/0000/right/0007-0006", "A/0000/right/0008-0007"]
        assert bw[0].img1 == root / "frames_finalpass/TRAIN/A/0000/right/0007.png"
        assert bw[0].flow == root / "optical_flow/TRAIN/A/0000/into_past/right/OpticalFlowIntoPast_0007_R.pfm"
        assert len(list_samples("things-clean", root, camera="both", direction="both")) == 16
        assert len(list_samples("things-clean", root, "test")) == 2
        assert list_samples("things-clean", root, "val") == list_samples("things-clean", root, "test")

    def test_reads_back_exactly(self, tmp_path):
        root = write_mini_things(tmp_path, sequences=1, frames=3, test_sequences=0, size=SIZE, seed=120)
        seq = _things_seq(120 + 1)                                  # sequence 0, right camera
        right = list_samples("things-clean", root, camera="right", direction="both")
        by_id = {s.id: s for s in right}
        fr = load_sample(by_id["A/0000/right/0006-0007"])           # kept frame t = rendered t + 1
        np.testing.assert_array_equal(fr.gt, seq.flow_fw[1])
        np.testing.assert_array_equal(fr.img1, seq.frames[1])
        np.testing.assert_array_equal(fr.img2, seq.frames[2])
        assert fr.valid.all()
        fr = load_sample(by_id["A/0000/right/0008-0007"])
        np.testing.assert_array_equal(fr.gt, seq.flow_bw[2])
        np.testing.assert_array_equal(fr.img1, seq.frames[3])
        assert not np.array_equal(seq.flow_bw[2], seq.flow_bw[2][::-1])
        raw = _raw_pfm(by_id["A/0000/right/0008-0007"].flow)
        np.testing.assert_array_equal(raw[::-1, :, :2], fr.gt)      # stored bottom-up, read once
        final = load_sample(list_samples("things-final", root)[0])
        assert not np.array_equal(final.img1, seq.frames[1])        # final pass differs from clean

    def test_third_channel_dropped(self, tmp_path):
        root = write_mini_things(tmp_path, sequences=1, frames=2, test_sequences=0, size=SIZE)
        s = list_samples("things-clean", root)[0]
        data = np.random.default_rng(0).normal(0, 3, SIZE + (3,)).astype(np.float32)
        data[..., 2] = 7.0
        write_pfm(s.flow, data)
        np.testing.assert_array_equal(load_sample(s).gt, data[..., :2])

    def test_missing_flow_names_it(self, tmp_path):
        root = write_mini_things(tmp_path, sequences=1, frames=2, test_sequences=0, size=SIZE)
        (root / "optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0006_L.pfm").unlink()
        with pytest.raises(FileNotFoundError, match="OpticalFlowIntoFuture_0006_L.pfm"):
            list_samples("things-clean", root)

    @pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
    def test_against_torchvision(self, tmp_path):
        tv = pytest.importorskip("torchvision.datasets")
        write_mini_things(tmp_path / "FlyingThings3D", sequences=2, frames=3, test_sequences=1, size=SIZE)
        for split in ("train", "test"):
            ours = list_samples("things-final", tmp_path, split, camera="both", direction="both")
            theirs = tv.FlyingThings3D(str(tmp_path), split=split, pass_name="final", camera="both")
            assert sorted((str(s.img1), str(s.img2), str(s.flow)) for s in ours) == \
                sorted((a, b, f) for (a, b), f in zip(theirs._image_list, theirs._flow_list))
        by_img = {(str(s.img1), str(s.img2)): s for s in ours}
        for k in range(len(theirs)):
            img1, _, flow = theirs[k]                              # PIL, PIL, (2, H, W)
            fr = load_sample(by_img[tuple(theirs._image_list[k])])
            np.testing.assert_array_equal(flow.transpose(1, 2, 0), fr.gt)
            np.testing.assert_array_equal(np.asarray(img1), fr.img1)


class TestThingsSubset:
    def test_layout(self, tmp_path):
        root = write_mini_things_subset(tmp_path, sequences=2, frames=3, val_sequences=1, size=SIZE)
        files = _rel(root)
        for f in ("train/image_clean/left/0000000.png", "train/image_final/right/0000005.png",
                  "train/flow/left/into_future/0000000.flo", "train/flow/right/into_past/0000004.flo",
                  "val/image_clean/left/0000002.png", "val/flow/left/into_future/0000001.flo"):
            assert f in files
        assert "train/image_clean/left/0000006.png" not in files

    def test_no_pair_across_sequences(self, tmp_path):
        root = write_mini_things_subset(tmp_path / "FlyingThings3D_subset", sequences=2, frames=3,
                                        val_sequences=1, size=SIZE)
        # frame 2 ends the first sequence, frame 3 starts the second: a forward flow file for
        # frame 2 exists (as in the subset), but 2 → 3 is not a pair
        assert (root / "train/flow/left/into_future/0000002.flo").is_file()
        ids = [s.id for s in list_samples("things-clean", tmp_path)]
        assert ids == ["left/0000000-0000001", "left/0000001-0000002",
                       "left/0000003-0000004", "left/0000004-0000005"]
        both = list_samples("things-clean", root, camera="both", direction="both")
        assert len(both) == 16 and not any(s.id.endswith(("0000002-0000003", "0000003-0000002")) for s in both)
        assert [s.id for s in list_samples("things-final", root, "val")] == \
            ["left/0000000-0000001", "left/0000001-0000002"]
        assert list_samples("things-final", root, "test") == list_samples("things-final", root, "val")

    def test_reads_back_exactly(self, tmp_path):
        root = write_mini_things_subset(tmp_path, sequences=2, frames=3, val_sequences=0, size=SIZE, seed=140)
        seq = _things_seq(140 + 10 * 1)                             # second sequence, left camera
        by_id = {s.id: s for s in list_samples("things-clean", root, direction="both")}
        s = by_id["left/0000004-0000005"]
        assert s.flow == root / "train/flow/left/into_future/0000004.flo"
        fr = load_sample(s)
        np.testing.assert_array_equal(fr.gt, seq.flow_fw[2])
        np.testing.assert_array_equal(fr.img1, seq.frames[2])
        np.testing.assert_array_equal(fr.img2, seq.frames[3])
        s = by_id["left/0000004-0000003"]
        assert s.flow == root / "train/flow/left/into_past/0000004.flo"
        assert s.img1 == root / "train/image_clean/left/0000004.png"
        np.testing.assert_array_equal(load_sample(s).gt, seq.flow_bw[1])
        np.testing.assert_array_equal(read_image(root / "train/image_clean/right/0000000.png"),
                                      _things_seq(141).frames[1])


class TestNamesAndErrors:
    def test_layout_missing_names_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*frames_cleanpass/.*FlyingThings3D_subset/"):
            list_samples("things-clean", tmp_path)

    def test_options_only_for_things(self, tmp_path):
        with pytest.raises(ValueError, match="FlyingThings3D"):
            list_samples("sintel-clean", tmp_path, camera="right")
        with pytest.raises(ValueError, match="camera"):
            list_samples("things-clean", tmp_path, camera="centre")
        with pytest.raises(ValueError, match="direction"):
            list_samples("things-clean", tmp_path, direction="sideways")

    def test_write_mini_training(self, tmp_path):
        roots = write_mini_training(tmp_path, size=SIZE)
        assert set(roots) == {"chairs", "chairs-sdhom", "things-clean", "things-final"}
        assert roots["things-clean"].name == "FlyingThings3D_subset"
        for name, root in roots.items():
            assert list_samples(name, tmp_path if name != "chairs" else root)
        full = write_mini_training(tmp_path / "full", size=SIZE, things_layout="full")
        assert full["things-final"].name == "FlyingThings3D"
        assert len(list_samples("things-final", full["things-final"])) == 4
        with pytest.raises(ValueError, match="things_layout"):
            write_mini_training(tmp_path, things_layout="webp")
