"""From labelled trajectories to pictures: dense per-frame label maps, colour overlays,
and the reverse (a dense label map as a track file, one single-point track per pixel).

Dense maps assign every pixel of frame t the label of the nearest labelled trajectory point
of frame t (Euclidean distance, ``cv2.distanceTransformWithLabels`` on the rounded points);
a frame without any trajectory gets -1 everywhere. Colours are the official evaluator's
cluster colours (:func:`~flowapps.segmentation.colors.palette`).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree

from .colors import palette
from .fbms import TrackSet
from .trajectories import Trajectories

__all__ = ["dense_label_map", "dense_label_maps", "overlay", "tracks_from_label_maps", "assign_to_nearest"]


def dense_label_map(points: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 map: each pixel gets the label of the nearest of ``points`` (K, 2)
    (x, y); -1 everywhere when there are no points inside the image."""
    h, w = size
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    lab = np.asarray(labels, np.int64)
    xi = np.rint(pts[:, 0]).astype(np.int64)
    yi = np.rint(pts[:, 1]).astype(np.int64)
    ok = (xi >= 0) & (yi >= 0) & (xi < w) & (yi < h) & (lab >= 0)
    if not ok.any():
        return np.full((h, w), -1, np.int32)
    xi, yi, lab = xi[ok], yi[ok], lab[ok]
    seeds = np.ones((h, w), np.uint8)
    seeds[yi, xi] = 0
    seed_label = np.full((h, w), -1, np.int64)
    seed_label[yi, xi] = lab                     # several points on one pixel: the last wins
    _, idx = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, cv2.DIST_MASK_5,
                                             labelType=cv2.DIST_LABEL_PIXEL)
    order = np.flatnonzero(seeds.ravel() == 0)   # label k ↔ k-th zero pixel in raster order
    lut = np.concatenate([[-1], seed_label.ravel()[order]])
    return lut[idx].astype(np.int32)


def dense_label_maps(traj: Trajectories, labels: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """(N, H, W) int32 dense maps for frames 0..N−1 (``labels``: one per track, −1 = none)."""
    n = traj.num_frames if num_frames is None else num_frames
    labels = np.asarray(labels, np.int64)
    out = np.empty((n,) + tuple(traj.size), np.int32)
    for t in range(n):
        idx, pos = traj.at_frame(t)
        out[t] = dense_label_map(pos, labels[idx], traj.size)
    return out


def overlay(frame: np.ndarray, label_map: np.ndarray, *, alpha: float = 0.45,
            points: np.ndarray | None = None, point_labels: np.ndarray | None = None) -> np.ndarray:
    """The frame (H, W, 3) uint8 RGB tinted with the label colours, segment borders in
    white, and optionally the trajectory points (K, 2) as dots in their label's colour."""
    lab = np.asarray(label_map)
    n = int(lab.max()) + 1 if lab.size and lab.max() >= 0 else 1
    pal = palette(max(n, 1)).astype(np.float32)
    col = np.where(lab[..., None] >= 0, pal[np.clip(lab, 0, None)], 0)
    out = frame.astype(np.float32)
    known = lab >= 0
    out[known] = (1 - alpha) * out[known] + alpha * col[known]
    border = np.zeros(lab.shape, bool)
    border[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    border[1:, :] |= lab[1:, :] != lab[:-1, :]
    out[border] = 255
    img = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if points is not None and len(points):
        pl = np.zeros(len(points), np.int64) if point_labels is None else np.asarray(point_labels)
        h, w = lab.shape
        xi = np.rint(points[:, 0]).astype(np.int64)
        yi = np.rint(points[:, 1]).astype(np.int64)
        ok = (xi >= 0) & (yi >= 0) & (xi < w) & (yi < h) & (pl >= 0)
        pc = palette(int(pl.max()) + 1 if len(pl) and pl.max() >= 0 else 1)
        img[yi[ok], xi[ok]] = pc[pl[ok]]
    return img


def tracks_from_label_maps(maps: np.ndarray, frames: list[int] | None = None, sequence_length: int | None = None):
    """Score a dense segmentation: one single-point track per labelled pixel (label ≥ 0).

    Args:
        maps: (N, H, W) int label maps. frames: frame index of each map (default 0..N−1).
        sequence_length: line 1 of the track file (default N).

    Returns:
        :class:`~flowapps.segmentation.fbms.TrackSet`.
    """
    maps = np.asarray(maps)
    frames = list(range(len(maps))) if frames is None else list(frames)
    ys, xs, ls, fs = [], [], [], []
    for f, m in zip(frames, maps):
        y, x = np.nonzero(m >= 0)
        ys.append(y)
        xs.append(x)
        ls.append(m[y, x])
        fs.append(np.full(len(y), f))
    y, x, lab, fr = (np.concatenate(a) for a in (ys, xs, ls, fs))
    return TrackSet(len(maps) if sequence_length is None else sequence_length, lab,
                    np.arange(len(lab) + 1), np.stack([x, y], 1).astype(np.float64), fr)


def assign_to_nearest(traj: Trajectories, labels: np.ndarray) -> np.ndarray:
    """Fill labels −1 with the label of the spatially nearest labelled trajectory, voted
    over the unlabelled track's frames (each frame votes for its nearest labelled point).
    Tracks that never share a frame with a labelled one stay −1."""
    labels = np.asarray(labels, np.int64).copy()
    todo = np.flatnonzero(labels < 0)
    if not len(todo) or (labels >= 0).sum() == 0:
        return labels
    rows, labs = [], []
    for t in range(traj.num_frames):
        idx, pos = traj.at_frame(t)
        lab = labels[idx]
        have = lab >= 0
        need = ~have
        if not have.any() or not need.any():
            continue
        _, j = cKDTree(pos[have]).query(pos[need])
        rows.append(idx[need])
        labs.append(lab[have][j])
    if rows:
        r, lab_votes = np.concatenate(rows), np.concatenate(labs)
        votes = coo_matrix((np.ones(len(r)), (r, lab_votes)), shape=(len(labels), int(labels.max()) + 1)).tocsr()
        voted = np.asarray(votes.sum(1)).ravel() > 0
        best = np.asarray(votes.argmax(1)).ravel()
        fill = todo[voted[todo]]
        labels[fill] = best[fill]
    return labels
