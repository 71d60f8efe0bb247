"""A torch ``Dataset`` over any dataset the readers know, for training.

Example::

    from torch.utils.data import DataLoader
    from flownet2_core.data import FlowDataset

    chairs = FlowDataset("chairs", "/data/FlyingChairs_release", "train")
    item = chairs[0]          # {"img1", "img2", "flow", "valid"}: torch tensors
    loader = DataLoader(chairs, batch_size=8, shuffle=True, num_workers=4)

Convention: ``img1`` / ``img2`` are (3, H, W) float32 RGB in 0..255 (not
normalised: the networks subtract their own mean); ``flow`` is (2, H, W)
float32 in pixels from ``img1`` to ``img2``, channel 0 = u (right), 1 = v
(down), 0 where invalid; ``valid`` is (1, H, W) bool: KITTI / HD1K's sparse
mask, else finite and ``|u|, |v| ≤ 1e9`` (see :mod:`flownet2_core.data.datasets`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .datasets import Sample, list_samples, load_sample

__all__ = ["FlowDataset", "frame_to_tensors"]


def frame_to_tensors(img1: np.ndarray, img2: np.ndarray, flow: np.ndarray,
                     valid: np.ndarray) -> dict[str, torch.Tensor]:
    """(H, W, 3) uint8 images, (H, W, 2) flow and (H, W) mask → the training dict of tensors."""
    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    return {
        "img1": chw(img1).to(torch.float32),
        "img2": chw(img2).to(torch.float32),
        "flow": chw(np.asarray(flow, dtype=np.float32)),
        "valid": torch.from_numpy(np.ascontiguousarray(valid, dtype=bool))[None],
    }


class FlowDataset(Dataset):
    """The pairs of dataset ``name`` under ``root`` with their ground truth.

    Args:
        name: one of :data:`~flownet2_core.data.names.DATASETS` (``chairs``,
            ``chairs-sdhom``, ``things-clean``, ``things-final``, ``sintel-clean``,
            ``kitti-2015``, …).
        root: the folder the archive unpacks to (or its parent with the usual
            folder name); None only for ``motorcycle``.
        split: ``train``, ``val`` (chairs) or ``test`` (see
            :func:`~flownet2_core.data.datasets.list_samples`); the split must
            have ground truth.
        camera, direction: FlyingThings3D's pairs (``left`` / ``right`` / ``both``,
            ``future`` / ``past`` / ``both``); defaults = what FlowNet 2.0 used.
        transform: optional callable applied to each item dict (augmentation).

    Raises:
        FileNotFoundError: ``root`` does not hold the layout, or a file is
            missing (the message names the path).
        ValueError: unknown name, split or option, or a split without ground truth.

    ``samples`` lists the pairs (paths, ids, sequences) in index order.
    """

    def __init__(self, name: str, root: str | os.PathLike | None = None, split: str = "train", *,
                 camera: str = "left", direction: str = "future",
                 transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None):
        self.name = name
        self.split = split
        self.transform = transform
        self.samples: list[Sample] = list_samples(name, root, split, camera=camera, direction=direction)
        if not self.samples:
            raise ValueError(f"{root}: no {name} {split} pairs there")
        if not name.startswith("motorcycle") and self.samples[0].flow is None:
            raise ValueError(f"{self.samples[0].img1.parent}: {name} {split} has no ground truth flow to train on")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        fr = load_sample(self.samples[index])
        item = frame_to_tensors(fr.img1, fr.img2, fr.gt, fr.valid)
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"FlowDataset({self.name!r}, split={self.split!r}, {len(self)} pairs)"
