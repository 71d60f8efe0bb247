"""The RAFT flow methods (torchvision's networks, weights from a local file): the flow is
torchvision's model called directly with torchvision's preprocessing, on the padded
images cropped back; batches equal single pairs; files are found, refused and read
safely, as the FlowNet2 methods' are. Weights here are seeded random, saved as
torchvision saves its released files (a bare state dict)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import optical_flow

from flownet2_core.methods import available_methods, get_factory, get_method, unavailable_methods

FILES = {"raft-large": "raft_large_C_T_SKHT_V2-ff5fadd5.pth", "raft-small": "raft_small_C_T_V2-01064c6d.pth"}
URLS = {name: f"https://download.pytorch.org/models/{file}" for name, file in FILES.items()}
BUILDERS = {"raft-large": optical_flow.raft_large, "raft-small": optical_flow.raft_small}
# Only their transforms() is used: a plain preprocessing module, nothing is fetched.
TV_WEIGHTS = {"raft-large": optical_flow.Raft_Large_Weights.C_T_SKHT_V2,
              "raft-small": optical_flow.Raft_Small_Weights.C_T_V2}


def _save_random(path, name, seed=0):
    torch.manual_seed(seed)
    model = BUILDERS[name](weights=None)
    torch.save(model.state_dict(), path)
    return model.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """method name → (file, the torchvision model it holds, in eval mode)."""
    folder = tmp_path_factory.mktemp("raft")
    return {name: (str(folder / FILES[name]), _save_random(folder / FILES[name], name)) for name in FILES}


def _pair(h, w, n=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if n is None else (n, h, w, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


def _direct(name, model, img1, img2, pads=(0, 0, 0, 0), num_flow_updates=12):
    """torchvision's model on torchvision's preprocessing of the pair, edge-padded by
    ``pads`` = (top, bottom, left, right), last prediction cropped back: (H, W, 2)."""
    a = torch.from_numpy(img1).permute(2, 0, 1)[None]
    b = torch.from_numpy(img2).permute(2, 0, 1)[None]
    a, b = TV_WEIGHTS[name].transforms()(a, b)
    top, bottom, left, right = pads
    a = F.pad(a, (left, right, top, bottom), mode="replicate")
    b = F.pad(b, (left, right, top, bottom), mode="replicate")
    with torch.no_grad():
        flow = model(a, b, num_flow_updates=num_flow_updates)[-1][0]
    h, w = img1.shape[:2]
    return flow[:, top:top + h, left:left + w].permute(1, 2, 0).numpy()


class TestRegistry:
    def test_registered_with_descriptions(self):
        methods = available_methods()
        assert methods["raft-large"].startswith("RAFT-large") and "C_T_SKHT_V2" in methods["raft-large"]
        assert methods["raft-small"].startswith("RAFT-small") and "C_T_V2" in methods["raft-small"]
        for name in FILES:
            cls = get_factory(name)
            assert cls.name == name and cls.description == methods[name]
            assert FILES[name] in cls.__doc__ and URLS[name] in cls.__doc__

    def test_listing_imports_no_torch(self):
        code = ("import sys\n"
                "from flownet2_core.methods import available_methods, unavailable_methods\n"
                "assert 'raft-large' in available_methods() and unavailable_methods() is not None\n"
                "heavy = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
                "assert not heavy, heavy\n")
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "FLOWNET2_WEIGHTS": ""})

    def test_listing_follows_flownet2_weights(self, tmp_path, monkeypatch):
        monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
        reason = unavailable_methods()["raft-small"]
        assert reason == (f"FLOWNET2_WEIGHTS is not set; set it to a directory holding {FILES['raft-small']} "
                          f"(download {URLS['raft-small']} yourself) or pass weights=FILE (CLI: --weights FILE)")
        monkeypatch.setenv("FLOWNET2_WEIGHTS", str(tmp_path))
        assert unavailable_methods()["raft-small"].startswith(f"FLOWNET2_WEIGHTS={tmp_path} has no "
                                                              f"{FILES['raft-small']}; download {URLS['raft-small']}")
        _save_random(tmp_path / FILES["raft-small"], "raft-small")
        gone = unavailable_methods()
        assert "raft-small" not in gone and "raft-large" in gone
        method = get_method("raft-small", device="cpu")
        assert method.weights == str(tmp_path / FILES["raft-small"])


class TestFlow:
    @pytest.mark.parametrize("name, size, pads", [
        ("raft-small", (128, 136), (0, 0, 0, 0)),       # multiples of 8: no padding
        ("raft-small", (125, 131), (1, 2, 2, 3)),       # to 128×136, split evenly, odd pixel last
        ("raft-small", (61, 77), (33, 34, 25, 26)),     # under torchvision's 128 minimum: up to 128×128
        ("raft-large", (125, 131), (1, 2, 2, 3)),
    ])
    def test_equals_torchvision_on_padded_input(self, weights, name, size, pads):
        path, model = weights[name]
        method = get_method(name, weights=path, device="cpu")
        img1, img2 = _pair(*size)
        flow = method(img1, img2)
        assert flow.shape == (*size, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
        np.testing.assert_allclose(flow, _direct(name, model, img1, img2, pads), rtol=1e-5, atol=1e-5)
        assert np.abs(flow).max() > 0.1  # random weights give non-trivial flow: the comparison means something

    def test_num_flow_updates(self, weights):
        path, model = weights["raft-small"]
        img1, img2 = _pair(128, 128)
        few = get_method("raft-small", weights=path, device="cpu", num_flow_updates=3)(img1, img2)
        np.testing.assert_allclose(few, _direct("raft-small", model, img1, img2, num_flow_updates=3),
                                   rtol=1e-5, atol=1e-5)
        default = get_method("raft-small", weights=path, device="cpu")
        assert default.num_flow_updates == 12
        assert not np.allclose(few, default(img1, img2))

    def test_batch_equals_pairs(self, weights):
        path, _ = weights["raft-small"]
        method = get_method("raft-small", weights=path, device="cpu", batch_size=2)
        imgs1, imgs2 = _pair(125, 131, n=3, seed=1)
        flows = method.batch(imgs1, imgs2)  # two passes: 2 pairs, then 1
        assert flows.shape == (3, 125, 131, 2) and flows.dtype == np.float32
        for i in range(3):
            np.testing.assert_allclose(flows[i], method(imgs1[i], imgs2[i]), rtol=1e-4, atol=1e-4)
        empty = method.batch(imgs1[:0], imgs2[:0])
        assert empty.shape == (0, 125, 131, 2) and empty.dtype == np.float32

    def test_pickles_without_the_last_correlation_volume(self, weights):
        method = get_method("raft-small", weights=weights["raft-small"][0], device="cpu")
        img1, img2 = _pair(128, 128)
        flow = method(img1, img2)
        assert method.model.corr_block.corr_pyramid == []
        size = len(pickle.dumps(method))
        assert size < 1.5 * os.path.getsize(weights["raft-small"][0])
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(method))(img1, img2), flow)

    def test_model_in_eval_mode_on_the_device(self, weights):
        method = get_method("raft-large", weights=weights["raft-large"][0], device="cpu")
        assert not method.model.training and method.device == torch.device("cpu")
        assert "raft-large" in repr(method) and weights["raft-large"][0] in repr(method)

    @pytest.mark.cuda
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda_matches_cpu(self, weights):
        path, _ = weights["raft-small"]
        img1, img2 = _pair(125, 131)
        cpu = get_method("raft-small", weights=path, device="cpu")(img1, img2)
        gpu = get_method("raft-small", weights=path, device="cuda")(img1, img2)
        np.testing.assert_allclose(gpu, cpu, atol=1e-2)


class TestOptions:
    @pytest.mark.parametrize("options, match", [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"num_flow_updates": 0}, "num_flow_updates must be a positive integer"),
        ({"num_flow_updates": 2.5}, "num_flow_updates must be a positive integer"),
        ({"device": "nonsense"}, "unknown device"),
    ])
    def test_bad_options(self, weights, options, match):
        with pytest.raises(ValueError, match=match):
            get_method("raft-small", weights=weights["raft-small"][0], **options)

    @pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
    def test_cuda_without_cuda(self, weights):
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_method("raft-small", weights=weights["raft-small"][0], device="cuda")


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert len(text.splitlines()) == 1, text
    return text


class TestWeightsFiles:
    def test_missing_file(self, tmp_path):
        path = tmp_path / "nowhere.pth"
        with pytest.raises(ValueError) as info:
            get_method("raft-large", weights=path)
        assert _one_line(info) == f"raft-large: weights file not found: {path}"

    def test_no_file_given_and_none_in_flownet2_weights(self, monkeypatch):
        monkeypatch.delenv("FLOWNET2_WEIGHTS", raising=False)
        with pytest.raises(ValueError) as info:
            get_method("raft-large")
        text = _one_line(info)
        assert text.startswith(f"raft-large needs pretrained weights: FLOWNET2_WEIGHTS is not set; set it to a "
                               f"directory holding {FILES['raft-large']} (download {URLS['raft-large']} yourself)")
        assert "not downloaded" in text

    def test_random_bytes(self, tmp_path):
        path = tmp_path / "noise.pth"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(ValueError) as info:
            get_method("raft-small", weights=path)
        assert _one_line(info).startswith(f"raft-small: {path}: not a readable torch checkpoint")

    def test_other_raft(self, weights):
        with pytest.raises(ValueError) as info:
            get_method("raft-large", weights=weights["raft-small"][0])
        assert _one_line(info).startswith(f"raft-large: {weights['raft-small'][0]} does not hold torchvision's "
                                          "raft_large weights; its entries: ")

    def test_flownet2_state_dict(self, tmp_path):
        from flownet2_core.models import build_model

        path = tmp_path / "flownet2-s.pth"
        torch.save(build_model("FlowNet2-S", width=1 / 16).state_dict(), path)
        with pytest.raises(ValueError) as info:
            get_method("raft-small", weights=path)
        text = _one_line(info)
        assert text.startswith(f"raft-small: {path} does not hold torchvision's raft_small weights; its entries: ")
        assert "missing" in text and "unexpected" in text

    def test_flownet2_checkpoint_dict(self, tmp_path):
        from flownet2_core.models import build_model

        path = tmp_path / "FlowNet2-S_checkpoint.pth.tar"
        torch.save({"epoch": 1, "state_dict": build_model("FlowNet2-S", width=1 / 16).state_dict(),
                    "best_EPE": 9.0}, path)
        with pytest.raises(ValueError) as info:
            get_method("raft-small", weights=path)
        assert _one_line(info) == (f"raft-small: {path} is not a bare state dict as torchvision's weights files "
                                   "are: entry 'epoch' is not a tensor (another model's checkpoint?)")

    def test_not_a_dict(self, tmp_path):
        path = tmp_path / "tensor.pth"
        torch.save(torch.zeros(3), path)
        with pytest.raises(ValueError) as info:
            get_method("raft-small", weights=path)
        assert _one_line(info).startswith(f"raft-small: {path} holds a Tensor, not a state dict")


class _CreatesMarker:
    """Unpickling this calls ``open(marker, "w")``: code a safe loader must never run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class TestSafeLoading:
    def test_the_payload_is_real(self, tmp_path):
        # The unsafe loader does run it: the test below would prove nothing otherwise.
        marker = tmp_path / "ran"
        blob = pickle.dumps({"x": _CreatesMarker(marker)}, protocol=2)
        pickle.loads(blob)["x"].close()
        assert marker.exists()

    @pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
    def test_pickle_with_code_is_refused_and_not_run(self, weights, tmp_path, writer):
        marker = tmp_path / "ran"
        path = tmp_path / "evil.pth"
        state = dict(torch.load(weights["raft-small"][0], weights_only=True))
        state["evil"] = _CreatesMarker(marker)
        if writer == "torch.save":
            torch.save(state, path)
        else:
            with open(path, "wb") as fh:
                pickle.dump(state, fh, protocol=2)
        with pytest.raises(ValueError) as info:
            get_method("raft-small", weights=path)
        text = _one_line(info)
        assert text.startswith(f"raft-small: refusing to load {path}: the file holds Python code or objects")
        assert not marker.exists()


def test_cli_flow_with_raft(weights, tmp_path, capsys):
    from flownet2_core.cli import main
    from flownet2_core.io import read_flo, write_image

    img1, img2 = _pair(61, 77)
    write_image(tmp_path / "a.png", img1)
    write_image(tmp_path / "b.png", img2)
    path, model = weights["raft-small"]
    out = tmp_path / "out.flo"
    argv = ["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--method", "raft-small",
            "--device", "cpu"]
    assert main(argv + ["--weights", path]) == 0
    np.testing.assert_allclose(read_flo(out), _direct("raft-small", model, img1, img2, (33, 34, 25, 26)),
                               rtol=1e-5, atol=1e-5)
    capsys.readouterr()
    assert main(argv + ["--weights", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err
    assert err == f"flownet2 flow: error: raft-small: weights file not found: {tmp_path / 'missing.pth'}\n"
