"""Late fusion of the two streams: a weighted average of per-video softmax scores.

``fused = (1 − w) · spatial + w · temporal`` with the temporal weight ``w`` either
given (Simonyan & Zisserman averaged, ``w = 0.5``; TSN weights the streams 1 : 1.5,
``w = 0.6``) or chosen on the held-out training videos: the ``w`` on a grid that
maximises held-out top-1, ties broken by the lower held-out negative log-likelihood,
then by closeness to 0.5. The test scores never influence the choice.

Inputs are the score files of ``flownet2 action test`` (a run folder holding
``scores_test.npz`` and, for a chosen weight, ``scores_holdout.npz``). Output folder::

    fusion.json              weight, how it was chosen, the grid, and test metrics of
                             spatial, temporal and fused (with each stream's meta)
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

__all__ = ["align", "fuse_scores", "choose_weight", "fuse", "FusionResult", "DEFAULT_GRID", "TSN_WEIGHT",
           "SIMONYAN_WEIGHT"]

#: TSN fuses RGB : flow as 1 : 1.5 (temporal weight 1.5 / 2.5); Simonyan & Zisserman average (1 : 1).
TSN_WEIGHT = 0.6
SIMONYAN_WEIGHT = 0.5

DEFAULT_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 21))


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
                    temporal.meta)


def fuse_scores(spatial: ScoreSet, temporal: ScoreSet, weight: float) -> ScoreSet:
    """``(1 − weight)·spatial + weight·temporal`` per video (videos aligned by frame_dir)."""
    if not 0 <= weight <= 1:
        raise ValueError(f"the temporal weight must be in [0, 1], got {weight}")
    t = align(spatial, temporal)
    meta = {"fusion_weight": weight, "spatial": spatial.meta, "temporal": temporal.meta}
    return ScoreSet(t.frame_dirs, t.labels, ((1 - weight) * spatial.scores + weight * t.scores).astype(np.float32),
                    t.classes, meta)


def choose_weight(spatial: ScoreSet, temporal: ScoreSet, grid=DEFAULT_GRID) -> tuple[float, list[dict]]:
    """The temporal weight with the best held-out top-1 (see module docstring) and the
    grid: ``[{"weight", "top1", "nll"}, …]``."""
    t = align(spatial, temporal)
    rows = []
    for w in grid:
        p = (1 - w) * spatial.scores + w * t.scores
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


def fuse(spatial: str | os.PathLike, temporal: str | os.PathLike, *, weight: float | None = None,
         grid=DEFAULT_GRID, out: str | os.PathLike | None = None, log=print) -> FusionResult:
    """Fuse two streams' test scores (module docstring). ``spatial``/``temporal`` are
    run folders or ``scores_test.npz`` files; with ``weight=None`` their
    ``scores_holdout.npz`` choose the weight."""
    s_test, t_test = load_scores(_score_file(spatial, "test")), load_scores(_score_file(temporal, "test"))
    for name, s, want in (("spatial", s_test, "rgb"), ("temporal", t_test, "flow")):
        if s.meta.get("modality") not in (want, None):
            raise ValueError(f"the {name} scores come from a {s.meta.get('modality')} model, expected {want}")
    if s_test.meta.get("split") != t_test.meta.get("split"):
        raise ValueError(f"spatial scores are for split {s_test.meta.get('split')}, "
                         f"temporal for split {t_test.meta.get('split')}")
    rows: list[dict] = []
    if weight is None:
        s_hold = load_scores(_score_file(spatial, "holdout"))
        t_hold = load_scores(_score_file(temporal, "holdout"))
        weight, rows = choose_weight(s_hold, t_hold, grid)
        chosen = "holdout"
    else:
        chosen = "given"
    fused = fuse_scores(s_test, t_test, weight)
    metrics = {"spatial": s_test.metrics(), "temporal": align(s_test, t_test).metrics(), "fused": fused.metrics()}
    result = FusionResult(weight, chosen, metrics, rows, fused)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_scores(out / "scores_fused_test.npz", fused)
        doc = {"split": s_test.meta.get("split"), "weight": weight, "chosen_on": chosen, "grid": rows,
               "metrics": metrics, "spatial_meta": s_test.meta, "temporal_meta": t_test.meta,
               "convention": "fused = (1 - weight) * spatial + weight * temporal (softmax scores)"}
        atomic_write_text(out / "fusion.json", json.dumps(doc, indent=1))
    if log:
        log(f"[action fuse] temporal weight {weight:.2f} ({chosen}); top-1 spatial "
            f"{100 * metrics['spatial']['top1']:.2f} %, temporal {100 * metrics['temporal']['top1']:.2f} %, "
            f"fused {100 * metrics['fused']['top1']:.2f} %")
    return result
