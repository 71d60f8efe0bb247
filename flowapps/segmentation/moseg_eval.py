"""The FBMS-59 evaluation (MoSegEval v2.0, precision/recall version), ported to Python.

Reproduces the official programs ``MoSegEvalPR`` (one shot) and ``MoSegEvalAllPR`` (a list of
shots) number for number, including the parts that decide ties and rounding:

* track points are parsed as float32 and rounded as ``(int)(v + 0.5f)`` (truncation, so
  ``-0.7`` → 0 is inside the image); a track's point for labelled frame ``f`` is its point
  number ``f − first_frame`` (tracks are consecutive);
* every count is a float32 sum accumulated in the official order (frame by frame, tracks in
  file order, pixels in raster order), weighted by the GT weight (``.pgm`` weight maps of
  ``.ppm`` ground truth);
* labelled frames are used up to the first one whose index **exceeds** the track file's
  sequence length L (so frame L itself still counts), and L must be 10, 50, 200 or the
  shot's total length;
* visible regions: weighted pixel count ≥ 1e-4 (background included); density = 100 · mean
  over visible regions of (tracked points in r) / (pixels of r);
* P(r, c) = overlap / cluster size, R(r, c) = overlap / tracked points in r,
  F = 2PR / (P + R); the one-to-one assignment is the Hungarian method (libhungarian,
  ported step by step in :mod:`.hungarian` so ties go the same way) on the integer costs
  ``−(int)(10000·F)`` of a square matrix of size max(#visible regions, #clusters), rows =
  clusters, columns = regions;
* when clusters are fewer than visible regions, regions left to a dummy cluster count
  P = 1, R = 0 ("empty cluster"); when clusters are at least as many, clusters left to a
  dummy region are ignored; shot P̄, R̄ are the means over the counted pairs and
  F = 2P̄R̄/(P̄+R̄);
* extracted objects = #{pairs with F > threshold} − 1 (the background), at least 0;
  visible objects = #visible regions − 1;
* over all shots (``MoSegEvalAllPR``): the per-shot values are read back from the printed
  ``…Numbers.txt`` (6 significant digits), averaged without weights in float32; overall F
  from the mean P and R; shots shorter than the evaluation length are skipped without
  consuming a line of the track list.

The official default threshold, when none is given, is 0.9; FBMS results are usually
reported with 0.75 (Ochs et al. 2014), the default of the Python functions here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from flownet2_core.io import atomic_write_text

from ._util import PathLike, cfloat
from .colors import cluster_rgb
from .fbms import ShotDefinition, TrackSet, read_definition, read_gt_frame, read_shot_list, read_track_list, read_tracks
from .hungarian import hungarian_libhungarian

__all__ = [
    "ShotEvaluation", "AllEvaluation", "evaluate_shot", "evaluate_all", "EVALUATION_LENGTHS", "numbers_path",
]

EVALUATION_LENGTHS = (10, 50, 200)
_f32 = np.float32


# --------------------------------------------------------------------------
# One shot (MoSegEvalPR)
# --------------------------------------------------------------------------
def _seq_sum_f32(values: np.ndarray, start: float = 0.0) -> np.float32:
    """float32 sum in order, as a C loop ``s += v`` over float variables computes it."""
    if len(values) == 0:
        return _f32(start)
    return np.cumsum(np.concatenate([[start], values]).astype(np.float32), dtype=np.float32)[-1]


def _grouped_seq_sums(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per key, the float32 in-order sum of its values: (size,) float32."""
    out = np.zeros(size, np.float32)
    if len(keys) == 0:
        return out
    order = np.argsort(keys, kind="stable")
    sk, sv = keys[order], values[order]
    cuts = np.flatnonzero(np.diff(sk)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(sk)]):
        out[sk[a]] = _seq_sum_f32(sv[a:b])
    return out


@dataclass
class ShotEvaluation:
    """The result of evaluating one track file against one shot (float32 values as the
    official program holds them before printing).

    Attributes:
        pairs: per row of the assignment, in order: ``(cluster, region, P, R, F, kind)`` with
            ``region = -1`` for a dummy region and kind ``"pair"``, ``"empty cluster"`` (a
            region left to a dummy cluster: P = 1, R = 0) or ``"unused cluster"`` (a cluster
            left to a dummy region, not counted).
        cost_matrix, assignment: the Hungarian input (rows clusters, columns regions) and
            the chosen column per row.
    """

    def_file: str
    track_file: str
    evaluated_frames: int
    used_labelled_frames: int
    num_regions: int
    num_clusters: int
    visible_regions: list[int]
    density: np.float32
    precision: np.float32
    recall: np.float32
    f_measure: np.float32
    visible_objects: int
    extracted_objects: int
    threshold: np.float32
    pairs: list[tuple] = field(default_factory=list)
    cost_matrix: np.ndarray | None = field(default=None, repr=False)
    assignment: np.ndarray | None = field(default=None, repr=False)

    def numbers_text(self) -> str:
        """The ``…Numbers.txt`` file the official program writes, byte for byte."""
        out = [f"Evaluation results for: {self.track_file}", "MoSegEval Version 2.0", "",
               "Number of frames used from the sequence:", str(self.evaluated_frames),
               "Number of labeled frames in this time window:", str(self.used_labelled_frames),
               "-" * 26, "Average region density (in percent):", cfloat(self.density),
               "-" * 72, "Cluster to Region Assignment with (Precsion, Recall, F-meassure) values:"]
        for cluster, region, p, r, f, kind in self.pairs:
            out.append(f"Cluster {cluster} => Region {region}")
            if kind == "unused cluster":
                continue
            if kind == "empty cluster":
                out.append("1 0 0 (empty cluster)")
            elif p != 0 and r != 0:
                out.append(f"{cfloat(p)} {cfloat(r)} {cfloat(f)}")
            else:
                out.append("0 0 0")
        out += ["-" * 37, "Average Precision, Recall, F-measure:",
                f"{cfloat(self.precision)} {cfloat(self.recall)} {cfloat(self.f_measure)}",
                "-" * 50, "Visible objects in the evaluated part of the shot:", str(self.visible_objects),
                "-" * 84, f"Extracted objects (#{{F-measure > {self.threshold:.2f}}}) (excluding background):",
                str(self.extracted_objects), "-" * 30, "RGB pixel values for clusters:"]
        for cluster, *_ in self.pairs:
            r, g, b = cluster_rgb(cluster)
            out.append(f"Cluster {cluster} => ({r},{g},{b})")
        return "\n".join(out) + "\n"

    def matrices_text(self) -> str:
        """What the official program prints on stderr (cost matrix and assignment)."""
        def fmt(mat):
            return "\n" + "".join(" [" + "".join("%5d " % v for v in row) + "]\n" for row in mat) + "\n"
        a = np.zeros_like(self.cost_matrix)
        a[np.arange(len(a)), self.assignment] = 1
        return "cost-matrix:" + fmt(self.cost_matrix) + "assignment:" + fmt(a)

    def printed(self) -> dict:
        """The summary values as the printed file holds them (6 significant digits), which
        is what ``MoSegEvalAllPR`` reads back: density in percent, P/R/F fractions."""
        return {"density": float(cfloat(self.density)), "precision": float(cfloat(self.precision)),
                "recall": float(cfloat(self.recall)), "f_measure": float(cfloat(self.f_measure)),
                "extracted_objects": self.extracted_objects, "visible_objects": self.visible_objects,
                "evaluated_frames": self.evaluated_frames, "labelled_frames": self.used_labelled_frames}


def numbers_path(track_file: str) -> str:
    """``Tracks10.dat`` → ``Tracks10Numbers.txt``: the official name of the per-shot result
    (the text after the last ``.`` of the whole path is replaced)."""
    i = track_file.rfind(".")
    return (track_file[:i] if i >= 0 else track_file) + "Numbers.txt"


def evaluate_shot(definition: ShotDefinition | PathLike, tracks: TrackSet | PathLike,
                  threshold: float = 0.75, *, track_name: str | None = None) -> ShotEvaluation:
    """Evaluate one segmentation (track file) against one shot, as ``MoSegEvalPR`` does.

    Args:
        definition: a :class:`ShotDefinition` or the path of its ``Def.dat``.
        tracks: a :class:`TrackSet` or the path of a track file.
        threshold: F-measure above which a region counts as extracted.
        track_name: the name printed in the result (default: the track path as given).

    Raises:
        ValueError: the track file's sequence length is not 10, 50, 200 or the shot's
            length; a track is shorter than its frame range says; GT images of different
            sizes. FileNotFoundError: missing files. Messages name the file.
    """
    d = definition if isinstance(definition, ShotDefinition) else read_definition(definition)
    def_name = os.fspath(d.path) if d.path is not None else "<definition>"
    if isinstance(tracks, TrackSet):
        ts, tname = tracks, track_name or "<tracks>"
    else:
        ts, tname = read_tracks(tracks), track_name or os.fspath(tracks)
    thr = _f32(threshold)
    length = int(ts.sequence_length)
    if length in EVALUATION_LENGTHS or length == d.total_frames:
        eval_frames = length
    else:
        raise ValueError(f"{tname}: length of tracked sequence ({length}) does not match a typical "
                         f"evaluation length (10, 50, 200, all frames = {d.total_frames} for {def_name})")
    nreg = d.num_regions
    if nreg < 1:
        raise ValueError(f"{def_name}: a shot needs at least one region (the background)")
    ncl = int(ts.labels.max()) + 1 if len(ts) else 0

    # Track geometry: official float32 parsing and (int)(v + 0.5f) rounding.
    lengths = ts.lengths
    nonempty = lengths > 0
    first = np.full(len(ts), np.iinfo(np.int64).max)
    last = np.full(len(ts), np.iinfo(np.int64).min)
    first[nonempty] = ts.frames[ts.offsets[:-1][nonempty]]
    last[nonempty] = ts.frames[ts.offsets[1:][nonempty] - 1]
    with np.errstate(invalid="ignore", over="ignore"):
        xr = np.trunc(ts.xy[:, 0].astype(np.float32) + _f32(0.5))
        yr = np.trunc(ts.xy[:, 1].astype(np.float32) + _f32(0.5))
    finite = np.isfinite(xr) & np.isfinite(yr) & (np.abs(xr) < 2**31) & (np.abs(yr) < 2**31)
    xi = np.where(finite, xr, -1).astype(np.int64)
    yi = np.where(finite, yr, -1).astype(np.int64)

    region_counter = np.zeros(nreg, np.float32)
    hit_region, hit_label, hit_prob = [], [], []
    used = 0
    shape0 = None
    for t, f in enumerate(d.labelled_frames):
        if f > eval_frames and eval_frames > 0:
            break
        used += 1
        codes, weights = read_gt_frame(d, t)
        if shape0 is None:
            shape0, gt0 = codes.shape, d.gt_path(t)
        elif codes.shape != shape0:
            # The official program takes each image at its own size, so a mis-sized label
            # image silently drops (or shifts) tracked points; the frames of one shot share
            # one size, so a different one is an error in the data.
            raise ValueError(f"{d.gt_path(t)}: ground truth is {codes.shape[1]}×{codes.shape[0]}, the shot's "
                             f"first labelled frame {gt0.name} is {shape0[1]}×{shape0[0]}")
        regions = d.color_to_region(codes)
        flat_r, flat_w = regions.ravel(), weights.ravel()
        for r in np.unique(flat_r):  # raster order within each region, frames in order
            region_counter[r] = _seq_sum_f32(flat_w[flat_r == r], region_counter[r])
        sel = np.flatnonzero((first <= f) & (last >= f))
        t2 = f - first[sel]
        short = t2 >= lengths[sel]
        if short.any():
            bad = int(sel[np.flatnonzero(short)[0]])
            raise ValueError(f"{tname}: track {bad} spans frames {first[bad]}..{last[bad]} but has only "
                             f"{lengths[bad]} points (points must be on consecutive frames)")
        idx = ts.offsets[sel] + t2
        x, y = xi[idx], yi[idx]
        h, w = codes.shape
        inside = (x >= 0) & (y >= 0) & (x < w) & (y < h)
        sel, x, y = sel[inside], x[inside], y[inside]
        hit_region.append(regions[y, x])
        hit_label.append(ts.labels[sel])
        hit_prob.append(weights[y, x])
    hr = np.concatenate(hit_region) if hit_region else np.zeros(0, np.int64)
    hl = np.concatenate(hit_label) if hit_label else np.zeros(0, np.int64)
    hp = np.concatenate(hit_prob) if hit_prob else np.zeros(0, np.float32)
    overlap = _grouped_seq_sums(hr * max(ncl, 1) + hl, hp, nreg * max(ncl, 1)).reshape(nreg, max(ncl, 1))
    cluster_size = _grouped_seq_sums(hl, hp, max(ncl, 1))
    region_size = _grouped_seq_sums(hr, hp, nreg)

    visible = [r for r in range(nreg) if region_counter[r] >= _f32(1e-4)]
    nvis = len(visible)
    dens = _f32(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for r in visible:
            dens = _f32(dens + _f32(region_size[r] / region_counter[r]))
        dens = _f32(dens / _f32(nvis))
    P = np.zeros((nvis, ncl), np.float32)
    R = np.zeros((nvis, ncl), np.float32)
    for j2, j in enumerate(visible):
        for i in range(ncl):
            if cluster_size[i] == 0:
                continue
            P[j2, i] = _f32(overlap[j, i] / cluster_size[i])
            if region_size[j] == 0:
                continue
            R[j2, i] = _f32(overlap[j, i] / region_size[j])

    def fmeasure(p, r):
        return _f32(_f32(_f32(2 * p) * r) / _f32(p + r))

    size = max(nvis, ncl)
    empty_regions = size == ncl
    fint = np.zeros((size, size), np.int64)          # [cluster, region]
    for j2 in range(nvis):
        for i in range(ncl):
            if P[j2, i] != 0 and R[j2, i] != 0:
                fint[i, j2] = int(np.trunc(_f32(fmeasure(P[j2, i], R[j2, i]) * _f32(10000))))
    cost = -fint
    cols = hungarian_libhungarian(cost)

    pairs = []
    sum_p = sum_r = _f32(0)
    ctr = 0
    count = -1
    for row in range(size):
        k = int(cols[row])
        region = visible[k] if k < nvis else -1
        if empty_regions and k >= nvis:
            pairs.append((row, region, None, None, None, "unused cluster"))
            continue
        if not empty_regions and row >= ncl:
            pairs.append((row, region, _f32(1), _f32(0), _f32(0), "empty cluster"))
            sum_p = _f32(sum_p + _f32(1))
            ctr += 1
            continue
        p, r = P[k, row], R[k, row]
        fm = fmeasure(p, r) if (p != 0 and r != 0) else _f32(0)
        pairs.append((row, region, p, r, fm, "pair"))
        ctr += 1
        if fm > thr:
            count += 1
        sum_p = _f32(sum_p + p)
        sum_r = _f32(sum_r + r)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_p = _f32(sum_p / _f32(ctr))
        avg_r = _f32(sum_r / _f32(ctr))
        avg_f = _f32(_f32(_f32(_f32(2) * avg_p) * avg_r) / _f32(avg_p + avg_r))
    return ShotEvaluation(
        def_file=def_name, track_file=tname, evaluated_frames=eval_frames, used_labelled_frames=used,
        num_regions=nreg, num_clusters=ncl, visible_regions=visible,
        density=_f32(dens * _f32(100)), precision=avg_p, recall=avg_r, f_measure=avg_f,
        visible_objects=max(0, nvis - 1), extracted_objects=max(0, count), threshold=thr,
        pairs=pairs, cost_matrix=cost, assignment=cols)


# --------------------------------------------------------------------------
# All shots (MoSegEvalAllPR)
# --------------------------------------------------------------------------
@dataclass
class AllEvaluation:
    """The result of ``MoSegEvalAllPR``: per-shot evaluations and the overall figures
    (float32, computed from the per-shot values as printed)."""

    mode: str                      # "all", "10", "50" or "200"
    threshold: np.float32
    shots: list[ShotEvaluation]
    skipped: list[tuple[str, int]]  # (Def.dat, total frames) of shots shorter than the mode
    density: np.float32
    precision: np.float32
    precision_std: np.float32
    recall: np.float32
    recall_std: np.float32
    f_measure: np.float32
    extracted_objects: int
    visible_objects: int
    track_list: str = ""

    def summary_text(self) -> str:
        """The official ``<tracklist>_Fgeq<thr·100>Numbers.txt`` contents, byte for byte."""
        return "".join([
            f"Evaluation results for segmentations obtained using {self.mode} frames\n",
            "MoSegEval Version 2.0\n\n",
            f"{len(self.shots)} shots were evaluated.\n", "-" * 28 + "\n",
            f"Region density (in percent): \n{cfloat(self.density)}\n", "-" * 28 + "\n",
            f"Overall precision:\n{cfloat(self.precision)} (std.dev.: {cfloat(self.precision_std)})\n",
            "-" * 28 + "\n",
            f"Overall recall:\n{cfloat(self.recall)} (std.dev.: {cfloat(self.recall_std)})\n",
            "-" * 28 + "\n",
            f"Overall F-measure: \n{cfloat(self.f_measure)}\n", "-" * 28 + "\n",
            f"Extracted objects (#{{F-measure > {self.threshold:.2f}}}) (excluding background):\n",
            f"{self.extracted_objects}\nof {self.visible_objects} visible objects\n",
        ])

    def summary_path(self) -> str:
        """Official output name: the track list without its extension + ``_Fgeq%4.2f`` of
        threshold·100 + ``Numbers.txt`` (e.g. ``allTracks_Fgeq75.00Numbers.txt``)."""
        i = self.track_list.rfind(".")
        stem = self.track_list[:i] if i >= 0 else self.track_list
        return f"{stem}_Fgeq{float(_f32(self.threshold * _f32(100))):4.2f}Numbers.txt"

    def as_dict(self) -> dict:
        """Machine-readable summary (per shot and overall)."""
        return {
            "evaluator": "MoSegEval v2.0 (precision/recall), Python port",
            "mode": self.mode, "threshold": float(self.threshold),
            "overall": {"shots": len(self.shots), "density": float(cfloat(self.density)),
                        "precision": float(cfloat(self.precision)),
                        "precision_std": float(cfloat(self.precision_std)),
                        "recall": float(cfloat(self.recall)), "recall_std": float(cfloat(self.recall_std)),
                        "f_measure": float(cfloat(self.f_measure)),
                        "extracted_objects": self.extracted_objects, "visible_objects": self.visible_objects},
            "shots": [dict(def_file=s.def_file, track_file=s.track_file, **s.printed()) for s in self.shots],
            "skipped": [{"def_file": d, "total_frames": t} for d, t in self.skipped],
        }


def _shot_threshold(threshold: float) -> np.float32:
    # MoSegEvalAllPR passes the threshold to MoSegEvalPR as sprintf(" %f").
    return _f32(float("%f" % float(_f32(threshold))))


def evaluate_all(shot_list: PathLike, mode: str | int, track_list: PathLike, threshold: float = 0.75, *,
                 write_numbers: bool = False, log=None) -> AllEvaluation:
    """Evaluate the track files of a track list against the shots of a shot list, as
    ``MoSegEvalAllPR SHOTS mode TRACKS threshold`` does.

    Args:
        shot_list, track_list: list files (format in :mod:`.fbms`); paths inside them are
            relative to the working directory, as in the official program.
        mode: ``"all"`` or 10, 50, 200: shots with fewer frames are skipped (without using
            a track-list line) and every track file must say that many frames.
        write_numbers: also write each shot's ``…Numbers.txt`` beside its track file and the
            summary file beside the track list, as the official program does.
        log: called with each line the official program prints on stdout (or None).

    Raises:
        ValueError: bad mode, a track list shorter or longer than the shots evaluated, track
            files with a different frame count than ``mode``. FileNotFoundError: missing files.
    """
    mode_s = str(mode)
    if mode_s == "all":
        emode = -1
    elif mode_s in ("10", "50", "200"):
        emode = int(mode_s)
    else:
        raise ValueError(f"Evaluation of {mode_s} frames is not allowed. Choose 10, 50, 200, or all frames.")
    shots = read_shot_list(shot_list)
    tracks = read_track_list(track_list)
    thr_shot = _shot_threshold(threshold)
    say = log or (lambda line: None)
    results, skipped = [], []
    ti = 0
    sums = dict(d=_f32(0), p=_f32(0), r=_f32(0), p2=_f32(0), r2=_f32(0))
    ext = vis = 0
    for shot in shots:
        d = read_definition(shot)
        if emode > 0 and d.total_frames < emode:
            say(f"Only {d.total_frames} frames. {shot} ignored.")
            skipped.append((shot, d.total_frames))
            continue
        if ti >= len(tracks):
            raise ValueError(f"{os.fspath(track_list)}: lists {len(tracks)} track files, fewer than the shots to evaluate")
        tfile = tracks[ti]
        ti += 1
        res = evaluate_shot(d, tfile, thr_shot, track_name=tfile)
        if write_numbers:
            atomic_write_text(numbers_path(tfile), res.numbers_text())
        say(f"output file: {numbers_path(tfile)}")
        results.append(res)
        if res.evaluated_frames != emode and emode > 0:
            raise ValueError(f"The tracks listed in {os.fspath(track_list)} have been computed considering "
                             f"different numbers of frames ({tfile}: {res.evaluated_frames}, expected {emode}).")
        pr = res.printed()
        dd, pp, rr = _f32(pr["density"]), _f32(pr["precision"]), _f32(pr["recall"])
        sums["d"] = _f32(sums["d"] + dd)
        sums["p"] = _f32(sums["p"] + pp)
        sums["r"] = _f32(sums["r"] + rr)
        sums["p2"] = _f32(sums["p2"] + _f32(pp * pp))
        sums["r2"] = _f32(sums["r2"] + _f32(rr * rr))
        say(f"(P,R)=({cfloat(pp)},{cfloat(rr)}) ")
        vis += res.visible_objects
        ext += res.extracted_objects
        say(f"extracted objects counter: {ext} / {vis}")
    if ti < len(tracks):
        # The official program ignores the extra lines; a track list longer than the shots
        # evaluated means the two lists do not pair up line by line, so every score would be
        # of the wrong shot from the first mismatch on.
        raise ValueError(f"{os.fspath(track_list)}: lists {len(tracks)} track files for the {ti} shots evaluated "
                         f"(one per shot of {os.fspath(shot_list)}, in its order)")
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = _f32(_f32(1) / _f32(len(results)))
        p, r = _f32(sums["p"] * inv), _f32(sums["r"] * inv)
        p2, r2 = _f32(sums["p2"] * inv), _f32(sums["r2"] * inv)
        sd_r = np.sqrt(_f32(r2 - _f32(r * r)), dtype=np.float32)
        sd_p = np.sqrt(_f32(p2 - _f32(p * p)), dtype=np.float32)
        f = _f32(_f32(_f32(_f32(2) * p) * r) / _f32(p + r))
        dens = _f32(sums["d"] * inv)
    out = AllEvaluation("all" if emode < 0 else str(emode), _f32(threshold), results, skipped, dens,
                        p, sd_p, r, sd_r, f, ext, vis, os.fspath(track_list))
    if write_numbers:
        atomic_write_text(out.summary_path(), out.summary_text())
    return out
