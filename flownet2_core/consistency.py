"""Reliability tests for flow fields (Sundaram, Brox & Keutzer, ECCV 2010), dense and at points.

Two tests used to stop point trajectories:

* :func:`forward_backward_check`: following the forward flow and then the
  backward flow should bring a point back to where it started.
* :func:`motion_boundary_mask`: near motion boundaries the flow is unreliable.

Their pieces serve point trackers too (:mod:`flowapps.segmentation.trajectories`):
:func:`sample_bilinear` samples a field at sub-pixel points, :func:`fb_consistent` is the
forward–backward criterion on given vectors, :func:`inside_image` the image rectangle, and
:func:`motion_boundary_at` evaluates the motion-boundary test at chosen pixels only.

Convention: flow is (H, W, 2) float in pixels, channel 0 = u (x, right),
channel 1 = v (y, down); ``flow_fw`` maps frame t → t+1 and ``flow_bw`` maps
frame t+1 → t. Pixel (x, y) is the centre of column x, row y and covers
``[x-0.5, x+0.5] × [y-0.5, y+0.5]``; points are (x, y). The dense checks
also take a batch (N, H, W, 2) and then return (N, H, W).
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward_backward_check", "motion_boundary_mask", "motion_boundary_at", "warp_backward_flow",
           "sample_bilinear", "fb_consistent", "inside_image"]


def sample_bilinear(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample an (H, W) or (H, W, C) array at points ``xy`` (..., 2) bilinearly.

    Exact bilinear weights (in float32); outside the image the border values are
    replicated (the coordinates are clamped to ``[0, W-1] × [0, H-1]``). A non-finite
    value in the field spreads to every sample whose 2×2 footprint touches it
    (``0 · inf = nan``); coordinates must be finite.

    Returns:
        (...) or (..., C) float32.

    Example:
        >>> f = np.array([[0.0, 10.0], [20.0, 30.0]])
        >>> sample_bilinear(f, np.array([[0.5, 0.5], [-1.0, 3.0]])).tolist()
        [15.0, 20.0]
    """
    pts = np.asarray(xy).reshape(-1, 2)
    h, w = field.shape[:2]
    x = np.clip(pts[:, 0].astype(np.float32), 0, w - 1)
    y = np.clip(pts[:, 1].astype(np.float32), 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    ax = x - x0
    ay = y - y0
    if field.ndim == 3:
        ax, ay = ax[:, None], ay[:, None]
    f = field
    with np.errstate(invalid="ignore", over="ignore"):   # non-finite fields: documented above
        top = f[y0, x0] * (1 - ax) + f[y0, x1] * ax
        bot = f[y1, x0] * (1 - ax) + f[y1, x1] * ax
        out = (top * (1 - ay) + bot * ay).astype(np.float32)
    return out.reshape(np.shape(xy)[:-1] + field.shape[2:])


def inside_image(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """True where points ``xy`` (..., 2) are finite and lie in the image rectangle
    ``-0.5 <= x <= W-0.5``, ``-0.5 <= y <= H-0.5`` of an image of ``size`` (H, W)
    (the same rule as the ``valid`` masks of :mod:`flownet2_core.data.synthetic`)."""
    h, w = size
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)


def fb_consistent(wf: np.ndarray, wb: np.ndarray, alpha1: float = 0.01, alpha2: float = 0.5) -> np.ndarray:
    """The forward–backward criterion (Sundaram et al. 2010, eq. 4) on vectors (..., 2):
    True where ``|wf + wb|² < alpha1 (|wf|² + |wb|²) + alpha2``, False where a value is not
    finite. ``wb`` is the backward flow at the forward target ``x + wf``. Computed in the
    precision of the inputs."""
    _check_alphas(alpha1=alpha1, alpha2=alpha2)
    with np.errstate(invalid="ignore", over="ignore"):
        lhs = ((wf + wb) ** 2).sum(-1)
        rhs = alpha1 * ((wf ** 2).sum(-1) + (wb ** 2).sum(-1)) + alpha2
        return lhs < rhs  # NaN compares False: inconsistent


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
        interpolated at ``x + w_f(x)`` (:func:`sample_bilinear`), and an
        (H, W) bool mask, True where the target is finite and lies inside
        the image rectangle (:func:`inside_image`). Within the outer half pixel
        the border values are replicated; values at outside targets mean nothing.
    """
    h, w = flow_fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    target = np.stack([xs, ys], -1) + flow_fw.astype(np.float32, copy=False)
    inside = inside_image(target, (h, w))
    target[~np.isfinite(target).all(-1)] = -1.0  # keep non-finite coordinates away from sampling
    return sample_bilinear(np.asarray(flow_bw, np.float32), target), inside


def _fb_single(fw: np.ndarray, bw: np.ndarray, alpha1: float, alpha2: float) -> np.ndarray:
    wb, inside = warp_backward_flow(fw, bw)
    return fb_consistent(fw.astype(np.float64), wb.astype(np.float64), alpha1, alpha2) & inside


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
    # Central differences inside, one-sided differences on the border rows/columns;
    # a single row or column has no gradient along it.
    gy2 = (np.gradient(f, axis=0) ** 2).sum(2) if h > 1 else 0.0
    gx2 = (np.gradient(f, axis=1) ** 2).sum(2) if w > 1 else 0.0
    grad2 = np.broadcast_to(gy2 + gx2, (h, w))
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


def motion_boundary_at(flow: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                       alpha1: float = 0.01, alpha2: float = 0.002) -> np.ndarray:
    """:func:`motion_boundary_mask` of an (H, W, 2) flow evaluated only at the pixels
    ``(rows[k], cols[k])`` (integer arrays, inside the image): the same stencil and the same
    float64 arithmetic, so ``motion_boundary_at(f, i, j) == motion_boundary_mask(f)[i, j]``
    exactly, at a cost proportional to the number of pixels asked for (a tracker's few
    thousand points instead of the whole frame).

    Returns:
        bool array of the shape of ``rows``, True at motion boundaries.
    """
    flow = _check_flow(flow, "flow")
    if flow.ndim != 3:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    _check_alphas(alpha1=alpha1, alpha2=alpha2)
    i, j = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    h, w = flow.shape[:2]

    def grad2(c, n, at):
        # (f[c+1] - f[c-1]) / 2 inside, one-sided on the border, zero along a single row/column.
        if n < 2:
            return 0.0
        lo, hi = np.clip(c - 1, 0, n - 1), np.clip(c + 1, 0, n - 1)
        d = (at(hi).astype(np.float64) - at(lo)) / (hi - lo).astype(np.float64)[..., None]
        return (d ** 2).sum(-1)

    g = grad2(i, h, lambda r: flow[r, j]) + grad2(j, w, lambda c: flow[i, c])
    w0 = flow[i, j].astype(np.float64)
    with np.errstate(invalid="ignore"):
        return g > alpha1 * (w0 ** 2).sum(-1) + alpha2
