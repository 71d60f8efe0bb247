"""Reports over splits: per split and the mean over the splits, as CSV, Markdown and PNGs.

Inputs are what the other steps wrote: ``fusion.json`` (from ``fuse``: spatial, temporal
and fused metrics of one split) and/or ``metrics_test.json`` (from ``test``: one stream
of one split); a folder stands for the file of either name inside it. Outputs::

    report.md          the table (with the aggregation of each split), the flow stacks
                       used (method, weights SHA-256) and reference numbers from the literature
    report.csv         one row per split and stream, plus the mean rows (column "aggregate")
    per_class.csv      per-class accuracy per split and stream
    report.json        everything above, machine-readable
    confusion_split<K>_<stream>.png   row-normalised confusion matrices

Tables are written by pandas (CSV) and :func:`flownet2_core.reporting.markdown_table`; figures
by scikit-learn's ``ConfusionMatrixDisplay`` on a matplotlib Agg canvas (no global backend).

Each split states its aggregation (see :mod:`.fusion`): ``softmax`` (mean softmax scores,
Simonyan & Zisserman; also a fusion.json written before the key existed, and every
metrics_test.json) or ``logits`` (TSN: mean logits fused before softmax).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from flownet2_core.reporting import markdown_table
from flownet2_core.io import atomic_output, atomic_write_text

__all__ = ["collect_results", "write_report", "plot_confusion", "LITERATURE", "STREAMS"]

STREAMS = ("spatial", "temporal", "fused")

#: How report.md describes each aggregation (fusion.AGGREGATIONS).
_AGGREGATION_TEXT = {
    "softmax": ("softmax = each stream's per-video mean of its inputs' softmax scores, fused = (1 − w)·spatial "
                "+ w·temporal of those (Simonyan & Zisserman)"),
    "logits": ("logits = each stream's per-video mean of its inputs' logits (raw class scores), fused = "
               "softmax((1 − w)·spatial + w·temporal) of those (TSN); stream accuracies from the softmax of "
               "the mean logits"),
}

#: Reference UCF101 accuracies (%) from the literature, for orientation.
LITERATURE = [
    ("Simonyan & Zisserman 2014, spatial (CNN-M, ImageNet)", "", "73.0 (Table 3)"),
    ("Simonyan & Zisserman 2014, temporal (L = 10, mean subtraction)", "81.0 (Table 1b)", "83.7 (Table 3)"),
    ("Simonyan & Zisserman 2014, two-stream, fusion by averaging", "", "86.9 (Table 3)"),
    ("Deeper networks with TV-L1 flow (e.g. TSN-style two-stream)", "", "≈ 85–88 (temporal ≈ 81–87)"),
    ("FlowNet 2.0 paper, Table 5 (temporal stream per flow method)", "", "paper value: not transcribed"),
]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _resolve(p: Path) -> Path:
    if p.is_dir():
        for name in ("fusion.json", "metrics_test.json"):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p}: holds neither fusion.json nor metrics_test.json")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such result file")
    return p


def collect_results(inputs: list[str | os.PathLike]) -> dict[int, dict]:
    """``{split: {"spatial"|"temporal"|"fused": metrics, "weight", "aggregate", "flow_method",
    "weights_sha256", "sources"}}`` from fusion.json / metrics_test.json files. ``aggregate``
    is fusion.json's (``"softmax"`` when it has none: written before the key existed);
    metrics_test.json holds the metrics of mean softmax scores (``"softmax"``)."""
    splits: dict[int, dict] = {}
    for raw in inputs:
        path = _resolve(Path(raw))
        doc = _read_json(path)
        if "metrics" in doc and "temporal_meta" in doc:          # fusion.json
            split, streams = doc.get("split"), dict(doc["metrics"])
            tmeta, weight = doc["temporal_meta"], doc["weight"]
            metas = [doc["spatial_meta"], doc["temporal_meta"]]
            aggregate = doc.get("aggregate", "softmax")
        elif "top1" in doc and "meta" in doc:                     # metrics_<subset>.json
            meta = doc["meta"]
            if meta.get("subset") != "test":
                raise ValueError(f"{path}: scores of the {meta.get('subset')!r} subset, not the test videos")
            split = meta.get("split")
            stream = {"rgb": "spatial", "flow": "temporal"}[meta["modality"]]
            streams, tmeta, weight = {stream: doc}, (meta if stream == "temporal" else {}), None
            metas = [meta]
            aggregate = "softmax"
        else:
            raise ValueError(f"{path}: neither a fusion.json nor a metrics_test.json")
        entry = splits.setdefault(int(split), {"sources": []})
        for name, m in streams.items():
            if name in entry:
                raise ValueError(f"{path}: split {split} {name} results given twice "
                                 f"(also in {', '.join(entry['sources'])})")
            entry[name] = m
        if weight is not None:
            entry["weight"] = weight
        entry["aggregate"] = aggregate
        entry.setdefault("protocols", set()).update(
            f"{m['positions']} positions × {m['crops']} crops" for m in metas if "positions" in m)
        if tmeta:
            entry["flow_method"] = tmeta.get("flow_method")
            entry["weights_sha256"] = tmeta.get("weights_sha256")
            entry["stacks"] = tmeta.get("stacks")
        entry["sources"].append(str(path))
    if not splits:
        raise ValueError("no results given")
    return dict(sorted(splits.items()))


def plot_confusion(conf: np.ndarray, classes: list[str], title: str, path: str | os.PathLike):
    """Row-normalised confusion matrix as a PNG, drawn by scikit-learn's
    ``ConfusionMatrixDisplay`` on a matplotlib Agg canvas. Class names label the axes
    up to 40 classes; up to 15 classes the non-empty cells show the fraction. Returns the
    display (its ``im_``, ``text_`` and ``figure_``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    conf = np.asarray(conf, dtype=np.float64)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    n = len(classes)
    side = min(16.0, max(4.5, 0.28 * n + 2.5))
    fig = Figure(figsize=(side + 1.2, side), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    disp = ConfusionMatrixDisplay(norm, display_labels=list(classes) if n <= 40 else None)
    disp.plot(ax=ax, cmap="Blues", colorbar=False, include_values=n <= 15, values_format=".2f",
              xticks_rotation="vertical", im_kw={"vmin": 0, "vmax": 1}, text_kw={"fontsize": 7})
    fig.colorbar(disp.im_, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if disp.text_ is not None:
        for (i, j), text in np.ndenumerate(disp.text_):
            text.set_visible(bool(conf[i, j]))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    if n <= 40:
        ax.tick_params(labelsize=7)
    else:  # 101 numbered ticks are unreadable: no ticks
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return disp


def _csv(columns: list[str], rows: list[list]) -> str:
    """CSV text (``DataFrame.to_csv``; cells written as given, quoted where needed)."""
    return pd.DataFrame(rows, columns=columns, dtype=object).to_csv(index=False, lineterminator="\n")


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def write_report(inputs: list[str | os.PathLike], out: str | os.PathLike, title: str = "UCF101 two-stream results",
                 log=print) -> dict:
    """Write the report files (module docstring); returns report.json's content."""
    splits = collect_results(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    present = [s for s in STREAMS if any(s in e for e in splits.values())]
    # Mean over splits, for each stream that every split has.
    full = [s for s in present if all(s in e for e in splits.values())]
    keys = ("top1", "top5", "mean_class_accuracy")
    mean = {s: {k: float(np.mean([e[s][k] for e in splits.values()])) for k in keys} for s in full}
    mean_label = ("mean (3 splits)" if sorted(splits) == [1, 2, 3]
                  else f"mean (split{'s' if len(splits) > 1 else ''} {', '.join(map(str, splits))})")
    aggregations = sorted({e["aggregate"] for e in splits.values()}, key=lambda a: (a != "softmax", a))
    mean_aggregate = aggregations[0] if len(aggregations) == 1 else "mixed: " + ", ".join(aggregations)

    headers = (["split"] + [f"{s} top-1 %" for s in present] + [f"{s} top-5 %" for s in present]
               + ["temporal weight", "aggregation"])
    rows = []
    for k, e in splits.items():
        rows.append([str(k)] + [_pct(e.get(s, {}).get("top1")) for s in present]
                    + [_pct(e.get(s, {}).get("top5")) for s in present]
                    + ["" if e.get("weight") is None else f"{e['weight']:.2f}", e["aggregate"]])
    rows.append([mean_label] + [_pct(mean.get(s, {}).get("top1")) for s in present]
                + [_pct(mean.get(s, {}).get("top5")) for s in present] + ["", mean_aggregate])

    # CSV: one row per split and stream (numbers formatted here, so pandas writes them as given).
    cols = ["split", "stream", "top1", "top5", "mean_class_accuracy", "videos", "temporal_weight",
            "aggregate", "flow_method", "weights_sha256"]
    table = [[k, s, f"{e[s]['top1']:.6f}", f"{e[s]['top5']:.6f}", f"{e[s]['mean_class_accuracy']:.6f}",
              e[s]["videos"], "" if e.get("weight") is None else e["weight"], e["aggregate"],
              e.get("flow_method") or "", e.get("weights_sha256") or ""]
             for k, e in splits.items() for s in present if s in e]
    table += [[mean_label, s, f"{m['top1']:.6f}", f"{m['top5']:.6f}", f"{m['mean_class_accuracy']:.6f}",
               "", "", mean_aggregate, "", ""] for s, m in mean.items()]
    atomic_write_text(out / "report.csv", _csv(cols, table))

    # Per-class accuracy.
    per_class = [[k, s, cls, "" if acc is None else f"{acc:.6f}"]
                 for k, e in splits.items() for s in present if s in e for cls, acc in e[s]["per_class"].items()]
    atomic_write_text(out / "per_class.csv", _csv(["split", "stream", "class", "accuracy"], per_class))

    # Confusion matrices.
    pngs = []
    for k, e in splits.items():
        for s in present:
            if s in e and "confusion" in e[s]:
                name = f"confusion_split{k}_{s}.png"
                plot_confusion(np.array(e[s]["confusion"]), e[s]["classes"],
                               f"split {k}, {s}: top-1 {100 * e[s]['top1']:.1f} %", out / name)
                pngs.append(name)

    methods = sorted({str(e.get("flow_method")) for e in splits.values() if "temporal" in e})
    hashes = sorted({e.get("weights_sha256") or "none (a method without a weights file)"
                     for e in splits.values() if "temporal" in e})
    protocols = sorted(set().union(*(e.get("protocols", set()) for e in splits.values())))
    stacks = sorted({str(e.get("stacks")) for e in splits.values() if e.get("stacks")})
    md = [f"# {title}\n\n",
          f"Flow stacks: method **{', '.join(methods) or 'n/a'}**, weights SHA-256 "
          f"`{', '.join(hashes) or 'n/a'}`" + (f" (stacks: `{', '.join(stacks)}`)" if stacks else "") + ".\n\n",
          (f"Video-level accuracy on the test videos ({' / '.join(protocols) or 'protocol not recorded'}), "
           "per split and the mean over splits. Aggregation per video (column \"aggregation\"): "
           + "; ".join(_AGGREGATION_TEXT.get(a, a) for a in aggregations) + ". Temporal weight w."
           + (" **The splits use different aggregations: the mean mixes them.**" if len(aggregations) > 1 else "")
           + "\n\n"),
          markdown_table(headers, rows), "\n## Reference numbers (UCF101, %)\n\n",
          markdown_table(["source", "split 1", "3-split mean"], [list(r) for r in LITERATURE]),
          "\n## Confusion matrices\n\n" + "".join(f"![{p}]({p})\n\n" for p in pngs),
          "Per-class accuracies: [per_class.csv](per_class.csv); table: [report.csv](report.csv).\n"]
    atomic_write_text(out / "report.md", "".join(md))
    doc = {"splits": {str(k): {kk: (sorted(vv) if isinstance(vv, set) else vv) for kk, vv in e.items()}
                      for k, e in splits.items()},
           "mean": mean, "mean_label": mean_label, "aggregations": aggregations, "flow_methods": methods,
           "weights_sha256": hashes, "figures": pngs}
    atomic_write_text(out / "report.json", json.dumps(doc, indent=1))
    if log:
        log(f"[action report] {out / 'report.md'}: " + "; ".join(
            f"{mean_label} {s} {100 * m['top1']:.2f} %" for s, m in mean.items()) + f" ({mean_aggregate} aggregation)")
    return doc
