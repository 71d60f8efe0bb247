"""Pairwise terms between trajectories and the multicut costs built from them
(Keuper, Andres & Brox, ICCV 2015, after Ochs, Malik & Brox, TPAMI 2014).

For two trajectories A, B that share the frames ``s … e`` (at least 2):

* **motion distance** ``d_motion = max_t |∂A_t − ∂B_t| / σ_t`` with ``∂A_t = A(t+T) − A(t)``
  the displacement over ``T = min(motion_window, e − s)`` frames and ``σ_t`` the local flow
  variation along the way, ``σ_t = min(Σ_{t'=t}^{t+T−1} v_A(t'), Σ v_B(t')) + T·sigma_floor``
  (``v`` = :func:`~flowapps.segmentation.trajectories.flow_variation` at the track's points;
  the floor is the flow noise one expects, px/frame). Motion differences count less where the
  flow varies anyway (near motion boundaries, on rotating or zooming objects).
* **spatial distance** ``d_spatial``: mean over the common frames of |A(t) − B(t)|, px.
* **colour distance** ``d_color``: mean over the common frames of the CIE Lab distance of the
  colours under A and B.

A logistic model turns them into the probability that the edge is cut::

    z = max(θ̄₀ + θ̄₁·d_motion + θ̄₂·d_spatial + θ̄₃·d_color,  θ₀ + θ₁·d_motion)
    p = 1 / (1 + exp(−z))

(the second term lets a clear motion difference cut an edge whatever the other cues say),
and the multicut edge cost is ``log((1−p)/p) + log((1−β)/β) = −z + log((1−β)/β)`` with
prior β (default 0.5): positive costs join, negative costs cut.

The graph is sparse: in every frame each trajectory is linked to its ``neighbours`` nearest
live trajectories within ``max_distance`` px; the union over frames is the edge set.

Constants (:class:`PairwiseModel` defaults): Keuper et al. fit θ by logistic regression on
annotated trajectories; their published values could not be consulted here, so the defaults
were fitted the same way (scikit-learn logistic regression, then rounded) on generated
sequences that are not used by the proofs (``make_fbms_like_sequence`` seeds 1000–1011,
exact flow and DIS flow), see ``flowapps/segmentation/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from .trajectories import Trajectories

__all__ = ["PairwiseModel", "PairwiseFeatures", "neighbour_edges", "pairwise_features",
           "cut_probability", "multicut_costs", "build_graph"]


@dataclass(frozen=True)
class PairwiseModel:
    """Constants of the pairwise terms (see the module docstring)."""

    motion_window: int = 5            # T, frames (Ochs et al.)
    sigma_floor: float = 0.25         # px/frame
    variation_weight: float = 1.0     # scales the measured flow variation in σ_t
    theta_bar: tuple[float, float, float, float] = (-5.9, 2.4, 0.0, 0.033)
    theta: tuple[float, float] = (-5.9, 2.3)
    prior: float = 0.5                # β
    neighbours: int = 10
    max_distance: float = 40.0        # px
    min_overlap: int = 2              # common frames for an edge

    def __post_init__(self):
        if not 0 < self.prior < 1:
            raise ValueError(f"prior must lie in (0, 1), got {self.prior}")
        if self.motion_window < 1 or self.min_overlap < 2:
            raise ValueError("motion_window must be ≥ 1 and min_overlap ≥ 2")


@dataclass
class PairwiseFeatures:
    """Per edge (E,): motion, spatial and colour distances and the common frame count."""

    d_motion: np.ndarray
    d_spatial: np.ndarray
    d_color: np.ndarray
    overlap: np.ndarray

    def as_matrix(self) -> np.ndarray:
        return np.stack([self.d_motion, self.d_spatial, self.d_color], 1)


def neighbour_edges(traj: Trajectories, nodes: np.ndarray | None = None, *, neighbours: int = 10,
                    max_distance: float = 40.0, min_overlap: int = 2, progress: bool = False) -> np.ndarray:
    """Sparse trajectory graph: per frame, each live node to its ``neighbours`` nearest live
    nodes within ``max_distance`` px; union over frames, pairs sharing ≥ ``min_overlap`` frames.

    Args:
        nodes: track indices that are graph nodes (default all); edges use positions in it.

    Returns:
        (E, 2) int64 node pairs ``u < v`` (indices into ``nodes``).
    """
    nodes = np.arange(len(traj)) if nodes is None else np.asarray(nodes, np.int64)
    start, end = traj.start[nodes], traj.end[nodes]
    keys = []
    m = len(nodes)
    for t in tqdm(range(traj.num_frames), desc="graph", unit="frame", disable=not progress):
        alive = np.flatnonzero((start <= t) & (end >= t))
        if len(alive) < 2:
            continue
        pos = traj.xy[traj.offsets[nodes[alive]] + (t - start[alive])]
        k = min(neighbours + 1, len(alive))
        d, j = cKDTree(pos).query(pos, k, distance_upper_bound=max_distance)
        d, j = d[:, 1:], j[:, 1:]
        ok = np.isfinite(d)
        u = np.repeat(alive, k - 1).reshape(len(alive), k - 1)[ok]
        v = alive[j[ok]]
        a, b = np.minimum(u, v), np.maximum(u, v)
        keys.append(a * m + b)
    if not keys:
        return np.zeros((0, 2), np.int64)
    k = np.unique(np.concatenate(keys))
    e = np.stack([k // m, k % m], 1)
    ov = np.minimum(end[e[:, 0]], end[e[:, 1]]) - np.maximum(start[e[:, 0]], start[e[:, 1]]) + 1
    return e[ov >= min_overlap]


def pairwise_features(traj: Trajectories, edges: np.ndarray, nodes: np.ndarray | None = None,
                      model: PairwiseModel = PairwiseModel(), *, chunk: int = 2048) -> PairwiseFeatures:
    """The three distances of every edge (vectorised over chunks of edges).

    Args:
        traj: trajectories with ``variation`` (and ``colors``; colour distance 0 without).
        edges: (E, 2) pairs of indices into ``nodes`` (default: track indices).
    """
    nodes = np.arange(len(traj)) if nodes is None else np.asarray(nodes, np.int64)
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    a_all, b_all = nodes[e[:, 0]], nodes[e[:, 1]]
    s = np.maximum(traj.start[a_all], traj.start[b_all])
    t_end = np.minimum(traj.end[a_all], traj.end[b_all])
    overlap = t_end - s + 1
    if (overlap < 2).any():
        raise ValueError("every edge must join trajectories that share at least 2 frames")
    dm = np.zeros(len(e), np.float64)
    ds = np.zeros(len(e), np.float64)
    dc = np.zeros(len(e), np.float64)
    order = np.argsort(s, kind="stable")
    var = traj.variation if traj.variation is not None else np.zeros(len(traj.xy), np.float32)
    var = var * np.float32(model.variation_weight)
    for c0 in range(0, len(e), chunk):
        idx = order[c0:c0 + chunk]
        a, b = a_all[idx], b_all[idx]
        w0, w1 = int(s[idx].min()), int(t_end[idx].max()) + 1
        D = traj.gather(a, w0, w1) - traj.gather(b, w0, w1)          # (K, L, 2), NaN off-span
        dist = np.sqrt((D ** 2).sum(-1))
        ds[idx] = np.nanmean(dist, axis=1)
        if traj.colors is not None:
            C = traj.gather(a, w0, w1, traj.colors) - traj.gather(b, w0, w1, traj.colors)
            dc[idx] = np.nanmean(np.sqrt((C ** 2).sum(-1)), axis=1)
        VA = np.nan_to_num(traj.gather(a, w0, w1, var), nan=0.0)
        VB = np.nan_to_num(traj.gather(b, w0, w1, var), nan=0.0)
        CA = np.concatenate([np.zeros((len(a), 1), np.float32), np.cumsum(VA, 1)], 1)
        CB = np.concatenate([np.zeros((len(a), 1), np.float32), np.cumsum(VB, 1)], 1)
        T_e = np.minimum(model.motion_window, overlap[idx] - 1)
        for T in np.unique(T_e):
            r = np.flatnonzero(T_e == T)
            delta = D[r, T:] - D[r, :-T]                                  # (K_r, L−T, 2)
            sig = np.minimum(CA[r, T:-1] - CA[r, :-T - 1], CB[r, T:-1] - CB[r, :-T - 1])
            sig = sig + T * model.sigma_floor
            ratio = np.sqrt((delta ** 2).sum(-1)) / sig
            dm[idx[r]] = np.nanmax(ratio, axis=1)
    return PairwiseFeatures(dm, ds, dc, overlap)


def cut_probability(f: PairwiseFeatures, model: PairwiseModel = PairwiseModel()) -> np.ndarray:
    """p(cut) per edge from the logistic model; returns (E,) float64 in (0, 1)."""
    return 1.0 / (1.0 + np.exp(-_logit(f, model)))


def _logit(f: PairwiseFeatures, model: PairwiseModel) -> np.ndarray:
    tb, th = model.theta_bar, model.theta
    z1 = tb[0] + tb[1] * f.d_motion + tb[2] * f.d_spatial + tb[3] * f.d_color
    z2 = th[0] + th[1] * f.d_motion
    return np.maximum(z1, z2)


def multicut_costs(p: np.ndarray, prior: float = 0.5, clip: float = 1e-6) -> np.ndarray:
    """Edge costs ``log((1−p)/p) + log((1−β)/β)`` (positive = join), p clipped to
    ``[clip, 1−clip]`` so costs stay finite."""
    p = np.clip(np.asarray(p, np.float64), clip, 1 - clip)
    return np.log((1 - p) / p) + np.log((1 - prior) / prior)


def build_graph(traj: Trajectories, nodes: np.ndarray | None = None, model: PairwiseModel = PairwiseModel(),
                *, progress: bool = False) -> tuple[np.ndarray, np.ndarray, PairwiseFeatures]:
    """Edges, multicut costs and features for the trajectories ``nodes`` (default all).

    Returns:
        ``(edges (E, 2) into nodes, costs (E,), features)``.
    """
    edges = neighbour_edges(traj, nodes, neighbours=model.neighbours, max_distance=model.max_distance,
                            min_overlap=model.min_overlap, progress=progress)
    feats = pairwise_features(traj, edges, nodes, model)
    z = _logit(feats, model)
    costs = -z + np.log((1 - model.prior) / model.prior)
    return edges, costs, feats
