"""Benchmark error measures: EPE by region, KITTI Fl, n-px outlier rates, AAE.

Every measure is computed in two steps so that both averaging conventions are
available from the same numbers:

1. :func:`frame_stats` reduces one frame to **sums and counts** per region
   (``n_all``, ``epe_sum_all``, ``fl_sum_all``, …);
2. :func:`stats_to_metrics` turns one frame's sums into means (the per-frame
   row of a report), and :func:`aggregate` combines many frames either
   **per pixel over the dataset** (``average="pixel"``: Σ sums / Σ counts, what
   the Sintel and KITTI servers report) or as the **mean of per-image means**
   (``average="image"``: what several papers and code bases report for KITTI
   EPE, e.g. RAFT's evaluation script).

Regions (each a subset of the valid ground-truth pixels):

=========  ================================================================
``all``    every valid pixel (KITTI ``flow_occ``; Sintel "all")
``noc``    valid and not occluded (KITTI ``flow_noc``; Sintel "matched")
``occ``    valid and occluded (Sintel "unmatched")
``bg``     valid, background (KITTI 2015 ``obj_map == 0``)
``fg``     valid, foreground (KITTI 2015 ``obj_map > 0``)
=========  ================================================================

Measures per region ``r`` (keys of :func:`stats_to_metrics`):

* ``epe_r``: mean end-point error ‖f − f_gt‖₂ in pixels;
* ``fl_r``: KITTI outlier rate in **percent**: EPE > 3 px **and**
  EPE > 5 % of ‖f_gt‖ (strict inequalities, as the KITTI devkit's
  ``F_err > tau(1) & F_err ./ F_mag > tau(2)``; a pixel exactly at 3 px or
  exactly at 5 % is not an outlier);
* ``out1_r``, ``out3_r``, ``out5_r``: percent of pixels with EPE > 1, 3, 5 px;
* ``aae_r``: Middlebury average angular error in **degrees**, the angle between
  the space-time vectors (u, v, 1) and (u_gt, v_gt, 1).

A region without pixels gives NaN (never 0): an all-invalid frame contributes
nothing to a per-pixel average and is skipped by a per-image average.

Convention: flow is (H, W, 2) float, channel 0 = u (right), 1 = v (down);
masks are (H, W) bool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from flownet2_core.metrics import endpoint_error

__all__ = [
    "FL_ABS_THRESH",
    "FL_REL_THRESH",
    "MEASURES",
    "REGIONS",
    "aggregate",
    "angular_error",
    "fl_outliers",
    "frame_metrics",
    "frame_stats",
    "stats_to_metrics",
]

REGIONS = ("all", "noc", "occ", "bg", "fg")
MEASURES = ("epe", "fl", "out1", "out3", "out5", "aae")
FL_ABS_THRESH = 3.0   # px
FL_REL_THRESH = 0.05  # fraction of the ground-truth magnitude
_PERCENT = {"fl", "out1", "out3", "out5"}


def angular_error(flow: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel angular error in degrees between (u, v, 1) and (u_gt, v_gt, 1).

    (..., H, W, 2) ×2 → (..., H, W) float64, values in [0, 90).
    """
    if flow.shape != gt.shape or flow.shape[-1] != 2:
        raise ValueError(f"flow {flow.shape} and ground truth {gt.shape} must both be (..., H, W, 2)")
    f = flow.astype(np.float64)
    g = gt.astype(np.float64)
    num = f[..., 0] * g[..., 0] + f[..., 1] * g[..., 1] + 1.0
    den = np.sqrt((f ** 2).sum(-1) + 1.0) * np.sqrt((g ** 2).sum(-1) + 1.0)
    return np.degrees(np.arccos(np.clip(num / den, -1.0, 1.0)))


def fl_outliers(epe: np.ndarray, gt: np.ndarray, abs_thresh: float = FL_ABS_THRESH,
                rel_thresh: float = FL_REL_THRESH) -> np.ndarray:
    """KITTI outlier map: ``epe > abs_thresh`` and ``epe > rel_thresh · ‖gt‖``.

    ``epe`` (H, W), ``gt`` (H, W, 2) → (H, W) bool. Both inequalities are strict.
    """
    mag = np.sqrt((gt.astype(np.float64) ** 2).sum(-1))
    e = epe.astype(np.float64)
    return (e > abs_thresh) & (e > rel_thresh * mag)


def _mask(name: str, m, shape) -> np.ndarray | None:
    if m is None:
        return None
    m = np.asarray(m, dtype=bool)
    if m.shape != shape:
        raise ValueError(f"{name} mask {m.shape} does not match the flow's (H, W) {shape}")
    return m


def frame_stats(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, *,
                occluded: np.ndarray | None = None,
                foreground: np.ndarray | None = None) -> dict[str, float]:
    """Sums and counts of every measure over every region of one frame.

    Args:
        flow, gt: (H, W, 2) estimated and ground-truth flow. Non-finite values
            in ``gt`` make the pixel invalid.
        valid: (H, W) bool, True where the ground truth is known (None: all).
        occluded: (H, W) bool, True where the pixel is occluded in the second
            frame (None: no ``noc``/``occ`` split; those regions stay empty).
        foreground: (H, W) bool, True on moving objects (None: no ``bg``/``fg``).

    Returns:
        ``{"n_<r>": count, "<measure>_sum_<r>": sum}`` for every region ``r``
        in :data:`REGIONS` and measure in :data:`MEASURES` (outlier sums are
        pixel counts, not percent). Plain floats, ready for CSV/JSON.
    """
    if flow.shape != gt.shape or flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow {flow.shape} and ground truth {gt.shape} must both be (H, W, 2)")
    hw = flow.shape[:2]
    ok = np.isfinite(gt).all(-1)
    v = _mask("valid", valid, hw)
    if v is not None:
        ok &= v
    occ = _mask("occluded", occluded, hw)
    fg = _mask("foreground", foreground, hw)
    gt_clean = np.where(ok[..., None], gt, 0.0)
    flow_clean = np.where(np.isfinite(flow), flow, 1e9)  # a NaN estimate counts as a huge error
    epe = endpoint_error(flow_clean, gt_clean).astype(np.float64)
    per = {
        "epe": epe,
        "fl": fl_outliers(epe, gt_clean),
        "out1": epe > 1.0, "out3": epe > 3.0, "out5": epe > 5.0,
        "aae": angular_error(flow_clean, gt_clean),
    }
    empty = np.zeros(hw, bool)
    regions = {
        "all": ok,
        "noc": ok & ~occ if occ is not None else empty,
        "occ": ok & occ if occ is not None else empty,
        "bg": ok & ~fg if fg is not None else empty,
        "fg": ok & fg if fg is not None else empty,
    }
    out: dict[str, float] = {}
    for r, m in regions.items():
        out[f"n_{r}"] = float(m.sum())
        for k, arr in per.items():
            out[f"{k}_sum_{r}"] = float(arr[m].sum(dtype=np.float64))
    return out


def stats_to_metrics(stats: Mapping[str, float]) -> dict[str, float]:
    """Means from sums: ``{"<measure>_<region>": value}`` (NaN for an empty region).

    Outlier measures (``fl``, ``out1/3/5``) are in percent, ``epe`` in pixels,
    ``aae`` in degrees.
    """
    out = {}
    for r in REGIONS:
        n = stats.get(f"n_{r}", 0.0)
        for k in MEASURES:
            s = stats.get(f"{k}_sum_{r}", 0.0)
            val = s / n if n else math.nan
            out[f"{k}_{r}"] = 100.0 * val if k in _PERCENT else val
    return out


frame_metrics = stats_to_metrics  # the per-frame row of a report


def aggregate(stats: Iterable[Mapping[str, float]], average: str = "pixel") -> dict[str, float]:
    """Combine per-frame :func:`frame_stats` into dataset measures.

    ``average="pixel"``: Σ sums / Σ counts over the dataset (each pixel weighs
    the same; Sintel and KITTI servers). ``average="image"``: mean over frames
    of each frame's mean, frames where the region is empty skipped. NaN when no
    frame has a pixel of the region.
    """
    stats = list(stats)
    if average == "pixel":
        total: dict[str, float] = {}
        for s in stats:
            for k, val in s.items():
                if k.startswith("n_") or "_sum_" in k:
                    total[k] = total.get(k, 0.0) + float(val)
        return stats_to_metrics(total)
    if average == "image":
        rows = [stats_to_metrics(s) for s in stats]
        out = {}
        for r in REGIONS:
            for k in MEASURES:
                key = f"{k}_{r}"
                vals = [row[key] for row in rows if not math.isnan(row[key])]
                out[key] = float(np.mean(vals)) if vals else math.nan
        return out
    raise ValueError(f"average must be 'pixel' or 'image', got {average!r}")
