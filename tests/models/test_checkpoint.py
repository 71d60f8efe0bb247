"""Checkpoints: the released layout round trip, architecture detection, safe loading and
every bad-file case."""

from __future__ import annotations

import collections
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from flownet2_core.models import (
    BUILDERS,
    build_model,
    detect_architecture,
    inspect_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from flownet2_core.models.checkpoint import CheckpointMismatch

TINY = 1 / 16


def _released_file(path, model, best_epe=3.1415, **extra):
    """Write ``model`` exactly as the released files are: legacy (non-zip) torch pickle,
    ``.pth.tar`` name, {'epoch', 'state_dict' (OrderedDict), 'best_EPE' float}."""
    obj = {"epoch": 7, "state_dict": collections.OrderedDict(model.state_dict()), "best_EPE": best_epe}
    obj.update(extra)
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


def _meta_state_dict(arch, **kw):
    with torch.device("meta"):
        return build_model(arch, **kw).state_dict()


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {arch: build_model(arch, width=TINY) for arch in BUILDERS}


@pytest.mark.parametrize("arch", ["FlowNet2", "FlowNet2-C", "FlowNet2-CSS", "FlowNet2-SD", "FlowNet2-S"])
def test_released_layout_round_trip(tmp_path, tiny_models, arch):
    model = tiny_models[arch]
    path = _released_file(tmp_path / f"{arch}_checkpoint.pth.tar", model)
    with open(path, "rb") as fh:  # really the legacy format, not a zip archive
        assert fh.read(2) != b"PK"
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.width == TINY
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    # Into a given model, too.
    target = build_model(arch, width=TINY)
    assert load_checkpoint(path, target) is target
    ckpt = read_checkpoint(path)
    assert ckpt["epoch"] == 7 and ckpt["best_EPE"] == 3.1415


def test_loaded_model_gives_same_output(tmp_path, tiny_models):
    model = tiny_models["FlowNet2-CS"].eval()
    path = _released_file(tmp_path / "FlowNet2-CS_checkpoint.pth.tar", model)
    loaded = load_checkpoint(path).eval()
    a = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(a, a.flip(-1)), model(a, a.flip(-1)), rtol=0, atol=0)


def test_numpy_best_epe_and_arch_entry(tmp_path, tiny_models):
    path = _released_file(tmp_path / "x.pth.tar", tiny_models["FlowNet2-S"], best_epe=np.float64(2.5),
                          arch="FlowNet2S")
    ckpt = read_checkpoint(path)
    assert float(ckpt["best_EPE"]) == 2.5 and ckpt["arch"] == "FlowNet2S"
    assert inspect_checkpoint(path)["best_EPE"] == 2.5


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("width", [1.0, 3 / 8, 0.3])
def test_detect_architecture(arch, width):
    assert detect_architecture(_meta_state_dict(arch, width=width)) == (arch, width, False)


def test_detect_batch_norm():
    assert detect_architecture(_meta_state_dict("FlowNet2-CS", width=0.5, batch_norm=True)) == \
        ("FlowNet2-CS", 0.5, True)


def test_detect_rejects_partial_and_foreign_state_dicts():
    sd = _meta_state_dict("FlowNet2-CSS")
    for key in list(sd)[:12]:
        del sd[key]
    with pytest.raises(ValueError, match="missing 12 keys, e.g. flownetc.conv1.0.weight"):
        detect_architecture(sd)
    with pytest.raises(ValueError, match="not a FlowNet2 state dict"):
        detect_architecture({"fc.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="combination"):
        detect_architecture({"flownetc.conv1.0.weight": torch.zeros(1), "flownets_d.conv0.0.weight": torch.zeros(1)})


def test_save_checkpoint_layout_and_metadata(tmp_path, tiny_models):
    model = build_model("FlowNet2-CSS", width=3 / 8, warp_padding="zeros", upsample_align_corners=True)
    path = tmp_path / "mine.pth.tar"
    save_checkpoint(path, model, epoch=3, best_epe=1.25, dataset="chairs", schedule={"lr": 1e-4})
    assert sorted(os.listdir(tmp_path)) == ["mine.pth.tar"]  # no temporary file left behind
    ckpt = read_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["best_EPE"] == 1.25 and ckpt["arch"] == "FlowNet2CSS"
    meta = ckpt["flownet2"]
    assert meta["model"] == "FlowNet2-CSS" and meta["width"] == 0.375 and meta["dataset"] == "chairs"
    assert meta["conventions"]["warp_padding"] == "zeros"
    loaded = load_checkpoint(path)  # conventions come back from the metadata
    assert loaded.warp_padding == "zeros" and loaded.upsample_align_corners is True
    info = inspect_checkpoint(path)
    assert info["model"] == "FlowNet2-CSS" and info["display_name"] == "FlowNet2-css"
    assert info["width"] == 0.375 and info["batch_norm"] is False
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["conventions_source"] == "file metadata"
    assert info["metadata"]["dataset"] == "chairs" and info["epoch"] == 3
    assert {"FlowNet2-CSS", "FlowNet2-CSS-ft-sd", "caffe/FlowNet2-css"} <= set(info["same_architecture_as"])
    assert "FlowNet2-sss-synth" not in info["same_architecture_as"]   # FlowNet2-SSS, not CSS
    assert info["entry"] is None and info["dtypes"] == ["float32"]
    ss = tmp_path / "ss.pth.tar"
    save_checkpoint(ss, tiny_models["FlowNet2-SS"])
    assert set(inspect_checkpoint(ss)["same_architecture_as"]) == {
        "caffe/FlowNet2-ss", "caffe/FlowNet2-SS"}
    sss = tmp_path / "sss.pth.tar"
    save_checkpoint(sss, tiny_models["FlowNet2-SSS"])
    assert set(inspect_checkpoint(sss)["same_architecture_as"]) == {"caffe/FlowNet2-sss", "FlowNet2-sss-synth"}


def test_save_checkpoint_overwrites_atomically_and_validates(tmp_path, tiny_models):
    path = tmp_path / "a.pth.tar"
    save_checkpoint(path, tiny_models["FlowNet2-C"])
    save_checkpoint(path, tiny_models["FlowNet2-S"])
    assert load_checkpoint(path).arch_name == "FlowNet2-S"
    with pytest.raises(ValueError, match="cannot be stored safely"):
        save_checkpoint(path, tiny_models["FlowNet2-S"], thing=object())
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(path, tiny_models["FlowNet2-S"], width=2.0)
    with pytest.raises(ValueError, match="FlowNet2 model"):
        save_checkpoint(path, torch.nn.Linear(2, 2))
    assert sorted(os.listdir(tmp_path)) == ["a.pth.tar"]


def test_inspect_released_file(tmp_path):
    model = build_model("FlowNet2-SD", width=TINY)
    path = _released_file(tmp_path / "FlowNet2-SD_checkpoint.pth.tar", model)
    info = inspect_checkpoint(path)
    assert info["model"] == "FlowNet2-SD" and info["width"] == TINY and info["epoch"] == 7
    assert info["conventions"]["warp_padding"] == "border"
    assert info["conventions_source"].startswith("assumed")
    assert info["size_bytes"] == path.stat().st_size
    # A released name on a network of another width is not the released file.
    assert info["entry"] is None


def test_inspect_looks_the_file_up_in_the_registry(tmp_path, monkeypatch):
    """A file with an entry's default name and exactly its network is that entry; a converted
    file is the entry of the release it records, whatever its name. (Full-width files are
    hundreds of MB, so the entry is narrowed to the tiny width here.)"""
    import dataclasses

    from flownet2_core import weights as registry

    monkeypatch.setitem(registry._ENTRIES, "FlowNet2-SD",
                        dataclasses.replace(registry.get_weights("FlowNet2-SD"), width=TINY))
    path = _released_file(tmp_path / "FlowNet2-SD_checkpoint.pth.tar", build_model("FlowNet2-SD", width=TINY))
    info = inspect_checkpoint(path)
    assert info["entry"]["name"] == "FlowNet2-SD" and info["entry"]["origin"] == "nvidia-port"
    assert info["entry"]["method"] == "flownet2-sd" and "research" in info["entry"]["licence"]
    assert info["conventions_source"].startswith("assumed: no metadata, so those of the registry entry")
    renamed = tmp_path / "sd.pth.tar"
    os.replace(path, renamed)
    assert inspect_checkpoint(renamed)["entry"] is None
    # A converted Caffe file: found by the release it records.
    monkeypatch.setitem(registry._ENTRIES, "caffe/FlowNet2-css",
                        dataclasses.replace(registry.get_weights("caffe/FlowNet2-css"), width=TINY))
    mine = tmp_path / "whatever.pth.tar"
    save_checkpoint(mine, build_model("FlowNet2-CSS", width=TINY),
                    converted_from={"release": "FlowNet2-css", "file": "FlowNet2-css_weights.caffemodel"})
    info = inspect_checkpoint(mine)
    assert info["entry"]["name"] == "caffe/FlowNet2-css" and info["conventions_source"] == "file metadata"
    save_checkpoint(mine, build_model("FlowNet2-CSS", width=TINY), converted_from={"release": "FlowNet2-css-ft-sd"})
    assert inspect_checkpoint(mine)["entry"] is None   # that release's entry is width 3/8


# --------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_corrupted_bytes(tmp_path, seed):
    path = tmp_path / "bad.pth.tar"
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="bad.pth.tar: not a readable torch checkpoint"):
        load_checkpoint(path)


def test_flipped_bytes_in_a_real_file(tmp_path, tiny_models):
    path = _released_file(tmp_path / "flip.pth.tar", tiny_models["FlowNet2-S"])
    data = bytearray(path.read_bytes())
    data[10:40] = bytes(30)  # damage the pickle header
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flip.pth.tar"):
        load_checkpoint(path)


@pytest.mark.parametrize("legacy", [True, False])
def test_truncated(tmp_path, tiny_models, legacy):
    full = tmp_path / "full.pth.tar"
    torch.save({"state_dict": tiny_models["FlowNet2-C"].state_dict(), "epoch": 1, "best_EPE": 1.0},
               full, _use_new_zipfile_serialization=not legacy)
    cut = tmp_path / "cut.pth.tar"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pth.tar.*corrupted or truncated"):
        load_checkpoint(cut)


def test_non_dict_pickle(tmp_path):
    path = tmp_path / "list.pth.tar"
    torch.save([1, 2, 3], path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="list.pth.tar: expected a checkpoint dict.*got list"):
        load_checkpoint(path)


def test_dict_without_state_dict(tmp_path):
    path = tmp_path / "meta.pth.tar"
    torch.save({"epoch": 3, "best_EPE": 1.0}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="meta.pth.tar: checkpoint dict has no 'state_dict'"):
        load_checkpoint(path)


def test_bare_state_dict_is_accepted(tmp_path, tiny_models):
    path = tmp_path / "bare.pth"
    torch.save(tiny_models["FlowNet2-SD"].state_dict(), path)
    assert load_checkpoint(path).arch_name == "FlowNet2-SD"


class _Payload:
    """Something a safe loader must refuse to reconstruct."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth.tar"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {}, "x": _Payload()}, fh, protocol=2)
    with pytest.raises(ValueError, match="evil.pth.tar"):
        load_checkpoint(path)
    path2 = tmp_path / "evil2.pth.tar"
    torch.save({"state_dict": collections.OrderedDict(), "x": _Payload()}, path2,
               _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="refusing to load"):
        read_checkpoint(path2)


def test_wrong_model_asked(tmp_path, tiny_models):
    path = _released_file(tmp_path / "FlowNet2-CSS_checkpoint.pth.tar", tiny_models["FlowNet2-CSS"])
    with pytest.raises(CheckpointMismatch, match="this file is FlowNet2-CSS .*; you asked for FlowNet2 "):
        load_checkpoint(path, build_model("FlowNet2", width=TINY))
    with pytest.raises(ValueError, match="width"):
        load_checkpoint(path, build_model("FlowNet2-CSS", width=1 / 8))


def test_missing_keys_message(tmp_path, tiny_models):
    sd = collections.OrderedDict(tiny_models["FlowNet2-C"].state_dict())
    for key in list(sd)[-12:]:
        del sd[key]
    path = tmp_path / "partial.pth.tar"
    torch.save({"state_dict": sd, "epoch": 0, "best_EPE": 0.0}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="missing 12 keys, e.g. predict_flow3.weight"):
        load_checkpoint(path, build_model("FlowNet2-C", width=TINY))
    with pytest.raises(ValueError, match="partial.pth.tar.*missing 12 keys"):
        load_checkpoint(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pth.tar")
    with pytest.raises(IsADirectoryError):
        load_checkpoint(tmp_path)
