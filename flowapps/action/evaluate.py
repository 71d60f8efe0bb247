"""The two-stream test protocol, metrics and per-video score files.

Protocol (Simonyan & Zisserman 2014): from each test video take 25 evenly spaced
positions (an RGB frame, or a stack of L flow fields starting there); from each take 10
inputs — the four corners and the centre, and their mirror images; average the softmax
scores of all 250 inputs. The video's prediction is the arg-max of that average.

Both aggregations are saved, from the same pass: the per-video mean of the inputs'
softmax scores (above; Simonyan & Zisserman) and the per-video mean of their raw class
scores, the logits before softmax (TSN, Wang et al. 2016, which fuses the streams'
mean logits before a softmax). The metrics here are those of the mean softmax scores;
:func:`.fusion.fuse` chooses between the two with ``aggregate``.

Outputs, next to the model unless ``out`` says otherwise::

    scores_<subset>.npz     frame_dirs (N,) str, labels (N,) int64, scores (N, C) float32
                            (per-video mean softmax), logits (N, C) float32 (per-video
                            mean logits; absent from files written before they were
                            saved), classes (C,) str, meta (JSON str)
    metrics_<subset>.json   top-1, top-5, mean class accuracy, per-class accuracy,
                            confusion matrix (rows: true class, columns: predicted), meta

``meta`` records the modality, split, protocol, model file and the flow method and
weights hash of the stacks, so fusion and reports never need to re-run a network.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from flownet2_core.io import atomic_output, atomic_write_text

from .data import StreamConfig, TestDataset, VideoRecord, read_annotations, split_list
from .train import load_model

__all__ = ["ScoreSet", "classification_metrics", "test_model", "save_scores", "load_scores",
           "format_metrics"]


@dataclass
class ScoreSet:
    """Per-video scores of one stream (or of a fusion) on one subset."""

    frame_dirs: list[str]
    labels: np.ndarray      # (N,) int64
    scores: np.ndarray      # (N, C) float32, rows sum to 1
    classes: list[str]
    meta: dict
    #: (N, C) float32 per-video mean logits (raw class scores before softmax, TSN's
    #: aggregation), or None (score files written before they were saved; fused scores
    #: of softmax aggregation).
    logits: np.ndarray | None = None

    def metrics(self) -> dict:
        return classification_metrics(self.scores, self.labels, len(self.classes), self.classes)


def classification_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int,
                           classes: list[str] | None = None) -> dict:
    """Top-1/top-5 accuracy, mean class accuracy, per-class accuracy and the confusion
    matrix (``confusion[true][pred]`` counts) of per-video ``scores`` (N, C).

    scikit-learn computes them: ``confusion_matrix`` (over all ``num_classes`` labels),
    ``top_k_accuracy_score`` (k = 5; with C ≤ 5 classes every video is a top-5 hit) and
    ``balanced_accuracy_score`` (the mean of the per-class recalls over the classes that
    have test videos). The prediction is the arg-max (ties: the lower class index);
    top-5 ties at the 5th place go to the higher index (scikit-learn's rule).
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, top_k_accuracy_score

    scores, labels = np.asarray(scores), np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} do not match")
    if len(labels) == 0:
        raise ValueError("no videos to score")
    if scores.shape[1] != num_classes or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"scores {scores.shape} and labels 0…{labels.max()} do not fit {num_classes} classes")
    pred = scores.argmax(1)
    everything = np.arange(num_classes)
    conf = confusion_matrix(labels, pred, labels=everything)
    k = 5
    top5 = 1.0 if k >= num_classes else top_k_accuracy_score(labels, scores, k=k, labels=everything)
    with warnings.catch_warnings():  # predicted classes without test videos do not count
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        mean_class = balanced_accuracy_score(labels, pred)
    support = conf.sum(1)
    per_class = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    names = classes or [str(i) for i in range(num_classes)]
    return {"top1": float(np.trace(conf) / len(labels)), "top5": float(top5),
            "mean_class_accuracy": float(mean_class), "videos": int(len(labels)),
            "per_class": {names[i]: (None if np.isnan(a) else float(a)) for i, a in enumerate(per_class)},
            "confusion": conf.tolist(), "classes": list(names)}


def format_metrics(name: str, m: dict) -> str:
    return (f"{name}: top-1 {100 * m['top1']:.2f} %, top-5 {100 * m['top5']:.2f} %, "
            f"mean class accuracy {100 * m['mean_class_accuracy']:.2f} % over {m['videos']} videos")


def save_scores(path: str | os.PathLike, s: ScoreSet) -> None:
    """Write a :class:`ScoreSet` as ``.npz`` (atomically; no pickled objects); the key
    ``logits`` only when the set has them."""
    extra = {} if s.logits is None else {"logits": np.asarray(s.logits, dtype=np.float32)}
    with atomic_output(path, suffix=".npz") as tmp:  # savez adds .npz to a name without it
        np.savez(tmp, frame_dirs=np.asarray(s.frame_dirs, dtype=str), labels=s.labels.astype(np.int64),
                 scores=s.scores.astype(np.float32), classes=np.asarray(s.classes, dtype=str),
                 meta=np.asarray(json.dumps(s.meta)), **extra)


def load_scores(path: str | os.PathLike) -> ScoreSet:
    """Read a score file written by :func:`save_scores` (``logits`` None when the file has none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such score file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return ScoreSet([str(x) for x in z["frame_dirs"]], z["labels"].astype(np.int64),
                            z["scores"].astype(np.float32), [str(x) for x in z["classes"]],
                            json.loads(str(z["meta"])),
                            z["logits"].astype(np.float32) if "logits" in z.files else None)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a score file written by `flownet2 action test` ({exc})") from None


def test_model(model_path: str | os.PathLike, stacks: str | os.PathLike | None = None, *,
               subset: str = "test", list_file: str | os.PathLike | None = None, split: int | None = None,
               num_positions: int = 25, crops: int = 10, batch_positions: int = 4, workers: int = 2,
               device: str | None = None, out: str | os.PathLike | None = None, progress: bool = True,
               cache_mb: float = 0.0, log=print) -> ScoreSet:
    """Run the test protocol (module docstring) and save scores and metrics.

    ``subset``: ``test`` (the split's test list in the stacks folder), ``holdout`` (the
    training videos the run held out), or any name together with ``list_file``.
    ``stacks`` and ``split`` default to the ones the model was trained with.
    Returns the per-video scores (``.metrics()`` gives the numbers) and mean logits.
    """
    model_path = Path(model_path)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, obj = load_model(model_path, dev)
    cfg, scfg = obj["config"], StreamConfig.from_json(obj["stream"])
    stacks = Path(stacks or cfg["stacks"])
    split = split or cfg["split"]
    if list_file is not None:
        records = read_annotations(list_file)
    elif subset == "holdout":
        if not obj["holdout"]:
            raise ValueError(f"{model_path}: the run held out no training videos (train with --holdout F)")
        records = [VideoRecord(d, int(n), int(lab)) for d, n, lab in obj["holdout"]]
    elif subset == "test":
        records = read_annotations(split_list(stacks, split, "test", scfg.modality))
    else:
        raise ValueError(f"subset must be 'test' or 'holdout' unless a list file is given, got {subset!r}")
    num_classes = obj["num_classes"]
    bad = [r for r in records if r.label >= num_classes]
    if bad:
        raise ValueError(f"{bad[0].frame_dir}: label {bad[0].label} >= the model's {num_classes} classes")

    ds = TestDataset(records, stacks, scfg, num_positions=num_positions, crops=crops, cache_mb=cache_mb)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_positions, shuffle=False, num_workers=workers)
    sums = np.zeros((len(records), num_classes), np.float64)
    logit_sums = np.zeros((len(records), num_classes), np.float64)
    counts = np.zeros(len(records), np.int64)
    use_amp = dev.type == "cuda"
    t0 = time.perf_counter()
    with torch.no_grad():
        for x, vid in tqdm(loader, desc=f"test {scfg.modality}", unit="batch", disable=not progress):
            b, c = x.shape[:2]
            with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                logits = model(x.flatten(0, 1).to(dev, non_blocking=True))
            prob = torch.softmax(logits.float(), 1).view(b, c, -1).sum(1).cpu().numpy()
            np.add.at(sums, vid.numpy(), prob)
            np.add.at(logit_sums, vid.numpy(), logits.float().view(b, c, -1).double().sum(1).cpu().numpy())
            np.add.at(counts, vid.numpy(), c)
    seconds = time.perf_counter() - t0
    scores = (sums / counts[:, None]).astype(np.float32)
    mean_logits = (logit_sums / counts[:, None]).astype(np.float32)
    meta = {"modality": scfg.modality, "split": split, "subset": subset, "positions": num_positions,
            "crops": crops, "model": str(model_path.resolve()), "arch": cfg["arch"],
            "stacks": str(stacks.resolve()), "flow_method": obj["manifest"].get("method"),
            "weights_sha256": obj["manifest"].get("weights_sha256"),
            "inputs_per_second": round(int(counts.sum()) / max(seconds, 1e-9), 1)}
    result = ScoreSet([r.frame_dir for r in records], np.array([r.label for r in records], np.int64), scores,
                      list(obj["classes"]), meta, mean_logits)
    out = Path(out) if out else model_path.parent
    out.mkdir(parents=True, exist_ok=True)
    save_scores(out / f"scores_{subset}.npz", result)
    metrics = result.metrics()
    atomic_write_text(out / f"metrics_{subset}.json", json.dumps({**metrics, "meta": meta}, indent=1))
    if log:
        log(f"[action test] {format_metrics(f'{scfg.modality} {subset}', metrics)} "
            f"({num_positions} positions × {crops} crops, {meta['inputs_per_second']:.0f} inputs/s)")
    return result


test_model.__test__ = False  # not a pytest test
