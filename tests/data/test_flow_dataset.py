"""FlowDataset: the training dict of tensors over every dataset, on miniature trees."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from flownet2_core.data import FlowDataset
from flownet2_core.data.datasets import list_samples, load_sample
from flownet2_core.data.mini import write_mini_all, write_mini_training
from flownet2_core.data.names import BENCHMARK_DATASETS, DATASETS, TRAINING_DATASETS

SIZE = (32, 48)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("mini")
    out = write_mini_all(base / "bench", size=SIZE)
    out.update(write_mini_training(base / "train", size=SIZE))
    out["things-full"] = write_mini_training(base / "full", size=SIZE, things_layout="full")["things-clean"]
    return out


CASES = [("sintel-clean", "train"), ("sintel-final", "train"), ("kitti-2012", "train"),
         ("kitti-2015", "train"), ("middlebury", "train"), ("chairs", "train"), ("chairs", "val"),
         ("hd1k", "train"), ("chairs-sdhom", "train"), ("chairs-sdhom", "test"),
         ("things-clean", "train"), ("things-final", "val"), ("things-full", "train")]


@pytest.mark.parametrize(("name", "split"), CASES)
def test_item_contract(roots, name, split):
    dataset = "things-final" if name == "things-full" else name
    ds = FlowDataset(dataset, roots[name], split)
    samples = list_samples(dataset, roots[name], split)
    assert len(ds) == len(samples) > 0
    item = ds[len(ds) - 1]
    assert set(item) == {"img1", "img2", "flow", "valid"}
    h, w = SIZE
    assert item["img1"].shape == item["img2"].shape == (3, h, w)
    assert item["img1"].dtype == item["img2"].dtype == torch.float32
    assert item["flow"].shape == (2, h, w) and item["flow"].dtype == torch.float32
    assert item["valid"].shape == (1, h, w) and item["valid"].dtype == torch.bool
    fr = load_sample(samples[-1])
    np.testing.assert_array_equal(item["img1"].numpy().transpose(1, 2, 0), fr.img1)   # RGB, 0..255
    np.testing.assert_array_equal(item["img2"].numpy().transpose(1, 2, 0), fr.img2)
    np.testing.assert_array_equal(item["flow"].numpy().transpose(1, 2, 0), fr.gt)     # u, v
    np.testing.assert_array_equal(item["valid"][0].numpy(), fr.valid)
    assert 0 <= item["img1"].min() and item["img1"].max() <= 255 and item["img1"].max() > 1
    assert torch.isfinite(item["flow"]).all() and not item["flow"][~item["valid"].expand(2, h, w)].any()


def test_kitti_sparse_validity(roots):
    item = FlowDataset("kitti-2015", roots["kitti-2015"])[0]
    valid = item["valid"][0]
    assert not valid[: SIZE[0] // 4].any() and valid[SIZE[0] // 4:].all()   # no GT in the "sky"


@pytest.mark.parametrize("name", ["sintel-clean", "chairs", "chairs-sdhom", "things-clean"])
def test_dense_validity(roots, name):
    assert FlowDataset(name, roots[name])[0]["valid"].all()


def test_dataloader_batches(roots):
    ds = FlowDataset("chairs-sdhom", roots["chairs-sdhom"])
    batch = next(iter(DataLoader(ds, batch_size=2, shuffle=False)))
    assert batch["img1"].shape == (2, 3) + SIZE and batch["valid"].shape == (2, 1) + SIZE
    torch.testing.assert_close(batch["flow"][1], ds[1]["flow"])
    assert len(pickle.loads(pickle.dumps(ds))) == len(ds)       # worker processes get a copy


def test_things_options(roots):
    root = roots["things-clean"]
    assert len(FlowDataset("things-clean", root, camera="both", direction="both")) == \
        4 * len(FlowDataset("things-clean", root))
    past = FlowDataset("things-clean", root, direction="past")
    assert past.samples[0].img1 == FlowDataset("things-clean", root).samples[0].img2


def test_transform_applied(roots):
    def halve(item):
        return {k: v[..., ::2, ::2] for k, v in item.items()}

    item = FlowDataset("chairs", roots["chairs"], transform=halve)[0]
    assert item["img1"].shape == (3, SIZE[0] // 2, SIZE[1] // 2)


class TestErrors:
    def test_missing_root_names_it(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nowhere"):
            FlowDataset("things-clean", tmp_path / "nowhere")

    @pytest.mark.parametrize("name", ["chairs", "chairs-sdhom", "things-final", "sintel-clean"])
    def test_wrong_layout_names_root(self, tmp_path, name):
        (tmp_path / "something_else").mkdir()
        with pytest.raises(FileNotFoundError, match=str(tmp_path)) as err:
            FlowDataset(name, tmp_path)
        assert "\n" not in str(err.value)

    def test_split_without_ground_truth(self, roots):
        with pytest.raises(ValueError, match="no ground truth"):
            FlowDataset("sintel-clean", roots["sintel-clean"], "test")

    def test_unknown_name_and_split(self, roots):
        with pytest.raises(ValueError, match="unknown dataset"):
            FlowDataset("things3d", roots["things-clean"])
        with pytest.raises(ValueError, match="split"):
            FlowDataset("chairs", roots["chairs"], "test")


def test_motorcycle():
    pytest.importorskip("skimage")
    item = FlowDataset("motorcycle-small")[0]
    assert item["img1"].shape == (3, 125, 185) and item["valid"].float().mean() > 0.7
    assert not item["flow"][1].any()


def test_names():
    assert set(TRAINING_DATASETS) <= set(DATASETS) and set(BENCHMARK_DATASETS) <= set(DATASETS)
    assert len(set(DATASETS)) == len(DATASETS)
    assert {"chairs", "chairs-sdhom", "things-clean", "things-final"} == set(TRAINING_DATASETS)


def test_core_imports_nothing_above_it():
    """flownet2_core.data never imports evaluations or flowapps; its names load without torch."""
    code = (
        "import sys\n"
        "import flownet2_core.data.names\n"
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules, 'names pulled in heavy modules'\n"
        "import flownet2_core.data as d\n"
        "import flownet2_core.data.datasets, flownet2_core.data.mini, flownet2_core.data.flow_dataset\n"
        "[getattr(d, n) for n in d.__all__]\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('evaluations', 'flowapps'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
