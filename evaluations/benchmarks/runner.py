"""Run flow methods over a benchmark: per-frame measures and runtime, saved resumably.

Protocol (the same for every method):

* the method is built once (``get_method(name, **options)``), then called
  ``warmup`` times on the first pair, untimed (JIT, cuDNN autotuning, caches);
* each pair is timed alone with :func:`time.perf_counter` around the call,
  with ``torch.cuda.synchronize`` before and after when the method runs on
  CUDA (image loading and metrics are outside the timed span);
* a run's runtime is the **median** over its frames, reported with the device
  name and the resolution ([H, W] of the first pair; reports print it W×H).

Results live in ``out_dir``:

* ``frames.csv``: one row per (dataset, method, sample) with the sums and
  counts of :func:`~evaluations.benchmarks.metrics.frame_stats`, the frame's
  own measures and ``runtime_s``; rewritten atomically every ``save_every_s``
  seconds, at the end of each method and on an exception or Ctrl-C, so a
  killed run loses at most a few seconds and a rerun skips what is there;
* ``runs.json``: one entry per (dataset, method): root, split, options,
  device, resolution, warm-up count, frames, median runtime;
* ``flow/<dataset>/<method>/<sample id>.flo``: the estimates of the first
  ``save_flows`` samples (for the report's galleries).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flownet2_core.data.datasets import Sample, list_samples, load_sample
from flownet2_core.io import atomic_write_text, write_flo, write_kitti_flow
from flownet2_core.methods import get_method

from .metrics import frame_stats, stats_to_metrics

__all__ = [
    "FRAMES_CSV",
    "RUNS_JSON",
    "device_name",
    "export_submission",
    "load_results",
    "run_benchmark",
]

FRAMES_CSV = "frames.csv"
RUNS_JSON = "runs.json"
_KEY = ["dataset", "method", "sample"]


def _torch_device(method):
    dev = getattr(getattr(method, "runner", None), "device", None)
    return dev if getattr(dev, "type", None) == "cuda" else None


def _sync(dev) -> None:
    if dev is not None:
        import torch
        torch.cuda.synchronize(dev)


def device_name(method=None) -> str:
    """The GPU's name for a method running on CUDA, else the CPU model."""
    dev = _torch_device(method) if method is not None else None
    if dev is not None:
        import torch
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU: {line.split(':', 1)[1].strip()} ({os.cpu_count()} threads)"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()}"


def load_results(out_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """``(frames, runs)`` saved by :func:`run_benchmark` (empty when nothing ran yet)."""
    out = Path(out_dir)
    csv = out / FRAMES_CSV
    frames = pd.read_csv(csv, dtype={"sample": str, "sequence": str}) if csv.is_file() else pd.DataFrame(columns=_KEY)
    runs_path = out / RUNS_JSON
    try:
        runs = json.loads(runs_path.read_text(encoding="utf-8")) if runs_path.is_file() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"{runs_path}: not valid JSON ({e})") from None
    return frames, runs


def run_benchmark(dataset: str, root: str | os.PathLike | None, methods: Sequence[str],
                  out_dir: str | os.PathLike, *, split: str | None = None,
                  method_options: Mapping[str, dict] | None = None, max_frames: int | None = None,
                  warmup: int = 1, save_flows: int = 2, resume: bool = True,
                  save_every_s: float = 2.0,
                  log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Evaluate each method on ``dataset`` (see :data:`~flownet2_core.data.names.BENCHMARK_DATASETS`).

    Args:
        dataset, root, split: what :func:`list_samples` reads (``split`` default:
            ``val`` for chairs, else ``train``; must have ground truth).
        methods: registered method names (``flownet2_core.methods``).
        out_dir: results folder (created); see the module docstring.
        method_options: method name → constructor keywords (weights, device, …).
        max_frames: evaluate the first ``max_frames`` pairs only.
        warmup: untimed calls on the first pair before timing.
        save_flows: keep the estimated flow of the first this many pairs.
        resume: skip (dataset, method, sample) rows already in ``frames.csv``;
            False recomputes them.
        save_every_s: rewrite ``frames.csv`` at most this often (and at the end
            of each method, and when interrupted), so a killed run loses at
            most this much work.

    Returns:
        All rows of ``frames.csv`` for this dataset and these methods.
    """
    split = split or ("val" if dataset == "chairs" else "train")
    samples: list[Sample] = list_samples(dataset, root, split)
    if max_frames is not None:
        samples = samples[:max_frames]
    if samples and samples[0].flow is None and not dataset.startswith("motorcycle"):
        raise ValueError(f"{dataset} {split} has no ground truth; use export_submission for test splits")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames, runs = load_results(out)
    keep_flow = {s.id for s in samples[:max(0, save_flows)]}
    options = dict(method_options or {})
    for name in methods:
        done = set()
        prev = runs.get(f"{dataset}|{name}")
        want_opts = {k: str(v) for k, v in options.get(name, {}).items()}
        if resume and prev is not None and (prev.get("options") != want_opts or prev.get("split") != split):
            raise ValueError(f"{out / RUNS_JSON}: {dataset} / {name} was run with options {prev.get('options')} "
                             f"on split {prev.get('split')}, now {want_opts} on {split}; use another output "
                             "folder or resume=False (--no-resume) to replace those results")
        if resume and len(frames):
            sel = frames[(frames["dataset"] == dataset) & (frames["method"] == name)]
            done = set(sel["sample"].astype(str))
        elif len(frames):
            frames = frames[~((frames["dataset"] == dataset) & (frames["method"] == name))]
        todo = [s for s in samples if s.id not in done]
        if not todo:
            if log:
                log(f"[bench] {dataset} / {name}: {len(samples)} frames already done")
            continue
        method = get_method(name, **options.get(name, {}))
        dev = _torch_device(method)
        pending: list[dict] = []
        last_save = time.monotonic()

        def flush() -> None:
            nonlocal frames, pending, last_save
            if pending:
                new = pd.DataFrame(pending)
                frames = pd.concat([frames, new], ignore_index=True) if len(frames) else new
                atomic_write_text(out / FRAMES_CSV, frames.to_csv(index=False))
                pending = []
            last_save = time.monotonic()

        try:
            for i, s in enumerate(todo):
                fr = load_sample(s)
                if i == 0:
                    for _ in range(max(0, warmup)):
                        method(fr.img1, fr.img2)
                _sync(dev)
                t0 = time.perf_counter()
                flow = method(fr.img1, fr.img2)
                _sync(dev)
                dt = time.perf_counter() - t0
                stats = frame_stats(flow, fr.gt, fr.valid, occluded=fr.occluded, foreground=fr.foreground)
                row = {"dataset": dataset, "method": name, "sample": s.id, "sequence": s.sequence,
                       "height": fr.img1.shape[0], "width": fr.img1.shape[1], "runtime_s": dt}
                row.update(stats_to_metrics(stats))
                row.update(stats)
                pending.append(row)
                if s.id in keep_flow:
                    p = out / "flow" / dataset / name / f"{s.id}.flo"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    write_flo(p, flow)
                if time.monotonic() - last_save >= save_every_s:
                    flush()
        finally:
            flush()  # also on an exception or Ctrl-C: what was computed is kept
        sel = frames[(frames["dataset"] == dataset) & (frames["method"] == name)]
        runs[f"{dataset}|{name}"] = {
            "dataset": dataset, "method": name, "root": None if root is None else os.fspath(root),
            "split": split, "options": want_opts,
            "device": device_name(method), "resolution": [int(sel["height"].iloc[0]), int(sel["width"].iloc[0])],
            "warmup": warmup, "frames": len(sel), "median_runtime_s": float(np.median(sel["runtime_s"])),
        }
        atomic_write_text(out / RUNS_JSON, json.dumps(runs, indent=2, sort_keys=True))
        if log:
            log(f"[bench] {dataset} / {name}: {len(sel)} frames, EPE {np.nanmean(sel['epe_all']):.3f}, "
                f"median {1000 * runs[f'{dataset}|{name}']['median_runtime_s']:.1f} ms")
    return frames[(frames["dataset"] == dataset) & (frames["method"].isin(list(methods)))].reset_index(drop=True)


def export_submission(dataset: str, root: str | os.PathLike, method: str, out_dir: str | os.PathLike,
                      *, options: Mapping | None = None, split: str = "test",
                      log: Callable[[str], None] | None = print) -> Path:
    """Write a method's flow for a test split in the server's layout; returns ``out_dir``.

    * ``sintel-clean`` / ``sintel-final``: ``out_dir/<clean|final>/<scene>/frame_%04d.flo``,
      one file per first frame of a pair (the last frame of a scene has none);
    * ``kitti-2012`` / ``kitti-2015``: ``out_dir/flow/%06d_10.png`` (16-bit KITTI PNG);
      zip the ``flow`` folder for upload.
    """
    if not dataset.startswith(("sintel", "kitti")):
        raise ValueError(f"export is defined for sintel-clean/-final and kitti-2012/-2015, not {dataset!r}")
    samples = list_samples(dataset, root, split)
    m = get_method(method, **dict(options or {}))
    out = Path(out_dir)
    for s in samples:
        fr = load_sample(s)
        flow = m(fr.img1, fr.img2)
        if dataset.startswith("sintel"):
            p = out / dataset.split("-")[1] / s.sequence / f"{s.img1.stem}.flo"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_flo(p, flow)
        else:
            p = out / "flow" / f"{s.id}_10.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_kitti_flow(p, flow)
    if log:
        log(f"[bench] exported {len(samples)} {dataset} {split} flows of {method} to {out}")
    return out
