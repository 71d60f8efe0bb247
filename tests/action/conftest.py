"""Shared fixtures for the action-recognition tests.

One torch thread per process: on 2 shared cores two threads per process ran several
times slower than one (OpenMP workers wait on each other when a core is taken).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def small_stacks(tmp_path_factory):
    """Exact-flow stacks of a tiny mini-UCF101: 3 motion classes, 4 groups × 1 clip,
    12 frames of 48 × 64 (split 1 tests group 1; a corrupt video is recorded as failed)."""
    from flowapps.stacks.mini_ucf101 import write_exact_stacks, write_mini_ucf101

    root = tmp_path_factory.mktemp("small")
    mini = write_mini_ucf101(root / "ucf", classes=("MoveLeft", "MoveUp", "Expand"), num_groups=4,
                             clips_per_group=1, num_frames=12, size=(48, 64))
    return write_exact_stacks(mini, root / "stacks")


@pytest.fixture(scope="session")
def small_config(small_stacks):
    """Factory of a seconds-long training recipe on :func:`small_stacks`:
    ``small_config(out, modality="flow", **overrides) -> TrainConfig``."""
    from flowapps.action.train import TrainConfig

    def make(out, modality="flow", **kw):
        base = dict(stacks=str(small_stacks), out=str(out), modality=modality, arch="tiny", new_length=4,
                    crop_size=32, epochs=3, batch_size=4, lr=0.05, schedule="cosine", milestones=(), dropout=0.2,
                    repeat=2, workers=0, cache_mb=64, progress=False, weight_decay=1e-4)
        base.update(kw)
        return TrainConfig(**base)

    return make
