"""Long-term point trajectories from dense optical flow (Sundaram, Brox & Keutzer, ECCV 2010).

:func:`track_points` follows points from frame to frame with the forward flow and stops them
where the flow is unreliable; :class:`FlowStore` computes the forward and backward flow of every
frame pair once with any registered method (in batches, ``method.batch``) and caches it as
``.flo`` files.

Per frame t (all live tracks at once, NumPy, no per-point Python loop):

1. **Seeding**: grid points of step ``sampling`` (offset ``sampling // 2``) get a new track
   when no live track lies within ``sampling`` px (distance transform of the rounded live
   positions) and the image is textured there: the smaller eigenvalue λ₂ of the structure
   tensor ``G_ρ * (∇I ∇Iᵀ)`` of the grey image (0..255, ρ = 1.5 px) must reach
   ``texture_threshold`` times its mean over the frame, and 0.01 (grey levels² / px²) at least
   (``texture_threshold=0`` disables the test). The threshold is relative so that it means
   the same on sharp and on soft footage. No seeds on the last frame.
2. **Advection**: ``x_{t+1} = x_t + w_f(x_t)``, ``w_f`` sampled bilinearly
   (:func:`flownet2_core.consistency.sample_bilinear`).
3. **Termination** (the track ends at frame t) when
   * the forward–backward check fails:
     ``|w_f + ŵ_b|² ≥ α₁(|w_f|² + |ŵ_b|²) + α₂`` with ``ŵ_b = w_b(x_t + w_f)`` bilinear,
     α₁ = 0.01, α₂ = 0.5 (:func:`flownet2_core.consistency.fb_consistent`, in float32);
   * x_t lies on a motion boundary: ``|∇u|² + |∇v|² > β₁|w_f|² + β₂`` (β₁ = 0.01,
     β₂ = 0.002) at the nearest pixel
     (:func:`flownet2_core.consistency.motion_boundary_at`, the stencil of
     :func:`~flownet2_core.consistency.motion_boundary_mask`);
   * ``x_{t+1}`` leaves the image (outside ``[-0.5, W-0.5] × [-0.5, H-0.5]``,
     :func:`flownet2_core.consistency.inside_image`) or the flow is not finite.

Convention: points are (x, y) in pixels, x right, y down, pixel (x, y) at the centre of
column x, row y. ``flow_fw[t]`` maps frame t → t+1, ``flow_bw[t]`` maps frame t+1 → t.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from flownet2_core.consistency import fb_consistent, inside_image, motion_boundary_at, sample_bilinear
from flownet2_core.io import atomic_write_bytes, read_flo, read_image, write_flo
from flownet2_core.methods import get_method

from ._util import PathLike
from .fbms import TrackSet

__all__ = ["Trajectories", "FlowStore", "track_points", "save_trajectories", "load_trajectories",
           "structure_tensor_min_eig", "flow_variation"]


# --------------------------------------------------------------------------
# Image and flow measures
# --------------------------------------------------------------------------
def structure_tensor_min_eig(gray: np.ndarray, rho: float = 1.5) -> np.ndarray:
    """Smaller eigenvalue of the structure tensor ``G_ρ * (∇I ∇Iᵀ)`` of an (H, W) image
    (central-difference gradients), (H, W) float32, in (intensity / px)²."""
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    a = cv2.GaussianBlur(gx * gx, (0, 0), rho)
    b = cv2.GaussianBlur(gx * gy, (0, 0), rho)
    c = cv2.GaussianBlur(gy * gy, (0, 0), rho)
    return 0.5 * (a + c) - np.sqrt(0.25 * (a - c) ** 2 + b * b)


def flow_variation(flow: np.ndarray, rho: float = 2.0) -> np.ndarray:
    """Local variation of a flow field: the standard deviation of the flow vectors in a
    Gaussian window of scale ``rho`` px, ``sqrt(G_ρ*|w|² − |G_ρ*w|²)``, (H, W) float32 px."""
    f = np.nan_to_num(flow.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    m = cv2.GaussianBlur(f, (0, 0), rho)
    m2 = cv2.GaussianBlur((f * f).sum(-1), (0, 0), rho)
    return np.sqrt(np.maximum(m2 - (m * m).sum(-1), 0))


# --------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------
@dataclass
class Trajectories:
    """Point tracks stored packed: track m's points are rows ``offsets[m]:offsets[m+1]`` of
    ``xy``, on frames ``start[m], start[m]+1, …`` (consecutive).

    Attributes:
        xy: (P, 2) float32 positions (x, y), px.
        offsets: (M+1,) int64.
        start: (M,) int64 first frame of each track.
        num_frames: frames of the sequence; size: (H, W).
        colors: (P, 3) float32 CIE Lab colour at each point (L 0..100), or None.
        variation: (P,) float32 local flow variation (:func:`flow_variation`) of the flow
            leaving each point (the backward flow's on the last frame), or None.
    """

    xy: np.ndarray
    offsets: np.ndarray
    start: np.ndarray
    num_frames: int
    size: tuple[int, int]
    colors: np.ndarray | None = None
    variation: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        """(M,) number of frames of each track."""
        return np.diff(self.offsets)

    @property
    def end(self) -> np.ndarray:
        """(M,) last frame of each track (inclusive)."""
        return self.start + self.lengths - 1

    @property
    def point_frames(self) -> np.ndarray:
        """(P,) frame of each point."""
        m = np.repeat(np.arange(len(self)), self.lengths)
        return self.start[m] + (np.arange(len(self.xy)) - self.offsets[m])

    @property
    def point_tracks(self) -> np.ndarray:
        """(P,) track index of each point."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def subset(self, keep: np.ndarray) -> "Trajectories":
        """The tracks selected by a bool mask or index array, in order."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, np.int64)
        lens = self.lengths[idx]
        rows = np.repeat(self.offsets[:-1][idx], lens) + (
            np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
        return Trajectories(self.xy[rows], np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                            self.start[idx].copy(), self.num_frames, self.size,
                            None if self.colors is None else self.colors[rows],
                            None if self.variation is None else self.variation[rows])

    def at_frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Tracks alive at frame t: ``(track indices (K,), positions (K, 2))``."""
        alive = np.flatnonzero((self.start <= t) & (self.end >= t))
        return alive, self.xy[self.offsets[alive] + (t - self.start[alive])]

    def gather(self, tracks: np.ndarray, t0: int, t1: int, values: np.ndarray | None = None,
               fill=np.nan) -> np.ndarray:
        """Dense (K, t1−t0, ...) array of ``values`` (default ``xy``) of the given tracks on
        frames ``t0 … t1−1``, ``fill`` where a track does not exist."""
        vals = self.xy if values is None else values
        tracks = np.asarray(tracks, np.int64)
        t = np.arange(t0, t1)
        rel = t[None, :] - self.start[tracks][:, None]
        ok = (rel >= 0) & (rel < self.lengths[tracks][:, None])
        rows = self.offsets[tracks][:, None] + np.clip(rel, 0, None)
        rows = np.where(ok, rows, 0)
        out = vals[rows].astype(np.float32) if len(vals) else np.zeros(rows.shape + vals.shape[1:], np.float32)
        out[~ok] = fill
        return out

    def to_trackset(self, labels: np.ndarray, sequence_length: int | None = None):
        """A :class:`~flowapps.segmentation.fbms.TrackSet` with one label per track."""
        return TrackSet(self.num_frames if sequence_length is None else sequence_length,
                        np.asarray(labels, np.int64), self.offsets.copy(), self.xy.astype(np.float64),
                        self.point_frames)

    def truncate(self, num_frames: int) -> "Trajectories":
        """The tracks restricted to frames ``0 … num_frames−1`` (tracks starting later dropped)."""
        keep = self.start < num_frames
        sub = self.subset(keep)
        lens = np.minimum(sub.lengths, num_frames - sub.start)
        rows = np.repeat(sub.offsets[:-1], lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
        return Trajectories(sub.xy[rows], np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), sub.start,
                            num_frames, sub.size, None if sub.colors is None else sub.colors[rows],
                            None if sub.variation is None else sub.variation[rows])


# --------------------------------------------------------------------------
# Flow: computed once, cached as .flo
# --------------------------------------------------------------------------
class FlowStore:
    """Forward and backward flow of a frame sequence, cached as ``.flo`` files named after
    the frame the flow leaves (as every flow file of the toolkit is)::

        cache_dir/forward_<stem of frame t>.flo     frame t → t+1
        cache_dir/backward_<stem of frame t+1>.flo  frame t+1 → t

    ``frames`` gives the frames' names (paths or stems), or their count for unnamed frames,
    which are then numbered from 1 as in the rawframes layout (``forward_00001.flo``).
    ``store.forward[t]`` / ``store.backward[t]`` read them lazily (frame t → t+1 and
    t+1 → t). :meth:`compute` fills in missing files with a flow method; the method
    ``"exact"`` means the files must already be there (written by
    :func:`~flowapps.segmentation.synthetic.write_fbms_sequence` for generated sequences).
    """

    def __init__(self, cache_dir: PathLike, frames: int | Sequence[PathLike]):
        self.dir = Path(cache_dir)
        if isinstance(frames, (int, np.integer)):
            self.stems = [f"{t + 1:05d}" for t in range(int(frames))]
        else:
            self.stems = [Path(f).stem for f in frames]
            if len(set(self.stems)) != len(self.stems):
                raise ValueError(f"{self.dir}: frame names repeat, so their flow files would collide")
        self.num_frames = len(self.stems)
        self.forward = _FlowList(self, "forward", 0)
        self.backward = _FlowList(self, "backward", 1)

    def path(self, direction: str, t: int) -> Path:
        """File of the flow leaving frame ``t`` (forward: t → t+1; backward: t → t−1)."""
        return self.dir / f"{direction}_{self.stems[t]}.flo"

    def missing(self) -> list[tuple[str, int]]:
        out = []
        for t in range(self.num_frames - 1):
            if not self.path("forward", t).is_file():
                out.append(("forward", t))
            if not self.path("backward", t + 1).is_file():
                out.append(("backward", t + 1))
        return out

    def compute(self, frames: Sequence[np.ndarray] | Sequence[PathLike], method: str, *,
                progress: bool = True, pairs_per_batch: int = 8, **options) -> "FlowStore":
        """Compute the missing flows of ``frames`` (arrays or image paths) with ``method``
        (:func:`flownet2_core.methods.get_method` name and options) and cache them;
        ``pairs_per_batch`` frame pairs go to each ``method.batch`` call (a network
        method splits them into its own batches)."""
        if pairs_per_batch < 1:
            raise ValueError(f"pairs_per_batch must be at least 1, got {pairs_per_batch}")
        todo = self.missing()
        if not todo:
            return self
        if method == "exact":
            raise FileNotFoundError(f"{self.path(*todo[0])}: exact flow not found (only generated "
                                    f"sequences carry it; choose a flow method)")
        fn = get_method(method, **options)
        self.dir.mkdir(parents=True, exist_ok=True)
        loaded: dict[int, np.ndarray] = {}
        with tqdm(total=len(todo), desc=f"flow ({method})", unit="field", disable=not progress) as bar:
            for s in range(0, len(todo), pairs_per_batch):
                chunk = todo[s:s + pairs_per_batch]
                pairs = [(t, t + 1) if direction == "forward" else (t, t - 1) for direction, t in chunk]
                # Frames of this chunk; the previous chunk's are reused, older ones dropped.
                loaded = {t: loaded[t] if t in loaded else _load(frames[t]) for t in sorted({*sum(pairs, ())})}
                flows = fn.batch(np.stack([loaded[a] for a, _ in pairs]), np.stack([loaded[b] for _, b in pairs]))
                for (direction, t), flow in zip(chunk, flows):
                    write_flo(self.path(direction, t), flow)
                bar.update(len(chunk))
        return self


class _FlowList:
    def __init__(self, store: FlowStore, direction: str, shift: int):
        self.store, self.direction, self.shift = store, direction, shift

    def __len__(self) -> int:
        return self.store.num_frames - 1

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < len(self):
            raise IndexError(t)
        return read_flo(self.store.path(self.direction, t + self.shift))


# --------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------
def _to_lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _load(x):
    return read_image(x) if isinstance(x, (str, os.PathLike)) else np.asarray(x)


def track_points(flow_fw: Sequence[np.ndarray], flow_bw: Sequence[np.ndarray],
                 frames: Sequence[np.ndarray] | Sequence[PathLike] | None = None, *,
                 sampling: int = 8, texture_threshold: float = 0.125,
                 fb_alpha1: float = 0.01, fb_alpha2: float = 0.5,
                 mb_alpha1: float = 0.01, mb_alpha2: float = 0.002,
                 variation_rho: float = 2.0, num_frames: int | None = None,
                 progress: bool = True) -> Trajectories:
    """Track points through a sequence (rules in the module docstring).

    Args:
        flow_fw: N−1 forward flows (H, W, 2) float32 (any indexable: an array, a list, or
            :attr:`FlowStore.forward`, which reads lazily).
        flow_bw: N−1 backward flows, ``flow_bw[t]`` maps frame t+1 → t.
        frames: N frames (H, W, 3) uint8 RGB, or their paths: needed for the texture test
            and the colours (``None`` skips both).
        sampling: grid step in px (FBMS default 8; 1, 2, 4 are denser).
        texture_threshold: smallest structure-tensor eigenvalue for a seed, relative to its
            mean over the frame (0 = off).
        fb_alpha1, fb_alpha2, mb_alpha1, mb_alpha2: the termination tolerances.
        variation_rho: window of the local flow variation stored per point.
        num_frames: use only the first frames (default all N).

    Returns:
        :class:`Trajectories` with ``colors`` (when frames are given) and ``variation``.
    """
    if sampling < 1:
        raise ValueError(f"sampling must be a positive integer, got {sampling}")
    n = len(flow_fw) + 1 if num_frames is None else int(num_frames)
    if n < 2 or n - 1 > len(flow_fw) or n - 1 > len(flow_bw):
        raise ValueError(f"need at least 2 frames and N−1 forward and backward flows; got "
                         f"{len(flow_fw)} forward, {len(flow_bw)} backward for {n} frames")
    if frames is not None and len(frames) < n:
        raise ValueError(f"{len(frames)} frames for {n} flow frames")
    fw0 = np.asarray(flow_fw[0])
    h, w = fw0.shape[:2]
    gy, gx = np.mgrid[sampling // 2:h:sampling, sampling // 2:w:sampling]
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    ids = np.zeros(0, np.int64)
    pos = np.zeros((0, 2), np.float32)
    next_id = 0
    rec_ids, rec_pos, rec_col, rec_var = [], [], [], []
    starts: list[np.ndarray] = []
    fw_next = fw0
    for t in tqdm(range(n), desc="tracking", unit="frame", disable=not progress):
        img = _load(frames[t]) if frames is not None else None
        if img is not None and img.shape[:2] != (h, w):
            raise ValueError(f"frame {t} is {img.shape[1]}×{img.shape[0]}, the flow {w}×{h}")
        # 1. Seed where no live track is near and the image is textured.
        if t < n - 1:
            if len(pos):
                occ = np.ones((h, w), np.uint8)
                ri = np.clip(np.rint(pos[:, 1]).astype(np.int64), 0, h - 1)
                ci = np.clip(np.rint(pos[:, 0]).astype(np.int64), 0, w - 1)
                occ[ri, ci] = 0
                dist = cv2.distanceTransform(occ, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
                free = dist[grid[:, 1].astype(np.int64), grid[:, 0].astype(np.int64)] >= sampling
            else:
                free = np.ones(len(grid), bool)
            if img is not None and texture_threshold > 0 and free.any():
                gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
                eig = structure_tensor_min_eig(gray)
                need = max(texture_threshold * float(eig.mean()), 0.01)
                free &= eig[grid[:, 1].astype(np.int64), grid[:, 0].astype(np.int64)] >= need
            new = grid[free]
            if len(new):
                new_ids = np.arange(next_id, next_id + len(new))
                next_id += len(new)
                starts.append(np.full(len(new), t, np.int64))
                ids = np.concatenate([ids, new_ids])
                pos = np.concatenate([pos, new])
        # Record the live points of frame t.
        rec_ids.append(ids)
        rec_pos.append(pos)
        if img is not None:
            rec_col.append(sample_bilinear(_to_lab(img), pos) if len(pos) else np.zeros((0, 3), np.float32))
        if t == n - 1:
            bw_last = np.asarray(flow_bw[n - 2], np.float32)
            rec_var.append(sample_bilinear(flow_variation(bw_last, variation_rho), pos) if len(pos)
                           else np.zeros(0, np.float32))
            break
        fw = fw_next
        rec_var.append(sample_bilinear(flow_variation(fw, variation_rho), pos) if len(pos)
                       else np.zeros(0, np.float32))
        if not len(pos):
            fw_next = np.asarray(flow_fw[t + 1], np.float32) if t + 1 < n - 1 else None
            continue
        bw = np.asarray(flow_bw[t], np.float32)
        # 2. Advect.
        wf = sample_bilinear(fw, pos)
        with np.errstate(invalid="ignore", over="ignore"):
            nxt = pos + wf
        # 3. Terminate (a non-finite target is outside the image).
        wb = sample_bilinear(bw, np.where(np.isfinite(nxt), nxt, 0))
        ri = np.clip(np.rint(pos[:, 1]).astype(np.int64), 0, h - 1)
        ci = np.clip(np.rint(pos[:, 0]).astype(np.int64), 0, w - 1)
        mb = motion_boundary_at(fw, ri, ci, mb_alpha1, mb_alpha2)
        keep = fb_consistent(wf, wb, fb_alpha1, fb_alpha2) & inside_image(nxt, (h, w)) & ~mb
        ids, pos = ids[keep], nxt[keep]
        fw_next = np.asarray(flow_fw[t + 1], np.float32) if t + 1 < n - 1 else None

    all_ids = np.concatenate(rec_ids)
    order = np.argsort(all_ids, kind="stable")        # by track, frames stay in order
    counts = np.bincount(all_ids, minlength=next_id)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    xy = np.concatenate(rec_pos)[order].astype(np.float32)
    colors = np.concatenate(rec_col)[order] if frames is not None else None
    variation = np.concatenate(rec_var)[order].astype(np.float32)
    return Trajectories(xy, offsets, start, n, (h, w), colors, variation)


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------
def save_trajectories(path: PathLike, traj: Trajectories, **meta) -> None:
    """Write trajectories (and string metadata such as the sequence folder) to ``.npz``,
    atomically."""
    arrays = dict(xy=traj.xy, offsets=traj.offsets, start=traj.start,
                  num_frames=np.int64(traj.num_frames), size=np.array(traj.size, np.int64),
                  meta=np.array(json.dumps(meta)))
    if traj.colors is not None:
        arrays["colors"] = traj.colors
    if traj.variation is not None:
        arrays["variation"] = traj.variation
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_trajectories(path: PathLike) -> tuple[Trajectories, dict]:
    """Read what :func:`save_trajectories` wrote: ``(trajectories, metadata)``."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p}: trajectory file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            traj = Trajectories(z["xy"], z["offsets"], z["start"], int(z["num_frames"]), tuple(int(v) for v in z["size"]),
                                z["colors"] if "colors" in z else None, z["variation"] if "variation" in z else None)
            meta = json.loads(str(z["meta"]))
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{p}: not a trajectory file written by `flownet2 segment track` ({exc})") from None
    return traj, meta
