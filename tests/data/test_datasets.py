"""Miniature datasets: exact layouts, our readers, torchvision's readers, OpenCV-written files."""

import cv2
import numpy as np
import pytest

from flownet2_core.data.datasets import list_samples, load_sample
from flownet2_core.data.mini import (
    write_mini_chairs,
    write_mini_hd1k,
    write_mini_kitti2012,
    write_mini_kitti2015,
    write_mini_middlebury,
    write_mini_sintel,
)
from flownet2_core.io import read_flo

SIZE = (32, 48)


def _rel(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class TestLayouts:
    def test_sintel(self, tmp_path):
        root = write_mini_sintel(tmp_path / "Sintel", scenes=2, frames=3, test_scenes=1, size=SIZE)
        files = _rel(root)
        for f in ("training/clean/scene_1/frame_0001.png", "training/final/scene_2/frame_0003.png",
                  "training/flow/scene_1/frame_0002.flo", "training/occlusions/scene_2/frame_0001.png",
                  "test/clean/test_1/frame_0003.png", "test/final/test_1/frame_0001.png"):
            assert f in files
        assert "training/flow/scene_1/frame_0003.flo" not in files  # last frame has no flow
        train = list_samples("sintel-final", root)
        assert [s.id for s in train] == ["scene_1/frame_0001", "scene_1/frame_0002",
                                         "scene_2/frame_0001", "scene_2/frame_0002"]
        assert len(list_samples("sintel-clean", root, "test")) == 2
        fr = load_sample(train[0])
        assert fr.gt.shape == SIZE + (2,) and fr.valid.all()
        assert fr.occluded is not None and fr.occluded.any() and not fr.occluded.all()

    def test_sintel_occlusions_match_generator(self, tmp_path):
        from flownet2_core.data.synthetic import make_sequence
        root = write_mini_sintel(tmp_path, scenes=1, frames=2, test_scenes=0, size=SIZE, seed=5)
        seq = make_sequence(seed=5, num_frames=2, size=SIZE, num_objects=2, max_translation=4.0)
        fr = load_sample(list_samples("sintel-clean", root)[0])
        np.testing.assert_array_equal(fr.occluded, ~seq.valid_fw[0])
        np.testing.assert_array_equal(fr.gt, seq.flow_fw[0])
        np.testing.assert_array_equal(fr.img1, seq.frames[0])

    def test_kitti2012(self, tmp_path):
        root = write_mini_kitti2012(tmp_path, pairs=2, test_pairs=1, size=SIZE)
        files = _rel(root)
        for f in ("training/colored_0/000000_10.png", "training/colored_0/000001_11.png",
                  "training/image_0/000000_10.png", "training/flow_occ/000001_10.png",
                  "training/flow_noc/000000_10.png", "testing/colored_0/000000_11.png"):
            assert f in files
        grey = cv2.imread(str(root / "training/image_0/000000_10.png"), cv2.IMREAD_UNCHANGED)
        assert grey.ndim == 2 and grey.dtype == np.uint8
        fr = load_sample(list_samples("kitti-2012", root)[0])
        assert not fr.valid[: SIZE[0] // 4].any() and fr.valid[SIZE[0] // 4:].all()
        assert fr.occluded is not None and not (fr.occluded & ~fr.valid).any()
        assert fr.foreground is None

    def test_kitti2015(self, tmp_path):
        root = write_mini_kitti2015(tmp_path, pairs=2, test_pairs=1, size=SIZE)
        assert {"training/obj_map/000000_10.png", "training/image_2/000001_11.png",
                "testing/image_2/000000_10.png"} <= set(_rel(root))
        samples = list_samples("kitti-2015", root)
        assert [s.id for s in samples] == ["000000", "000001"]
        fr = load_sample(samples[0])
        assert fr.foreground is not None and fr.foreground.any()
        assert len(list_samples("kitti-2015", root, "test")) == 1

    def test_middlebury(self, tmp_path):
        root = write_mini_middlebury(tmp_path, sequences=2, size=SIZE)
        assert {"other-data/Dimetrodon/frame10.png", "other-data/Grove2/frame11.png",
                "other-gt-flow/Grove2/flow10.flo"} <= set(_rel(root))
        fr = load_sample(list_samples("middlebury", root)[0])
        assert fr.valid.any()

    def test_chairs_split(self, tmp_path):
        root = write_mini_chairs(tmp_path, pairs=4, val_every=2, size=SIZE)
        assert (root / "FlyingChairs_train_val.txt").read_text().split() == ["1", "2", "1", "2"]
        assert {"data/00001_img1.ppm", "data/00001_img2.ppm", "data/00004_flow.flo"} <= set(_rel(root))
        assert [s.id for s in list_samples("chairs", root, "val")] == ["00002", "00004"]
        assert [s.id for s in list_samples("chairs", root, "train")] == ["00001", "00003"]

    def test_hd1k(self, tmp_path):
        root = write_mini_hd1k(tmp_path, sequences=1, frames=3, size=SIZE)
        assert {"hd1k_input/image_2/000000_0002.png", "hd1k_flow_gt/flow_occ/000000_0001.png"} <= set(_rel(root))
        assert [s.id for s in list_samples("hd1k", root)] == ["000000_0000", "000000_0001"]


class TestErrors:
    def test_missing_root_names_it(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nowhere"):
            list_samples("sintel-clean", tmp_path / "nowhere")

    def test_missing_layout(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="training"):
            list_samples("kitti-2015", tmp_path)

    def test_missing_gt_file_names_it(self, tmp_path):
        root = write_mini_kitti2015(tmp_path, pairs=1, test_pairs=0, size=SIZE)
        (root / "training/flow_occ/000000_10.png").unlink()
        with pytest.raises(FileNotFoundError, match="flow_occ"):
            list_samples("kitti-2015", root)

    def test_chairs_split_file(self, tmp_path):
        root = write_mini_chairs(tmp_path, pairs=2, size=SIZE)
        (root / "FlyingChairs_train_val.txt").write_text("1\n")
        with pytest.raises(ValueError, match="FlyingChairs_train_val.txt"):
            list_samples("chairs", root, "val")

    def test_unknown_dataset(self):
        with pytest.raises(ValueError, match="unknown dataset"):
            list_samples("kitti-2013", ".")


@pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
class TestAgainstTorchvision:
    """torchvision's classes pair the same files and decode the same flow."""

    def test_sintel(self, tmp_path):
        tv = pytest.importorskip("torchvision.datasets")
        write_mini_sintel(tmp_path / "Sintel", scenes=2, frames=3, test_scenes=0, size=SIZE)
        ours = list_samples("sintel-clean", tmp_path)          # torchvision's parent folder accepted
        theirs = tv.Sintel(str(tmp_path), split="train", pass_name="clean")
        assert len(theirs) == len(ours)
        by_img = {str(s.img1): s for s in ours}
        for k in range(len(theirs)):
            a, b = theirs._image_list[k]
            s = by_img[a]
            assert str(s.img2) == b and str(s.flow) == theirs._flow_list[k]
            img1, _, flow = theirs[k]                            # PIL image, (2, H, W) flow, no mask
            fr = load_sample(s)
            np.testing.assert_array_equal(np.asarray(img1), fr.img1)
            np.testing.assert_array_equal(flow.transpose(1, 2, 0), fr.gt)

    def test_kitti2015(self, tmp_path):
        tv = pytest.importorskip("torchvision.datasets")
        write_mini_kitti2015(tmp_path / "KittiFlow", pairs=2, test_pairs=0, size=SIZE)
        ours = list_samples("kitti-2015", tmp_path)
        theirs = tv.KittiFlow(str(tmp_path), split="train")
        assert len(theirs) == len(ours)
        for k, s in enumerate(ours):
            _, img2, flow, valid = theirs[k]
            fr = load_sample(s)
            np.testing.assert_array_equal(np.asarray(img2), fr.img2)
            np.testing.assert_array_equal(valid, fr.valid)
            np.testing.assert_array_equal(flow.transpose(1, 2, 0)[valid], fr.gt[valid])

    def test_chairs(self, tmp_path):
        tv = pytest.importorskip("torchvision.datasets")
        write_mini_chairs(tmp_path / "FlyingChairs", pairs=4, size=SIZE)
        ours = list_samples("chairs", tmp_path, "val")
        theirs = tv.FlyingChairs(str(tmp_path), split="val")
        assert [(str(s.img1), str(s.img2)) for s in ours] == [tuple(p) for p in theirs._image_list]
        img1, _, flow = theirs[0]
        fr = load_sample(ours[0])
        np.testing.assert_array_equal(np.asarray(img1), fr.img1)
        np.testing.assert_array_equal(flow.transpose(1, 2, 0), fr.gt)

    def test_hd1k(self, tmp_path):
        tv = pytest.importorskip("torchvision.datasets")
        write_mini_hd1k(tmp_path / "hd1k", frames=4, size=SIZE)
        ours = list_samples("hd1k", tmp_path)
        theirs = tv.HD1K(str(tmp_path), split="train")
        # torchvision drops each sequence's last flow file; the pairs it keeps are ours.
        assert len(theirs) >= 1
        for k in range(len(theirs)):
            assert [str(ours[k].img1), str(ours[k].img2)] == theirs._image_list[k]
            assert str(ours[k].flow) == theirs._flow_list[k]


class TestOpenCVWrittenFiles:
    def test_flo_written_by_opencv(self, tmp_path):
        rng = np.random.default_rng(1)
        flow = rng.normal(0, 5, SIZE + (2,)).astype(np.float32)
        root = write_mini_sintel(tmp_path, scenes=1, frames=2, test_scenes=0, size=SIZE)
        path = root / "training/flow/scene_1/frame_0001.flo"
        assert cv2.writeOpticalFlow(str(path), flow)
        fr = load_sample(list_samples("sintel-clean", root)[0])
        np.testing.assert_array_equal(fr.gt, flow)
        np.testing.assert_array_equal(read_flo(path), cv2.readOpticalFlow(str(path)))

    def test_kitti_png_written_by_opencv(self, tmp_path):
        root = write_mini_kitti2015(tmp_path, pairs=1, test_pairs=0, size=SIZE)
        u = np.full(SIZE, 1.5, np.float32)
        v = np.full(SIZE, -2.25, np.float32)
        valid = np.zeros(SIZE, bool)
        valid[5:, 3:] = True
        bgr = np.stack([valid.astype(np.uint16),                      # B = valid
                        (v * 64 + 2 ** 15).astype(np.uint16),         # G = v
                        (u * 64 + 2 ** 15).astype(np.uint16)], -1)    # R = u
        assert cv2.imwrite(str(root / "training/flow_occ/000000_10.png"), bgr)
        fr = load_sample(list_samples("kitti-2015", root)[0])
        np.testing.assert_array_equal(fr.valid, valid)
        assert np.all(fr.gt[valid] == [1.5, -2.25])


class TestMotorcycle:
    def test_real_pair_as_flow(self):
        pytest.importorskip("skimage")
        from skimage.data import stereo_motorcycle

        from flownet2_core.data.datasets import load_motorcycle
        _, _, disp = stereo_motorcycle()
        fr = load_motorcycle()
        assert fr.img1.shape == disp.shape + (3,) and fr.img1.dtype == np.uint8
        np.testing.assert_array_equal(fr.valid, np.isfinite(disp))
        np.testing.assert_array_equal(fr.gt[..., 0][fr.valid], -disp[np.isfinite(disp)])
        assert not fr.gt[..., 1].any() and not fr.gt[~fr.valid].any()

    def test_small_is_block_mean(self):
        pytest.importorskip("skimage")
        from flownet2_core.data.datasets import load_motorcycle
        full, small = load_motorcycle(), load_motorcycle(4)
        assert small.img1.shape == (125, 185, 3)
        i, j = np.argwhere(small.valid)[len(np.argwhere(small.valid)) // 2]
        block = full.gt[4 * i:4 * i + 4, 4 * j:4 * j + 4, 0]
        assert small.gt[i, j, 0] == pytest.approx(block.mean() / 4, rel=1e-5)
        assert -16 < small.gt[..., 0].min() and small.gt[..., 0].max() <= 0
