"""Datasets: readers for the published layouts, a torch ``Dataset`` for training, miniature
copies of every layout, synthetic scenes with exact flow.

Public API::

    from flownet2_core.data import (
        DATASETS, BENCHMARK_DATASETS, TRAINING_DATASETS,   # names (names.py)
        list_samples, load_sample, Sample, Frame,          # readers (datasets.py)
        FlowDataset,                                       # torch Dataset (flow_dataset.py)
        write_mini_all, write_mini_training,               # miniature trees (mini.py)
    )

Submodules are imported on first use (PEP 562): command-line parsers read the
names without loading torch, OpenCV or the generator.
"""

import importlib

_WHERE = {
    "BENCHMARK_DATASETS": "names", "DATASETS": "names", "TRAINING_DATASETS": "names",
    "Frame": "datasets", "Sample": "datasets", "dataset_metric_notes": "datasets",
    "list_samples": "datasets", "load_motorcycle": "datasets", "load_sample": "datasets",
    "resolve_root": "datasets",
    "FlowDataset": "flow_dataset", "frame_to_tensors": "flow_dataset",
    "MINI_ROOTS": "mini", "write_mini_all": "mini", "write_mini_chairs": "mini",
    "write_mini_chairs_sdhom": "mini", "write_mini_hd1k": "mini", "write_mini_kitti2012": "mini",
    "write_mini_kitti2015": "mini", "write_mini_middlebury": "mini", "write_mini_sintel": "mini",
    "write_mini_things": "mini", "write_mini_things_subset": "mini", "write_mini_training": "mini",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
