"""Flow error measures shared by the demo, tests and the benchmarks."""

from __future__ import annotations

import numpy as np

__all__ = ["endpoint_error", "average_epe"]


def endpoint_error(flow: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel end-point error ‖flow − gt‖₂: (..., H, W, 2) ×2 → (..., H, W) float32."""
    if flow.shape != gt.shape or flow.shape[-1] != 2:
        raise ValueError(f"flow {flow.shape} and ground truth {gt.shape} must both be (..., H, W, 2)")
    d = flow.astype(np.float64) - gt.astype(np.float64)
    return np.sqrt((d ** 2).sum(-1)).astype(np.float32)


def average_epe(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean end-point error over ``valid`` pixels (all when None); NaN if none is valid."""
    err = endpoint_error(flow, gt)
    if valid is not None:
        if valid.shape != err.shape:
            raise ValueError(f"valid mask {valid.shape} does not match flow {err.shape}")
        err = err[valid.astype(bool)]
    return float(err.mean()) if err.size else float("nan")
