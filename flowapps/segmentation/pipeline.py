"""The whole motion segmentation of one sequence: flow → trajectories → graph → multicut (or
spectral clustering) → track file, dense label maps, overlays, evaluation.

Every step is a plain function; :func:`segment_sequence` chains them and writes::

    out_dir/flow/<method>/forward_<frame>.flo … flow cache, named after the frame it leaves
                                                (``exact``: read from the sequence)
    out_dir/trajectories.npz                    the trajectories (for ``segment cluster``)
    out_dir/Tracks<N>.dat                       FBMS track file with the cluster labels
    out_dir/labels/<frame>.png …                dense label maps, named after their frame
                                                (a visualisation; results score the sparse
                                                trajectory labels of Tracks<N>.dat); 8-bit, 255 = no label;
                                                16-bit when there are more than 254 clusters)
    out_dir/overlays/<frame>.jpg …              colour overlays with the trajectory points
    out_dir/Tracks<N>Numbers.txt                the official evaluator's report (with GT)
    out_dir/evaluation.json                     the same numbers, machine-readable (with GT)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from tqdm.auto import tqdm

from flownet2_core.io import atomic_write_bytes, atomic_write_text, read_image, write_image
from flownet2_core.methods import DEFAULT_METHOD

from ._util import PathLike
from .affinities import PairwiseModel, build_graph, cut_probability
from .fbms import FBMSSequence, read_sequence, write_tracks
from .labels import assign_to_nearest, dense_label_maps, overlay
from .moseg_eval import EVALUATION_LENGTHS, ShotEvaluation, evaluate_shot, numbers_path
from .multicut import solve_multicut
from .spectral import spectral_clustering
from .trajectories import FlowStore, Trajectories, save_trajectories, track_points

__all__ = ["SegmentationOptions", "SegmentationResult", "cluster_trajectories", "merge_small_clusters",
           "flow_store_for", "track_sequence", "write_segmentation", "segment_sequence"]


@dataclass(frozen=True)
class SegmentationOptions:
    """Settings of tracking and clustering.

    Attributes:
        sampling: grid step of the seeds, px. texture_threshold: see :func:`track_points`.
        fb_alpha1, fb_alpha2: tolerances of the forward–backward check that ends a track
            (:func:`track_points`; Sundaram et al.'s 0.01 and 0.5).
        min_length: trajectories shorter than this (frames) are not clustered; they get the
            label of their nearest clustered neighbours when ``label_short`` is set, else they
            are left out of the output.
        cluster: ``"multicut"`` or ``"spectral"``. multicut: ``"gaec+kl"`` or ``"gaec"``.
        num_clusters: spectral only (None = eigengap).
        min_cluster_size: clusters with fewer trajectories are merged into the neighbour
            they are most attracted to (a fraction of the clustered trajectories when < 1).
        model: constants of the pairwise terms and the prior.
    """

    sampling: int = 8
    texture_threshold: float = 0.125
    fb_alpha1: float = 0.01
    fb_alpha2: float = 0.5
    min_length: int = 5
    label_short: bool = False
    cluster: str = "multicut"
    multicut: str = "gaec+kl"
    num_clusters: int | None = None
    min_cluster_size: float = 0.004
    model: PairwiseModel = field(default_factory=PairwiseModel)

    def __post_init__(self):
        if self.cluster not in ("multicut", "spectral"):
            raise ValueError(f"cluster must be 'multicut' or 'spectral', got {self.cluster!r}")
        if self.sampling < 1 or self.min_length < 2:
            raise ValueError("sampling must be ≥ 1 and min_length ≥ 2")
        if self.fb_alpha1 < 0 or self.fb_alpha2 < 0:
            raise ValueError("fb_alpha1 and fb_alpha2 must be ≥ 0")


def merge_small_clusters(n: int, edges: np.ndarray, costs: np.ndarray, labels: np.ndarray,
                         min_size: int) -> np.ndarray:
    """Merge every cluster with fewer than ``min_size`` nodes into the adjacent cluster with
    the largest summed edge cost to it (smallest clusters first); isolated small clusters
    become −1. Returns new labels relabelled 0..K−1 by decreasing size."""
    lab = np.asarray(labels, np.int64).copy()
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    while True:
        valid = lab >= 0
        if not valid.any():
            return lab
        k = int(lab.max()) + 1
        sizes = np.bincount(lab[valid], minlength=k)
        small = [c for c in np.argsort(sizes, kind="stable") if 0 < sizes[c] < min_size]
        if not small or (sizes > 0).sum() == 1:
            break
        c = small[0]
        la, lb = lab[e[:, 0]], lab[e[:, 1]]
        between = (la != lb) & (la >= 0) & (lb >= 0) & ((la == c) | (lb == c))
        if not between.any():
            lab[lab == c] = -1
            continue
        other = np.where(la[between] == c, lb[between], la[between])
        s = coo_matrix((costs[between], (np.zeros(len(other), int), other)), shape=(1, k)).toarray()[0]
        s[sizes == 0] = -np.inf
        s[c] = -np.inf
        touched = np.zeros(k, bool)
        touched[other] = True
        s[~touched] = -np.inf
        lab[lab == c] = int(np.argmax(s))
    # Relabel by decreasing size.
    valid = lab >= 0
    sizes = np.bincount(lab[valid])
    order = np.argsort(-sizes, kind="stable")
    remap = np.full(len(sizes), -1, np.int64)
    remap[order[sizes[order] > 0]] = np.arange((sizes > 0).sum())
    lab[valid] = remap[lab[valid]]
    return lab


def cluster_trajectories(traj: Trajectories, options: SegmentationOptions = SegmentationOptions(), *,
                         progress: bool = False) -> np.ndarray:
    """Cluster trajectories into moving objects.

    Returns:
        (M,) int64 labels 0..K−1 (0 = the largest cluster), −1 for trajectories left out
        (shorter than ``min_length`` unless ``label_short``).
    """
    labels = np.full(len(traj), -1, np.int64)
    nodes = np.flatnonzero(traj.lengths >= options.min_length)
    if len(nodes) == 0:
        return labels
    edges, costs, feats = build_graph(traj, nodes, options.model, progress=progress)
    n = len(nodes)
    if options.cluster == "multicut":
        lab = solve_multicut(n, edges, costs, method=options.multicut, progress=progress)
    else:
        p = cut_probability(feats, options.model)
        lab = spectral_clustering(n, edges, 1.0 - p, num_clusters=options.num_clusters)
    m = options.min_cluster_size
    min_size = int(np.ceil(m * n)) if m < 1 else int(m)
    lab = merge_small_clusters(n, edges, costs, lab, max(min_size, 1))
    labels[nodes] = lab
    if options.label_short:
        labels = assign_to_nearest(traj, labels)
    return labels


def flow_store_for(seq: FBMSSequence, method: str, num_frames: int, cache: PathLike | None = None, *,
                   progress: bool = True, **method_options) -> FlowStore:
    """The flow of the first ``num_frames`` frames by ``method``, computed once and cached
    (``exact``: the generated sequence's own flow under ``<seq>/flow/exact``)."""
    if method == "exact":
        store = FlowStore(Path(cache) if cache else seq.folder / "flow" / "exact", seq.frames[:num_frames])
        missing = store.missing()
        if missing:
            raise FileNotFoundError(f"{store.path(*missing[0])}: exact flow not found; only generated "
                                    f"sequences carry it, choose a flow method instead")
        return store
    if cache is None:
        raise ValueError("a flow cache folder is needed for computed flow")
    return FlowStore(cache, seq.frames[:num_frames]).compute(list(seq.frames[:num_frames]), method, progress=progress,
                                                **method_options)


def flow_cache_dir(out_dir: PathLike, method: str, flow_cache: PathLike | None = None) -> Path | None:
    """Where :func:`track_sequence` caches ``method``'s flow: ``flow_cache`` if given, else
    ``out_dir/flow/<method>``; None for ``exact`` (read from the sequence itself)."""
    if flow_cache is not None:
        return Path(flow_cache)
    return None if method == "exact" else Path(out_dir) / "flow" / method


def cached_flow_fields(sequence: PathLike | FBMSSequence, out_dir: PathLike, method: str,
                       frames: int | str | None = None, flow_cache: PathLike | None = None) -> tuple[int, int]:
    """(flow fields already in the cache, fields the sequence needs): what a run will reuse."""
    seq = sequence if isinstance(sequence, FBMSSequence) else read_sequence(sequence)
    n = _frame_count(seq, frames)
    cache = flow_cache_dir(out_dir, method, flow_cache)
    if cache is None:
        return 0, 0
    store = FlowStore(cache, seq.frames[:n])
    total = 2 * (n - 1)
    return total - len(store.missing()), total


def _frame_count(seq: FBMSSequence, frames: int | str | None) -> int:
    total = len(seq.frames)
    if frames in (None, "all"):
        return total
    n = int(frames)
    if n < 2 or n > total:
        raise ValueError(f"{seq.folder}: cannot use {n} frames of a {total}-frame sequence")
    if seq.definition is not None and n not in EVALUATION_LENGTHS and n != seq.definition.total_frames:
        raise ValueError(f"{seq.folder}: the evaluation accepts 10, 50, 200 or all "
                         f"({seq.definition.total_frames}) frames, not {n}")
    return n


def track_sequence(sequence: PathLike | FBMSSequence, out_dir: PathLike, method: str = DEFAULT_METHOD, *,
                   frames: int | str | None = None, options: SegmentationOptions = SegmentationOptions(),
                   flow_cache: PathLike | None = None, method_options: dict | None = None,
                   progress: bool = True) -> Trajectories:
    """Flow (cached) and trajectories of a sequence folder; writes ``out_dir/trajectories.npz``."""
    seq = sequence if isinstance(sequence, FBMSSequence) else read_sequence(sequence)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = _frame_count(seq, frames)
    cache = flow_cache_dir(out, method, flow_cache)
    store = flow_store_for(seq, method, n, cache, progress=progress, **(method_options or {}))
    traj = track_points(store.forward, store.backward, list(seq.frames[:n]), sampling=options.sampling,
                        texture_threshold=options.texture_threshold, fb_alpha1=options.fb_alpha1,
                        fb_alpha2=options.fb_alpha2, num_frames=n, progress=progress)
    save_trajectories(out / "trajectories.npz", traj, sequence=os.fspath(Path(seq.folder).resolve()),
                      method=method, sampling=options.sampling)
    return traj


@dataclass
class SegmentationResult:
    """What :func:`segment_sequence` produced (paths and numbers)."""

    sequence: str
    method: str
    num_frames: int
    num_trajectories: int
    num_labelled: int
    num_clusters: int
    track_file: Path
    evaluation: ShotEvaluation | None
    seconds: dict
    labels: np.ndarray = field(repr=False)

    def summary(self) -> dict:
        d = {"sequence": self.sequence, "method": self.method, "frames": self.num_frames,
             "trajectories": self.num_trajectories, "labelled_trajectories": self.num_labelled,
             "clusters": self.num_clusters, "track_file": os.fspath(self.track_file),
             "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}
        if self.evaluation is not None:
            d["evaluation"] = self.evaluation.printed()
        return d


def write_segmentation(seq: FBMSSequence, traj: Trajectories, labels: np.ndarray, out_dir: PathLike, *,
                       method: str = "", threshold: float = 0.75, images: bool = True,
                       progress: bool = True) -> tuple[Path, ShotEvaluation | None]:
    """Write the track file, label maps, overlays and (with ground truth) the evaluation."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = traj.num_frames
    keep = labels >= 0
    sub = traj.subset(keep)
    sub_labels = labels[keep]
    tracks = sub.to_trackset(sub_labels, n)
    track_file = out / f"Tracks{n}.dat"
    write_tracks(track_file, tracks)
    if images:
        (out / "labels").mkdir(exist_ok=True)
        (out / "overlays").mkdir(exist_ok=True)
        maps = dense_label_maps(sub, sub_labels, n)
        big = maps.max() > 254
        for t in tqdm(range(n), desc="label maps", unit="frame", disable=not progress):
            m = maps[t]
            png = np.where(m < 0, 65535 if big else 255, m).astype(np.uint16 if big else np.uint8)
            ok, buf = cv2.imencode(".png", png)
            atomic_write_bytes(out / "labels" / f"{seq.frames[t].stem}.png", buf.tobytes())
            idx, pos = sub.at_frame(t)
            write_image(out / "overlays" / f"{seq.frames[t].stem}.jpg",
                        overlay(read_image(seq.frames[t]), m, points=pos, point_labels=sub_labels[idx]))
    evaluation = None
    if seq.definition is not None:
        evaluation = evaluate_shot(seq.definition, tracks, threshold, track_name=os.fspath(track_file))
        atomic_write_text(numbers_path(os.fspath(track_file)), evaluation.numbers_text())
        atomic_write_text(out / "evaluation.json", json.dumps(
            {"sequence": seq.name, "method": method, "threshold": threshold, **evaluation.printed()}, indent=1) + "\n")
    return track_file, evaluation


def segment_sequence(sequence: PathLike | FBMSSequence, out_dir: PathLike, method: str = DEFAULT_METHOD, *,
                     frames: int | str | None = None, options: SegmentationOptions = SegmentationOptions(),
                     threshold: float = 0.75, flow_cache: PathLike | None = None,
                     method_options: dict | None = None, images: bool = True,
                     progress: bool = True) -> SegmentationResult:
    """Segment one FBMS-layout sequence folder end to end (outputs in the module docstring).

    Args:
        sequence: the folder (frames, optional ``GroundTruth/<seq>Def.dat``).
        method: a flow method name (``flownet2 methods``) or ``"exact"`` for generated data.
        frames: use the first 10, 50, 200 frames or all (default).
        threshold: F-measure threshold of "extracted objects".
    """
    seq = sequence if isinstance(sequence, FBMSSequence) else read_sequence(sequence)
    times = {}
    t0 = time.perf_counter()
    traj = track_sequence(seq, out_dir, method, frames=frames, options=options, flow_cache=flow_cache,
                          method_options=method_options, progress=progress)
    times["flow+tracking"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = cluster_trajectories(traj, options, progress=progress)
    times["clustering"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    track_file, evaluation = write_segmentation(seq, traj, labels, out_dir, method=method, threshold=threshold,
                                                images=images, progress=progress)
    times["output"] = time.perf_counter() - t0
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    return SegmentationResult(seq.name, method, traj.num_frames, len(traj), int((labels >= 0).sum()), k,
                              track_file, evaluation, times, labels)
