"""The Table 5 report, built only from the stages' ``result.json`` files of a run folder.

:func:`render_report` writes into ``OUT/report`` (or a folder given):

* ``table5.csv``: one row per flow method, every number exactly as its stage recorded it
  (fractions, seconds), the paper's figures beside them ("not transcribed" unless
  :data:`PAPER` holds one with its source);
* ``table5.md`` (images as files under ``images/``) and ``table5.html`` (the same, images
  embedded: one file to send): the Table 5-style table (F-measure and extracted objects on
  FBMS-59, temporal-stream accuracy on UCF101, plus runtime), per-split and per-shot
  details, plots (F-measure vs accuracy; each vs runtime on a log scale), a strip of
  segmentations and flow pictures per method, and every setting, version and weights hash;
* ``images/``: the plots and strips.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from flownet2_core.io import atomic_write_bytes, atomic_write_text, read_flo, read_image
from flownet2_core.reporting import Document

from .runner import HALVES, RESULT, read_result

__all__ = ["NOT_TRANSCRIBED", "PAPER", "collect_results", "main_table", "paper_value", "render_report", "table5_frame"]

NOT_TRANSCRIBED = "not transcribed"

#: (method, column) → (value, source): figures of the paper's Table 5, each with where it was
#: read. Empty until transcribed from the paper (never from memory); columns are
#: ``"f_measure"`` (%), ``"extracted_objects"`` and ``"accuracy"`` (%).
PAPER: dict[tuple[str, str], tuple[object, str]] = {}


def paper_value(method: str, column: str) -> str:
    """The paper's figure with its source, or "not transcribed"."""
    v = PAPER.get((method, column))
    return NOT_TRANSCRIBED if v is None else f"{v[0]} ({v[1]})"


def collect_results(run_dir: str | os.PathLike) -> dict:
    """``{"methods": [names in first-run order], half: {method: result}}`` of a run folder."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: Table 5 run folder not found")
    res: dict = {h: {} for h in HALVES}
    for half in HALVES:
        for p in sorted((run / half).glob(f"*/{RESULT}")):
            res[half][p.parent.name] = read_result(p)
    names = {m for h in HALVES for m in res[h]}
    if not names:
        raise FileNotFoundError(f"{run}: no finished Table 5 stage (no */*/{RESULT}); run `table5 run` first")
    order: list[str] = []
    runs = read_result(run / "runs.json") or {"runs": []}
    for r in runs["runs"]:
        for m in r["config"]["methods"]:
            if m["name"] in names and m["name"] not in order:
                order.append(m["name"])
    order += sorted(names - set(order))
    return {"methods": order, **res}


def _seg_set(r: dict | None) -> tuple[str | None, dict | None]:
    if not r:
        return None, None
    name = next(iter(r["sets"]))  # the first configured set (Table 5: Trainingset)
    return name, r["sets"][name]["overall"]


def table5_frame(results: dict) -> pd.DataFrame:
    """One row per method with the raw recorded numbers (what ``table5.csv`` holds)."""
    rows = []
    for m in results["methods"]:
        seg, act, rt = (results[h].get(m) for h in HALVES)
        set_name, o = _seg_set(seg)
        row = {"method": m}
        row["fbms_set"] = set_name
        for k in ("precision", "recall", "f_measure", "density", "extracted_objects", "visible_objects", "shots"):
            row[f"fbms_{k}"] = o[k] if o else None
        row["ucf101_splits"] = " ".join(sorted(act["splits"])) if act else None
        for k in (1, 2, 3):
            row[f"ucf101_top1_split{k}"] = act["splits"][str(k)]["top1"] if act and str(k) in act["splits"] else None
        row["ucf101_mean_top1"] = act["mean_top1"] if act else None
        row["ucf101_chance"] = act["chance"] if act else None
        row["runtime_s_per_frame"] = rt["seconds_per_frame"] if rt else None
        row["runtime_resolution"] = "x".join(map(str, rt["resolution"][::-1])) if rt else None
        row["runtime_device"] = rt.get("device") if rt else None
        ident = next((r["key"]["method"] for r in (seg, act, rt) if r), {})
        row["options"] = json.dumps(ident.get("options", {}), sort_keys=True)
        row["weights_sha256"] = ident.get("weights_sha256")
        for col in ("f_measure", "extracted_objects", "accuracy"):
            row[f"paper_{col}"] = paper_value(m, col)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- formatting
def _pct(v, digits=2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}"


def _num(v, fmt: str) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _ms(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{1000 * v:.1f}"


def _objects(row) -> str:
    k, n = row["fbms_extracted_objects"], row["fbms_visible_objects"]
    return "—" if k is None or (isinstance(k, float) and math.isnan(k)) else f"{int(k)}/{int(n)}"


def main_table(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The Table 5-style table: headers and formatted rows."""
    set_name = next((s for s in df["fbms_set"] if s), "FBMS-59")
    splits = next((s for s in df["ucf101_splits"] if s), "")
    headers = ["method", f"F-measure % ({set_name})", "extracted objects", "precision %", "recall %",
               "density %", "temporal stream accuracy %" + (f" (mean of splits {splits.replace(' ', ', ')})" if splits else ""),
               "runtime ms/frame", "paper F-measure", "paper objects", "paper accuracy"]
    rows = []
    for _, r in df.iterrows():
        rows.append([r["method"], _pct(r["fbms_f_measure"]), _objects(r), _pct(r["fbms_precision"]),
                     _pct(r["fbms_recall"]), _num(r["fbms_density"], ".3f"),
                     _pct(r["ucf101_mean_top1"], 1), _ms(r["runtime_s_per_frame"]),
                     r["paper_f_measure"], r["paper_extracted_objects"], r["paper_accuracy"]])
    return headers, rows


# --------------------------------------------------------------------------- figures
def _plots(df: pd.DataFrame, images: Path) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []

    def scatter(x, y, xlabel, ylabel, name, caption, logx=False):
        sel = df[df[x].notna() & df[y].notna()]
        if logx:
            sel = sel[sel[x] > 0]
        if not len(sel):
            return
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        ax.scatter(sel[x], sel[y])
        for _, r in sel.iterrows():
            ax.annotate(r["method"], (r[x], r[y]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(images / name, dpi=90)
        plt.close(fig)
        out.append((name, caption))

    d = df.copy()
    for c in ("fbms_f_measure", "ucf101_mean_top1", "runtime_s_per_frame"):
        d[c] = pd.to_numeric(d[c], errors="coerce")
    d["runtime_ms"] = 1000 * d["runtime_s_per_frame"]
    df = d
    scatter("fbms_f_measure", "ucf101_mean_top1", "FBMS-59 F-measure", "UCF101 temporal accuracy",
            "f_vs_accuracy.png", "Motion segmentation F-measure against temporal-stream accuracy, per flow method")
    scatter("runtime_ms", "fbms_f_measure", "runtime per frame pair (ms, log scale)", "FBMS-59 F-measure",
            "f_vs_runtime.png", "F-measure against flow runtime (methods without a runtime, e.g. exact, left out)",
            logx=True)
    scatter("runtime_ms", "ucf101_mean_top1", "runtime per frame pair (ms, log scale)", "UCF101 temporal accuracy",
            "accuracy_vs_runtime.png", "Temporal-stream accuracy against flow runtime (exact flow left out)", logx=True)
    return out


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if not ok:  # pragma: no cover
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _strips(results: dict, run: Path, images: Path) -> list[tuple[str, str]]:
    """Per method: overlays of the first sequence at its first, middle and last frame (top)
    and the flow leaving those frames (bottom), all methods on one colour scale."""
    from flownet2_core.viz import flow_to_color

    picks = {}
    for m in results["methods"]:
        seg = results["segmentation"].get(m)
        if not seg or not seg["sequences"]:
            continue
        s = seg["sequences"][0]
        if not s.get("images"):
            continue
        n = s["frames"]
        ts = sorted({0, n // 2, n - 1})
        seq_out = run / "segmentation" / m / s["set"] / s["sequence"]
        # Overlays and flow files are named after their frame; frames sort by name.
        stems = [p.stem for p in sorted((seq_out / "overlays").glob("*.jpg"))]
        if len(stems) != n:
            continue
        overlays = [seq_out / "overlays" / f"{stems[t]}.jpg" for t in ts]
        flows = [Path(s["flow_cache"]) / f"forward_{stems[min(t, n - 2)]}.flo" for t in ts]
        if all(p.is_file() for p in overlays + flows):
            picks[m] = (s, ts, [read_image(p) for p in overlays], [read_flo(p) for p in flows])
    if not picks:
        return []
    mags = [np.percentile(np.linalg.norm(f, axis=-1), 99) for v in picks.values() for f in v[3]]
    scale = max(1.0, float(max(mags)))
    out = []
    for m, (s, ts, ovs, flows) in picks.items():
        top = np.concatenate(ovs, axis=1)
        bottom = np.concatenate([flow_to_color(f, max_flow=scale) for f in flows], axis=1)
        name = f"strip_{m}.png"
        atomic_write_bytes(images / name, _png(np.concatenate([top, bottom], axis=0)))
        out.append((name, f"{m}: {s['set']}/{s['sequence']}, frames {', '.join(map(str, ts))}: segmentation "
                          f"overlays (top), flow (bottom, saturated at {scale:.1f} px)"))
    return out


# --------------------------------------------------------------------------- page
def render_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                  title: str = "Table 5: flow methods in motion segmentation and action recognition"
                  ) -> dict:
    """Render the report of a run folder; returns ``{"md", "html", "csv"}`` → paths, and
    ``"plots"``: (file name under ``images/``, caption) of each plot drawn."""
    run = Path(run_dir)
    results = collect_results(run)
    out = Path(out_dir) if out_dir is not None else run / "report"
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    df = table5_frame(results)
    paths = {"csv": out / "table5.csv", "md": out / "table5.md", "html": out / "table5.html"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))

    doc = Document(title)
    section, para, table, code = doc.section, doc.para, doc.table, doc.code

    def image(name: str, caption: str) -> None:
        doc.image(images / name, caption, f"images/{name}")

    section("Table 5")
    para("Rows are flow methods. Motion segmentation: long-term trajectories from each method's flow, "
         "clustered, scored by the port of the official FBMS-59 evaluation (MoSegEval v2.0; extracted objects: "
         "F > threshold, background excluded). Action recognition: the temporal stream trained on each method's "
         "flow stacks, top-1 accuracy with the standard test protocol, mean over the splits run. Runtime: median "
         "per frame pair on this machine (device in the run details). Paper columns: the paper's figure with its "
         f"source, or '{NOT_TRANSCRIBED}' (never a number from memory).")
    table(*main_table(df))

    plots = _plots(df, images)
    if plots:
        section("Plots")
        for name, cap in plots:
            image(name, cap)

    seg = results["segmentation"]
    if seg:
        section("Motion segmentation (FBMS-59) details")
        para("Every segmentation number scores the sparse trajectory labels of the Tracks*.dat files, as the "
             "FBMS protocol does; the dense label maps and overlays are only pictures.")
        rows = []
        for m in results["methods"]:
            r = seg.get(m)
            for set_name, sres in (r["sets"].items() if r else []):
                o = sres["overall"]
                rows.append([m, set_name, sres["mode"], o["shots"], _pct(o["precision"]),
                             _pct(o["precision_std"]), _pct(o["recall"]), _pct(o["recall_std"]),
                             _pct(o["f_measure"]), f"{o['density']:.3f}",
                             f"{o['extracted_objects']}/{o['visible_objects']}", f"{r['seconds']:.1f}"])
        table(["method", "set", "frames", "shots", "P %", "P std", "R %", "R std", "F %", "density %",
               "objects", "stage s"], rows)
        rows = []
        for m in results["methods"]:
            r = seg.get(m)
            for set_name, sres in (r["sets"].items() if r else []):
                for sh in sres["shots"]:
                    rows.append([m, set_name, Path(sh["def_file"]).parent.parent.name, _pct(sh["precision"]),
                                 _pct(sh["recall"]), _pct(sh["f_measure"]), f"{sh['density']:.3f}",
                                 f"{sh['extracted_objects']}/{sh['visible_objects']}"])
        doc.raw("\nPer shot:\n")
        table(["method", "set", "shot", "P %", "R %", "F %", "density %", "objects"], rows)

    strips = _strips(results, run, images)
    if strips:
        section("Example segmentations and flow")
        for name, cap in strips:
            image(name, cap)

    act = results["action"]
    if act:
        section("Action recognition (UCF101 temporal stream) details")
        rows = []
        for m in results["methods"]:
            r = act.get(m)
            for k, s in sorted((r["splits"].items() if r else []), key=lambda kv: int(kv[0])):
                rows.append([m, k, _pct(s["top1"], 1), _pct(s.get("top5"), 1), s["videos"], s["classes"],
                             _pct(s["chance"], 1), f"{s['train_seconds']:.1f}", f"{s['train_clips_per_s']:.0f}",
                             s["processes"]])
        table(["method", "split", "top-1 %", "top-5 %", "test videos", "classes", "chance %", "train s",
               "train clips/s", "processes"], rows)

    rt = results["runtime"]
    if rt:
        section("Flow runtime")
        rows = [[m, _ms(r["seconds_per_frame"]), f"{r['resolution'][1]}×{r['resolution'][0]}", r["pairs"],
                 r.get("device") or "—", r["source"], r.get("note", "")]
                for m in results["methods"] if (r := rt.get(m))]
        table(["method", "median ms/pair", "size", "pairs timed", "device", "frames from", "note"], rows)

    section("Methods, weights, settings and versions")
    rows = []
    for m in results["methods"]:
        stages = {h: results[h].get(m) for h in HALVES}
        ident = next((r["key"]["method"] for r in stages.values() if r), {})
        stacks = (stages["action"] or {}).get("stacks", {})
        rows.append([m, json.dumps(ident.get("options", {}), sort_keys=True), ident.get("weights_sha256") or "—",
                     stacks.get("folder", "—"), stacks.get("weights_sha256") or "—"])
    table(["method", "flow options", "weights SHA-256", "UCF101 stacks", "stacks weights SHA-256"], rows)
    for half in ("segmentation", "action"):
        keys = {m: {k: v for k, v in r["key"].items() if k not in ("method", "stacks")}
                for m, r in results[half].items()}
        distinct = {json.dumps(v, sort_keys=True, indent=1) for v in keys.values()}
        if not distinct:
            continue
        doc.raw(f"\n{half} settings{' (all methods)' if len(distinct) == 1 else ''}:\n",
                f"<h3>{html.escape(half)} settings</h3>")
        if len(distinct) == 1:
            code(distinct.pop())
        else:
            for m, v in keys.items():
                para(m)
                code(json.dumps(v, sort_keys=True, indent=1))
    vers = {json.dumps(r["versions"], sort_keys=True, indent=1) for h in HALVES for r in results[h].values()}
    doc.raw("\nVersions" + (" (differ between stages)" if len(vers) > 1 else "") + ":\n", "<h3>Versions</h3>")
    for v in sorted(vers):
        code(v)
    runs = read_result(run / "runs.json")
    if runs:
        para(f"{len(runs['runs'])} runs of `table5 run` recorded in runs.json (every configuration, in order).")

    atomic_write_text(paths["md"], doc.markdown())
    atomic_write_text(paths["html"], doc.html())
    return {**paths, "plots": plots}
