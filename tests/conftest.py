"""Fixtures shared across the test folders."""

import dataclasses

import pytest


@pytest.fixture
def learned_package(tmp_path, monkeypatch):
    """An empty stand-in for flownet2_core/weights/ (never write into the package) with the
    default learned method's entry narrowed to a tiny width; gives a function that puts a
    randomly initialised tiny weights file there (fp16 state dict, as weights trained here
    ship) and returns its path. Without calling it the method's file is absent."""
    import torch

    from flownet2_core import weights as registry
    from flownet2_core.methods import DEFAULT_LEARNED_METHOD, get_factory
    from flownet2_core.models import build_model

    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(registry, "package_dir", lambda: folder)
    cls = get_factory(DEFAULT_LEARNED_METHOD)
    monkeypatch.setattr(cls, "weights_entry", dataclasses.replace(cls.weights_entry, width=1 / 16))

    def write():
        torch.manual_seed(0)
        model = build_model(cls.arch, width=1 / 16)
        path = folder / cls.weights_entry.file
        torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
        return path

    # One torch thread: on 2 shared cores two threads per process ran tens of times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield write
    torch.set_num_threads(threads)
