"""Reliability masks for flow fields (Sundaram, Brox & Keutzer, ECCV 2010).

Two tests used to stop point trajectories:

* :func:`forward_backward_check`: following the forward flow and then the
  backward flow should bring a point back to where it started.
* :func:`motion_boundary_mask`: near motion boundaries the flow is unreliable.

Convention: flow is (H, W, 2) float in pixels, channel 0 = u (x, right),
channel 1 = v (y, down); ``flow_fw`` maps frame t → t+1 and ``flow_bw`` maps
frame t+1 → t. Pixel (x, y) is the centre of column x, row y. Both functions
also take a batch (N, H, W, 2) and then return (N, H, W).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["forward_backward_check", "motion_boundary_mask", "warp_backward_flow"]


def _check_flow(flow, name: str) -> np.ndarray:
    if not isinstance(flow, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(flow).__name__}")
    if flow.ndim not in (3, 4) or flow.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (H, W, 2) or (N, H, W, 2), got {flow.shape}")
    if not (np.issubdtype(flow.dtype, np.floating) or np.issubdtype(flow.dtype, np.integer)):
        raise ValueError(f"{name} must be a real-valued array, got dtype {flow.dtype}")
    return flow


def _check_alphas(**alphas: float) -> None:
    for name, value in alphas.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def warp_backward_flow(flow_fw: np.ndarray, flow_bw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``flow_bw`` at the forward targets ``x + flow_fw(x)``.

    Args:
        flow_fw, flow_bw: (H, W, 2) flows of one frame pair.

    Returns:
        ``(w_b, inside)``: (H, W, 2) float32 backward flow bilinearly
        interpolated at ``x + w_f(x)`` (``cv2.remap``, ``INTER_LINEAR``), and an
        (H, W) bool mask, True where the target is finite and lies inside
        the image rectangle ``-0.5 <= x' <= W-0.5``, ``-0.5 <= y' <= H-0.5``
        (pixel (x, y) covers ``[x-0.5, x+0.5]``; the same rule as the
        ``valid`` masks of :mod:`flownet2_core.data.synthetic`). Within the
        outer half pixel the border values are replicated
        (``BORDER_REPLICATE``); values at outside targets mean nothing.

    Note:
        OpenCV's bilinear remap quantises the sub-pixel weights to 1/32 px,
        which is far below the tolerances of the checks here.
    """
    h, w = flow_fw.shape[:2]
    fw = flow_fw.astype(np.float32, copy=False)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = xs + fw[..., 0]
    map_y = ys + fw[..., 1]
    finite = np.isfinite(map_x) & np.isfinite(map_y)
    inside = (finite & (map_x >= -0.5) & (map_x <= w - 0.5)
              & (map_y >= -0.5) & (map_y <= h - 0.5))
    # Keep non-finite coordinates away from remap.
    map_x = np.where(finite, map_x, -1.0).astype(np.float32)
    map_y = np.where(finite, map_y, -1.0).astype(np.float32)
    bw = np.ascontiguousarray(flow_bw, dtype=np.float32)
    warped = cv2.remap(bw, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return warped, inside


def _fb_single(fw: np.ndarray, bw: np.ndarray, alpha1: float, alpha2: float) -> np.ndarray:
    wb, inside = warp_backward_flow(fw, bw)
    wf = fw.astype(np.float64)
    wb = wb.astype(np.float64)
    lhs = ((wf + wb) ** 2).sum(axis=2)
    rhs = alpha1 * ((wf**2).sum(axis=2) + (wb**2).sum(axis=2)) + alpha2
    with np.errstate(invalid="ignore"):
        consistent = lhs < rhs  # NaN compares False: inconsistent
    return consistent & inside


def forward_backward_check(
    flow_fw: np.ndarray,
    flow_bw: np.ndarray,
    alpha1: float = 0.01,
    alpha2: float = 0.5,
) -> np.ndarray:
    """Forward–backward consistency (Sundaram et al. 2010, eq. 4).

    With ``ŵ_b = flow_bw(x + w_f(x))`` sampled bilinearly, a pixel is
    **inconsistent** when::

        |w_f + ŵ_b|² >= alpha1 * (|w_f|² + |ŵ_b|²) + alpha2

    and also when its target ``x + w_f`` leaves the image (see
    :func:`warp_backward_flow` for "inside") or the flow is not finite
    (a non-finite value in ``flow_bw`` also fails the pixels whose bilinear
    footprint touches it). The
    tolerance grows with the motion (alpha1) because estimates of large
    motions are less accurate.

    Args:
        flow_fw: (H, W, 2) or (N, H, W, 2) forward flow t → t+1, pixels.
        flow_bw: backward flow t+1 → t, same shape.
        alpha1: relative tolerance (paper: 0.01).
        alpha2: absolute tolerance in px² (paper: 0.5).

    Returns:
        bool array (H, W) or (N, H, W), True where consistent (reliable).

    Example:
        >>> fw = np.zeros((4, 6, 2), np.float32); fw[..., 0] = 1
        >>> forward_backward_check(fw, -fw)[0].tolist()
        [True, True, True, True, True, False]
    """
    fw = _check_flow(flow_fw, "flow_fw")
    bw = _check_flow(flow_bw, "flow_bw")
    if fw.shape != bw.shape:
        raise ValueError(f"flow_fw and flow_bw differ in shape: {fw.shape} vs {bw.shape}")
    _check_alphas(alpha1=alpha1, alpha2=alpha2)
    if fw.ndim == 3:
        return _fb_single(fw, bw, alpha1, alpha2)
    out = np.empty(fw.shape[:3], bool)
    for i in range(fw.shape[0]):
        out[i] = _fb_single(fw[i], bw[i], alpha1, alpha2)
    return out


def _mb_single(flow: np.ndarray, alpha1: float, alpha2: float) -> np.ndarray:
    f = flow.astype(np.float64)
    h, w = f.shape[:2]
    grad2 = np.zeros((h, w))
    for c in range(2):
        comp = f[..., c]
        # Central differences inside, one-sided differences on the border
        # rows/columns; a single row or column has no gradient along it.
        if h > 1:
            grad2 += np.gradient(comp, axis=0) ** 2
        if w > 1:
            grad2 += np.gradient(comp, axis=1) ** 2
    rhs = alpha1 * (f**2).sum(axis=2) + alpha2
    with np.errstate(invalid="ignore"):
        return grad2 > rhs


def motion_boundary_mask(
    flow: np.ndarray, alpha1: float = 0.01, alpha2: float = 0.002
) -> np.ndarray:
    """Motion boundaries (Sundaram et al. 2010, eq. 5).

    True where::

        |∇u|² + |∇v|² > alpha1 * |w|² + alpha2

    Gradient stencil: central differences ``(f[i+1] - f[i-1]) / 2`` along x
    and along y at interior pixels, one-sided ``f[1] - f[0]`` /
    ``f[-1] - f[-2]`` on the first/last row and column (``np.gradient``,
    ``edge_order=1``). No pre-smoothing.

    Args:
        flow: (H, W, 2) or (N, H, W, 2) flow, pixels.
        alpha1: relative tolerance (paper: 0.01).
        alpha2: absolute tolerance, (px/px)² (paper: 0.002).

    Returns:
        bool array (H, W) or (N, H, W), True at motion boundaries
        (unreliable). Non-finite flow gives False there; combine with
        :func:`forward_backward_check` to catch it.

    Example:
        >>> f = np.zeros((3, 4, 2), np.float32); f[:, 2:, 0] = 2
        >>> motion_boundary_mask(f)[0].tolist()
        [False, True, True, False]
    """
    flow = _check_flow(flow, "flow")
    _check_alphas(alpha1=alpha1, alpha2=alpha2)
    if flow.ndim == 3:
        return _mb_single(flow, alpha1, alpha2)
    return np.stack([_mb_single(f, alpha1, alpha2) for f in flow]) if len(flow) else np.zeros(
        flow.shape[:3], bool
    )
