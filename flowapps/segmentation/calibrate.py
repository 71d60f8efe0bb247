"""Fit the logistic model of the pairwise terms on generated sequences with known objects
(how the defaults of :class:`~flowapps.segmentation.affinities.PairwiseModel` were chosen).

Keuper et al. (ICCV 2015) learn the θ of ``z = max(θ̄·(1, d_motion, d_spatial, d_color),
θ·(1, d_motion))`` by logistic regression on annotated trajectories. This script does the same
on :func:`~flowapps.segmentation.synthetic.make_fbms_like_sequence` scenes (seeds disjoint from
the proofs, which use 0–99): an edge is labelled *cut* when its two trajectories lie on
different objects (majority of the instance masks under their points). The full model is
fitted on all three distances, the motion-only model on d_motion alone, each for a few values
of ``sigma_floor``; the printed table reports the fit and its ranking quality (ROC AUC).

    python -m flowapps.segmentation.calibrate --seeds 1000-1011 --methods exact dis
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm.auto import tqdm

from flownet2_core.methods import get_method

from .affinities import PairwiseModel, neighbour_edges, pairwise_features
from .synthetic import make_fbms_like_sequence
from .trajectories import track_points

__all__ = ["edge_dataset", "fit", "main"]


def _instance_of_tracks(traj, masks) -> np.ndarray:
    pf = traj.point_frames
    h, w = traj.size
    yi = np.clip(np.rint(traj.xy[:, 1]).astype(int), 0, h - 1)
    xi = np.clip(np.rint(traj.xy[:, 0]).astype(int), 0, w - 1)
    inst = masks[pf, yi, xi]
    k = int(masks.max()) + 1
    counts = np.zeros((len(traj), k), np.int64)
    np.add.at(counts, (traj.point_tracks, inst), 1)
    return counts.argmax(1)


def edge_dataset(seeds, methods=("exact", "dis"), num_frames: int = 30, size=(192, 256), sigma_floors=(0.15,),
                 min_length: int = 5, progress: bool = True):
    """Features and cut labels of the neighbour-graph edges of generated sequences.

    Returns:
        ``{sigma_floor: (X (E, 3) [d_motion, d_spatial, d_color], y (E,) bool cut)}``.
    """
    out = {s: ([], []) for s in sigma_floors}
    for seed in tqdm(list(seeds), desc="sequences", disable=not progress):
        seq = make_fbms_like_sequence(seed, num_frames, size)
        for method in methods:
            if method == "exact":
                fw, bw = seq.flow_fw, seq.flow_bw
            else:
                fn = get_method(method)
                fw = fn.batch(seq.frames[:-1], seq.frames[1:])
                bw = fn.batch(seq.frames[1:], seq.frames[:-1])
            traj = track_points(fw, bw, seq.frames, progress=False)
            nodes = np.flatnonzero(traj.lengths >= min_length)
            inst = _instance_of_tracks(traj, seq.masks)[nodes]
            edges = neighbour_edges(traj, nodes)
            y = inst[edges[:, 0]] != inst[edges[:, 1]]
            for s in sigma_floors:
                f = pairwise_features(traj, edges, nodes, PairwiseModel(sigma_floor=s))
                out[s][0].append(f.as_matrix())
                out[s][1].append(y)
    return {s: (np.concatenate(x), np.concatenate(y)) for s, (x, y) in out.items()}


def fit(X: np.ndarray, y: np.ndarray) -> dict:
    """Logistic regressions: full (3 features) and motion-only; coefficients and AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    full = LogisticRegression(C=10.0, max_iter=2000).fit(X, y)
    mot = LogisticRegression(C=10.0, max_iter=2000).fit(X[:, :1], y)
    return {"theta_bar": (float(full.intercept_[0]), *map(float, full.coef_[0])),
            "theta": (float(mot.intercept_[0]), float(mot.coef_[0][0])),
            "auc_full": float(roc_auc_score(y, full.decision_function(X))),
            "auc_motion": float(roc_auc_score(y, X[:, 0])),
            "edges": int(len(y)), "cut_fraction": float(y.mean())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1000-1011", help="range A-B (inclusive) of generator seeds")
    p.add_argument("--methods", nargs="+", default=["exact", "dis"])
    p.add_argument("--sigma-floors", nargs="+", type=float, default=[0.05, 0.1, 0.15, 0.25, 0.5])
    args = p.parse_args(argv)
    a, b = (int(v) for v in args.seeds.split("-"))
    data = edge_dataset(range(a, b + 1), args.methods, sigma_floors=args.sigma_floors)
    for s, (X, y) in data.items():
        r = fit(X, y)
        print(f"sigma_floor={s}: theta_bar={tuple(round(v, 3) for v in r['theta_bar'])} "
              f"theta={tuple(round(v, 3) for v in r['theta'])} AUC full {r['auc_full']:.4f} "
              f"motion {r['auc_motion']:.4f} ({r['edges']} edges, {100 * r['cut_fraction']:.1f}% cut)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
