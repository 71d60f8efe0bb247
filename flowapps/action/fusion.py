"""Late fusion of the two streams: a weighted average of their per-video scores.

``fused = (1 − w) · spatial + w · temporal`` with the temporal weight ``w`` either
given (Simonyan & Zisserman averaged, ``w = 0.5``; TSN weights the streams 1 : 1.5,
``w = 0.6``) or chosen on the held-out training videos: the ``w`` on a grid that
maximises held-out top-1, ties broken by the lower held-out negative log-likelihood,
then by closeness to 0.5. The test scores never influence the choice.

Two aggregations (:data:`AGGREGATIONS`, ``fuse(aggregate=…)``); every result says which:

``"softmax"`` (the default)
    Simonyan & Zisserman's: a stream's per-video score is the mean of its inputs'
    softmax scores; the fused score is the weighted average of those.
``"logits"``
    TSN's protocol (Wang et al. 2016): a stream's per-video score is the mean of its
    inputs' raw class scores (logits, before softmax); the streams' mean logits are
    fused, ``(1 − w) · spatial_logits + w · temporal_logits``, and the prediction is the
    arg-max. The saved fused scores and all metrics (each stream's too) are the softmax
    of those mean logits — softmax is monotone per row, so top-1, top-5 and the
    confusion matrix equal those of the logits; the held-out negative log-likelihood of
    the weight choice is that of these probabilities. Needs score files that hold the
    mean logits (``flownet2 action test`` saves both aggregations).

Inputs are the score files of ``flownet2 action test`` (a run folder holding
``scores_test.npz`` and, for a chosen weight, ``scores_holdout.npz``). Output folder::

    fusion.json              weight, how it was chosen, the grid, the aggregation
                             ("aggregate", "convention"), and test metrics of spatial,
                             temporal and fused (with each stream's meta)
    scores_fused_test.npz    the fused per-video scores
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flownet2_core.io import atomic_write_text

from .evaluate import ScoreSet, load_scores, save_scores

__all__ = ["align", "fuse_scores", "choose_weight", "fuse", "stream_scores", "FusionResult", "DEFAULT_GRID",
           "TSN_WEIGHT", "SIMONYAN_WEIGHT", "AGGREGATIONS", "DEFAULT_AGGREGATE", "CONVENTIONS"]

#: TSN fuses RGB : flow as 1 : 1.5 (temporal weight 1.5 / 2.5); Simonyan & Zisserman average (1 : 1).
TSN_WEIGHT = 0.6
SIMONYAN_WEIGHT = 0.5

DEFAULT_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 21))

#: Per-video aggregation and fusion (module docstring): ``"softmax"`` averages softmax
#: scores (Simonyan & Zisserman 2014); ``"logits"`` averages and fuses the logits before
#: softmax (TSN, Wang et al. 2016).
AGGREGATIONS = ("softmax", "logits")
DEFAULT_AGGREGATE = "softmax"

#: What fusion.json's "convention" says for each aggregation.
CONVENTIONS = {
    "softmax": ("fused = (1 - weight) * spatial + weight * temporal (softmax scores: each stream's per-video "
                "mean of its inputs' softmax scores; Simonyan & Zisserman 2014)"),
    "logits": ("fused = softmax((1 - weight) * spatial + weight * temporal) (logits: each stream's per-video "
               "mean of its inputs' raw class scores, fused before softmax; TSN, Wang et al. 2016; prediction = "
               "arg-max; stream and fused metrics from the softmax of the mean logits)"),
}

_LOG_NAMES = {"softmax": "softmax aggregation (mean softmax scores, Simonyan & Zisserman)",
              "logits": "logits aggregation (mean logits fused before softmax, TSN)"}


def _check_aggregate(aggregate: str) -> None:
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {', '.join(map(repr, AGGREGATIONS))}, got {aggregate!r}")


def _need_logits(s: ScoreSet, where: str, subset: str = "test") -> None:
    """One-line ValueError when ``s`` (from file or stream ``where``) has no mean logits."""
    if s.logits is None:
        again = "flownet2 action test" + (" --subset holdout" if subset == "holdout" else "")
        raise ValueError(f"{where}: no per-video mean logits (a score file written before they were saved); "
                         f"re-run `{again}` to fuse with aggregate='logits'")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def stream_scores(s: ScoreSet, aggregate: str = DEFAULT_AGGREGATE) -> ScoreSet:
    """One stream's per-video scores under ``aggregate``: ``s`` itself for ``"softmax"``;
    for ``"logits"`` the softmax of its mean logits (float32; logits kept)."""
    _check_aggregate(aggregate)
    if aggregate == "softmax":
        return s
    _need_logits(s, f"the {s.meta.get('modality', 'stream')} scores")
    return ScoreSet(list(s.frame_dirs), s.labels, _softmax(s.logits).astype(np.float32), s.classes,
                    {**s.meta, "aggregate": aggregate}, s.logits)


def align(spatial: ScoreSet, temporal: ScoreSet, names=("spatial", "temporal")) -> ScoreSet:
    """``temporal`` reordered to ``spatial``'s videos; both must score the same videos and classes."""
    if spatial.classes != temporal.classes:
        raise ValueError(f"{names[0]} and {names[1]} scores have different classes")
    a, b = set(spatial.frame_dirs), set(temporal.frame_dirs)
    if a != b:
        only = sorted(a ^ b)
        raise ValueError(f"{names[0]} and {names[1]} scores cover different videos "
                         f"({len(a - b)} only in {names[0]}, {len(b - a)} only in {names[1]}, e.g. {only[0]})")
    pos = {d: i for i, d in enumerate(temporal.frame_dirs)}
    idx = np.array([pos[d] for d in spatial.frame_dirs])
    if not np.array_equal(temporal.labels[idx], spatial.labels):
        raise ValueError(f"{names[0]} and {names[1]} scores disagree on labels")
    return ScoreSet(list(spatial.frame_dirs), spatial.labels, temporal.scores[idx], temporal.classes,
                    temporal.meta, None if temporal.logits is None else temporal.logits[idx])


def fuse_scores(spatial: ScoreSet, temporal: ScoreSet, weight: float,
                aggregate: str = DEFAULT_AGGREGATE) -> ScoreSet:
    """``(1 − weight)·spatial + weight·temporal`` per video (videos aligned by frame_dir).

    ``aggregate="softmax"``: of the mean softmax scores (``logits`` of the result: None).
    ``aggregate="logits"`` (TSN): of the mean logits, which the result keeps as ``logits``;
    its ``scores`` are their softmax. ``meta["aggregate"]`` says which."""
    _check_aggregate(aggregate)
    if not 0 <= weight <= 1:
        raise ValueError(f"the temporal weight must be in [0, 1], got {weight}")
    t = align(spatial, temporal)
    meta = {"fusion_weight": weight, "aggregate": aggregate, "spatial": spatial.meta, "temporal": temporal.meta}
    if aggregate == "softmax":
        return ScoreSet(t.frame_dirs, t.labels,
                        ((1 - weight) * spatial.scores + weight * t.scores).astype(np.float32), t.classes, meta)
    _need_logits(spatial, "the spatial scores")
    _need_logits(t, "the temporal scores")
    z = (1 - weight) * spatial.logits.astype(np.float64) + weight * t.logits.astype(np.float64)
    return ScoreSet(t.frame_dirs, t.labels, _softmax(z).astype(np.float32), t.classes, meta, z.astype(np.float32))


def choose_weight(spatial: ScoreSet, temporal: ScoreSet, grid=DEFAULT_GRID,
                  aggregate: str = DEFAULT_AGGREGATE) -> tuple[float, list[dict]]:
    """The temporal weight with the best held-out top-1 (see module docstring) and the
    grid: ``[{"weight", "top1", "nll"}, …]``; top-1 and NLL are those of the fused
    probabilities under ``aggregate`` (for ``"logits"``: the softmax of the fused mean logits)."""
    _check_aggregate(aggregate)
    t = align(spatial, temporal)
    if aggregate == "logits":
        _need_logits(spatial, "the spatial scores")
        _need_logits(t, "the temporal scores")
        s_z, t_z = spatial.logits.astype(np.float64), t.logits.astype(np.float64)
    rows = []
    for w in grid:
        if aggregate == "softmax":
            p = (1 - w) * spatial.scores + w * t.scores
        else:
            p = _softmax((1 - w) * s_z + w * t_z)
        top1 = float((p.argmax(1) == t.labels).mean())
        nll = float(-np.log(np.clip(p[np.arange(len(p)), t.labels], 1e-12, None)).mean())
        rows.append({"weight": float(w), "top1": top1, "nll": nll})
    best = min(rows, key=lambda r: (-r["top1"], round(r["nll"], 9), abs(r["weight"] - 0.5)))
    return best["weight"], rows


@dataclass
class FusionResult:
    weight: float
    chosen_on: str            # "holdout" or "given"
    metrics: dict             # {"spatial": …, "temporal": …, "fused": …} on the test videos
    grid: list[dict] = field(default_factory=list)
    fused: ScoreSet | None = None
    aggregate: str = DEFAULT_AGGREGATE   # "softmax" or "logits" (AGGREGATIONS)

    def table(self) -> list[list[str]]:
        return [[k, f"{100 * m['top1']:.2f}", f"{100 * m['top5']:.2f}", f"{100 * m['mean_class_accuracy']:.2f}"]
                for k, m in self.metrics.items()]


def _score_file(path: str | os.PathLike, subset: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / f"scores_{subset}.npz"
    elif subset != "test":
        p = p.with_name(f"scores_{subset}.npz")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no score file (run `flownet2 action test"
                                f"{' --subset holdout' if subset == 'holdout' else ''}` first)")
    return p


def fuse(spatial: str | os.PathLike, temporal: str | os.PathLike, *, weight: float | None = TSN_WEIGHT,
         grid=DEFAULT_GRID, out: str | os.PathLike | None = None, aggregate: str = DEFAULT_AGGREGATE,
         log=print) -> FusionResult:
    """Fuse two streams' test scores (module docstring). ``spatial``/``temporal`` are
    run folders or ``scores_test.npz`` files. ``weight``: the temporal weight, by default
    TSN's fixed 0.6 as the published protocols fix it; ``None``: chosen on their
    ``scores_holdout.npz`` (our option). ``aggregate``: ``"softmax"`` (mean softmax
    scores, Simonyan & Zisserman) or ``"logits"`` (TSN: mean logits fused before softmax;
    a score file without logits is a ValueError naming it)."""
    _check_aggregate(aggregate)
    s_file, t_file = _score_file(spatial, "test"), _score_file(temporal, "test")
    s_test, t_test = load_scores(s_file), load_scores(t_file)
    for name, s, want in (("spatial", s_test, "rgb"), ("temporal", t_test, "flow")):
        if s.meta.get("modality") not in (want, None):
            raise ValueError(f"the {name} scores come from a {s.meta.get('modality')} model, expected {want}")
    if s_test.meta.get("split") != t_test.meta.get("split"):
        raise ValueError(f"spatial scores are for split {s_test.meta.get('split')}, "
                         f"temporal for split {t_test.meta.get('split')}")
    if aggregate == "logits":
        _need_logits(s_test, str(s_file))
        _need_logits(t_test, str(t_file))
    rows: list[dict] = []
    if weight is None:
        s_hold_file, t_hold_file = _score_file(spatial, "holdout"), _score_file(temporal, "holdout")
        s_hold, t_hold = load_scores(s_hold_file), load_scores(t_hold_file)
        if aggregate == "logits":
            _need_logits(s_hold, str(s_hold_file), "holdout")
            _need_logits(t_hold, str(t_hold_file), "holdout")
        weight, rows = choose_weight(s_hold, t_hold, grid, aggregate)
        chosen = "holdout"
    else:
        chosen = "given"
    fused = fuse_scores(s_test, t_test, weight, aggregate)
    metrics = {"spatial": stream_scores(s_test, aggregate).metrics(),
               "temporal": stream_scores(align(s_test, t_test), aggregate).metrics(), "fused": fused.metrics()}
    result = FusionResult(weight, chosen, metrics, rows, fused, aggregate)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_scores(out / "scores_fused_test.npz", fused)
        doc = {"split": s_test.meta.get("split"), "weight": weight, "chosen_on": chosen, "grid": rows,
               "aggregate": aggregate, "convention": CONVENTIONS[aggregate],
               "metrics": metrics, "spatial_meta": s_test.meta, "temporal_meta": t_test.meta}
        atomic_write_text(out / "fusion.json", json.dumps(doc, indent=1))
    if log:
        log(f"[action fuse] temporal weight {weight:.2f} ({chosen}), {_LOG_NAMES[aggregate]}; top-1 spatial "
            f"{100 * metrics['spatial']['top1']:.2f} %, temporal {100 * metrics['temporal']['top1']:.2f} %, "
            f"fused {100 * metrics['fused']['top1']:.2f} %")
    return result
