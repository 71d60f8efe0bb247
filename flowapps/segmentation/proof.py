"""The proofs of the motion segmentation (``make proof`` runs ``evaluations/proof_segmentation.py``;
the tests run reduced versions).

1. **Evaluator**: the port of MoSegEval v2.0 against the official program's outputs on the
   golden shots (P/R/F to 2e-5, density to 2e-4, counts equal, and the result files byte for
   byte), per shot and through the all-shots program.
2. **Multicut**: GAEC + Kernighan–Lin with joins against the brute-force optimum over all
   partitions on random graphs of 2–9 nodes: ≥ 95 % optimal, never an invalid cut.
3. **Generated sequences**: 10 FBMS-layout sequences with 2–4 moving objects (seeds 0–9, not
   used to choose any constant), segmented with the exact flow (every moving object extracted,
   F > 0.75, on ≥ 9 of 10) and with OpenCV's DIS and DeepFlow (reported).
4. **Tracking speed**: a 200-frame 640×480 sequence at sampling 8, given the flow: < 30 s.

    python -m evaluations.proof_segmentation [-o proof_out/segmentation] [--methods exact dis deepflow]

Writes ``report.md`` and ``proof.json`` in the output folder; exits 1 when a requirement fails.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from flownet2_core.data.synthetic import render, scene_flow
from flownet2_core.io import write_flo, write_image
from flownet2_core.methods import available_methods
from flownet2_core.reporting import markdown_table

from .fbms import read_shot_list, write_shot_list, write_track_list
from .moseg_eval import evaluate_all, evaluate_shot
from .multicut import brute_force_multicut, gaec, is_valid_multicut, kernighan_lin, multicut_objective
from .pipeline import segment_sequence
from .synthetic import fbms_like_scene, write_synthetic_fbms_set
from .trajectories import FlowStore, track_points

__all__ = ["golden_comparison", "multicut_proof", "synthetic_proof", "tracking_speed", "proof_report",
           "find_golden_cases"]

GOLDEN_ENV = "FBMS_EVAL_CASES"


def find_golden_cases() -> Path | None:
    """The golden-case folder: ``$FBMS_EVAL_CASES``, the copy in the tests, or ../shared."""
    here = Path(__file__).resolve().parents[2]
    for cand in (os.environ.get(GOLDEN_ENV), here / "tests" / "segmentation" / "data" / "fbms_eval_cases",
                 here.parent / "shared" / "fbms_eval_cases"):
        if cand and (Path(cand) / "expected.json").is_file():
            return Path(cand)
    return None


# --------------------------------------------------------------------------
# 1. Evaluator
# --------------------------------------------------------------------------
def golden_comparison(folder: str | os.PathLike) -> dict:
    """Evaluate the golden shots (official programs' outputs under ``official/``) with the port.

    Returns:
        ``{"shots": {name: {"ours": …, "official": …, "numbers_file_identical": bool,
        "matrices_identical": bool, "ok": bool}}, "all": {...}, "ok": bool}``.
    """
    folder = Path(folder)
    expected = json.loads((folder / "expected.json").read_text())
    out = {"shots": {}, "ok": True}
    cwd = os.getcwd()
    os.chdir(folder)               # the official programs ran with this folder as working directory
    try:
        for name, exp in expected["shots"].items():
            res = evaluate_shot(exp["def_file"], exp["track_file"], 0.75)
            ours = res.printed()
            stem = Path(exp["track_file"]).stem
            off_file = Path("official") / name / f"{stem}Numbers.txt"
            err_file = Path("official") / name / "stderr.txt"
            same_file = off_file.is_file() and off_file.read_text() == res.numbers_text()
            same_mat = err_file.is_file() and err_file.read_text() == res.matrices_text()
            ok = (abs(float(res.precision) - exp["precision"]) <= 2e-5 and abs(float(res.recall) - exp["recall"]) <= 2e-5
                  and abs(float(res.f_measure) - exp["f_measure"]) <= 2e-5 and abs(float(res.density) - exp["density"]) <= 2e-4
                  and res.visible_objects == exp["visible_objects"] and res.extracted_objects == exp["extracted_objects"]
                  and res.num_clusters == exp["n_clusters"] and res.num_regions == exp["regions"])
            out["shots"][name] = {
                "ours": {k: ours[k] for k in ("density", "precision", "recall", "f_measure", "visible_objects",
                                              "extracted_objects")},
                "official": {k: exp[k] for k in ("density", "precision", "recall", "f_measure", "visible_objects",
                                                 "extracted_objects")},
                "numbers_file_identical": same_file, "matrices_identical": same_mat, "ok": ok and same_file}
            out["ok"] &= ok and same_file
        if Path("allShots.txt").is_file() and Path("allTracks.txt").is_file():
            allres = evaluate_all("allShots.txt", "all", "allTracks.txt", 0.75)
            out["all"] = allres.as_dict()["overall"]
    finally:
        os.chdir(cwd)
    return out


# --------------------------------------------------------------------------
# 2. Multicut
# --------------------------------------------------------------------------
def multicut_proof(num_graphs: int = 1000, max_nodes: int = 9, seed: int = 0, progress: bool = False) -> dict:
    """GAEC and GAEC + KLj against brute force on random graphs with 2–``max_nodes`` nodes.

    Graphs: density 0.3–1, costs either N(0.3, 1) or U(−1, 1) (alternating). Returns counts
    of optimal solutions (objective within 1e-9 of the brute-force minimum) and of invalid
    (non-transitive) cuts.
    """
    rng = np.random.default_rng(seed)
    stats = {"graphs": 0, "gaec_optimal": 0, "klj_optimal": 0, "invalid": 0, "max_gap": 0.0}
    with tqdm(total=num_graphs, desc="multicut vs brute force", disable=not progress) as bar:
        while stats["graphs"] < num_graphs:
            n = int(rng.integers(2, max_nodes + 1))
            p = rng.uniform(0.3, 1.0)
            iu, ju = np.triu_indices(n, 1)
            keep = rng.random(len(iu)) < p
            edges = np.stack([iu[keep], ju[keep]], 1)
            if not len(edges):
                continue
            costs = rng.normal(0.3, 1.0, len(edges)) if stats["graphs"] % 2 else rng.uniform(-1, 1, len(edges))
            _, opt = brute_force_multicut(n, edges, costs)
            for key, lab in (("gaec", gaec(n, edges, costs)), ("klj", kernighan_lin(n, edges, costs))):
                obj = multicut_objective(edges, costs, lab)
                if obj <= opt + 1e-9:
                    stats[f"{key}_optimal"] += 1
                elif key == "klj":
                    stats["max_gap"] = max(stats["max_gap"], obj - opt)
                if not is_valid_multicut(n, edges, lab[edges[:, 0]] != lab[edges[:, 1]]):
                    stats["invalid"] += 1
            stats["graphs"] += 1
            bar.update(1)
    g = stats["graphs"]
    stats["gaec_percent"] = 100.0 * stats["gaec_optimal"] / g
    stats["klj_percent"] = 100.0 * stats["klj_optimal"] / g
    stats["ok"] = stats["klj_percent"] >= 95.0 and stats["invalid"] == 0
    return stats


# --------------------------------------------------------------------------
# 3. Generated sequences
# --------------------------------------------------------------------------
def synthetic_proof(out_dir: str | os.PathLike, seeds=range(10), methods=("exact", "dis", "deepflow"), *,
                    num_frames: int = 30, size=(192, 256), images: bool = False, progress: bool = True) -> dict:
    """Write FBMS-layout sequences for ``seeds``, segment each with every method, evaluate.

    Returns:
        ``{method: {"sequences": n, "all_objects_extracted": k, "per_sequence": [...],
        "overall": <all-shots figures>}}``; the exact-flow requirement is
        ``all_objects_extracted ≥ 0.9·n``.
    """
    out = Path(out_dir)
    seqs = write_synthetic_fbms_set(out / "data", seeds, num_frames=num_frames, size=size, progress=progress)
    known = set(available_methods()) | {"exact"}
    result = {}
    for method in methods:
        if method not in known:
            result[method] = {"skipped": f"flow method {method!r} is not available"}
            continue
        per, tracks = [], []
        t0 = time.perf_counter()
        for s in tqdm(seqs, desc=f"segmenting ({method})", unit="seq", disable=not progress):
            r = segment_sequence(s, out / "results" / method / s.name, method, images=images, progress=False)
            e = r.evaluation
            per.append({"sequence": s.name, "objects": e.visible_objects, "extracted": e.extracted_objects,
                        "all_extracted": e.extracted_objects == e.visible_objects,
                        "object_f": [round(float(p[4]), 4) for p in e.pairs
                                     if p[5] == "pair" and p[1] > 0],
                        **{k: v for k, v in e.printed().items() if k in ("density", "precision", "recall", "f_measure")},
                        "trajectories": r.num_trajectories, "clusters": r.num_clusters})
            tracks.append(os.path.relpath(r.track_file, out))
        write_track_list(out / f"tracks_{method}.txt", tracks)
        # The all-shots evaluation resolves list entries against the working directory.
        write_shot_list(out / "shots_all.txt", [os.path.join("data", q) for q in read_shot_list(out / "data" / "shots.txt")])
        cwd = os.getcwd()
        os.chdir(out)
        try:
            overall = evaluate_all("shots_all.txt", "all", f"tracks_{method}.txt", 0.75,
                                   write_numbers=True).as_dict()["overall"]
        finally:
            os.chdir(cwd)
        result[method] = {"sequences": len(per), "all_objects_extracted": sum(p["all_extracted"] for p in per),
                          "seconds": round(time.perf_counter() - t0, 1), "overall": overall, "per_sequence": per}
    return result


# --------------------------------------------------------------------------
# 4. Tracking speed
# --------------------------------------------------------------------------
def write_tracking_clip(folder: Path, frames: int = 200, size=(480, 640), seed: int = 0,
                        progress: bool = True) -> list[Path]:
    """Render a generated clip frame by frame: PNG frames and exact flow cached as ``.flo``
    (``folder/flow``, :class:`~.trajectories.FlowStore` layout). Returns the frame paths."""
    scene = fbms_like_scene(seed, frames, tuple(size), num_objects=4, max_object_speed=1.5, min_visible=0, min_area=0)
    store = FlowStore(folder / "flow", [f"clip_{t:04d}" for t in range(frames)])
    store.dir.mkdir(parents=True, exist_ok=True)
    paths = []
    nxt = None
    for t in tqdm(range(frames), desc="writing the test clip", unit="frame", disable=not progress):
        img, labels = render(scene, float(t)) if nxt is None else nxt
        p = folder / f"clip_{t:04d}.png"
        write_image(p, img)
        paths.append(p)
        if t + 1 < frames:
            nxt = render(scene, float(t + 1))
            write_flo(store.path("forward", t), scene_flow(scene, t, t + 1, labels)[0])
            write_flo(store.path("backward", t + 1), scene_flow(scene, t + 1, t, nxt[1])[0])
    return paths


def tracking_speed(frames: int = 200, size=(480, 640), sampling: int = 8, workdir: str | os.PathLike | None = None,
                   progress: bool = True) -> dict:
    """Time :func:`~.trajectories.track_points` on a generated clip, given its cached flow
    (reading the ``.flo`` files and the frames is part of the time; writing them is not)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        store = FlowStore(folder / "flow", [f"clip_{t:04d}" for t in range(frames)])
        paths = sorted(folder.glob("clip_*.png"))
        if len(paths) != frames or store.missing():
            paths = write_tracking_clip(folder, frames, size, progress=progress)
        t0 = time.perf_counter()
        traj = track_points(store.forward, store.backward, paths, sampling=sampling, progress=False)
        dt = time.perf_counter() - t0
    return {"frames": frames, "size": list(size), "sampling": sampling, "seconds": round(dt, 2),
            "ms_per_frame": round(1000 * dt / frames, 1), "trajectories": len(traj), "points": int(len(traj.xy)),
            "mean_length": round(float(traj.lengths.mean()), 1), "cpu_count": os.cpu_count(),
            "ok": dt < 30.0}


# --------------------------------------------------------------------------
def proof_report(res: dict) -> str:
    """``report.md`` of a proof result (the dict :func:`main` of ``evaluations.proof_segmentation`` writes)."""
    md = ["# Motion segmentation: proofs\n"]
    g = res.get("golden")
    if g:
        md.append("\n## 1. FBMS-59 evaluator vs the official MoSegEval v2.0 (golden shots, threshold 0.75)\n\n")
        rows = []
        for name, s in g["shots"].items():
            o, e = s["ours"], s["official"]
            rows.append([name] + [f"{o[k]:g} / {e[k]:g}" for k in ("precision", "recall", "f_measure", "density")]
                        + [f"{o['extracted_objects']}/{o['visible_objects']} vs {e['extracted_objects']}/{e['visible_objects']}",
                           "yes" if s["numbers_file_identical"] else "NO", "yes" if s["matrices_identical"] else "NO"])
        md.append(markdown_table(["shot", "P ours / official", "R", "F", "density %", "extracted/visible",
                                  "Numbers.txt identical", "cost matrix identical"], rows))
        if "all" in g:
            a = g["all"]
            md.append(f"\nAll shots (port of MoSegEvalAllPR): density {a['density']:g} %, P {a['precision']:g}, "
                      f"R {a['recall']:g}, F {a['f_measure']:g}, extracted {a['extracted_objects']} of "
                      f"{a['visible_objects']} objects.\n")
    m = res.get("multicut")
    if m:
        md.append(f"\n## 2. Multicut vs brute force\n\n{m['graphs']} random graphs with 2–9 nodes: GAEC optimal on "
                  f"{m['gaec_percent']:.1f} %, GAEC + Kernighan–Lin with joins on {m['klj_percent']:.1f} % "
                  f"(largest gap {m['max_gap']:.3g}); invalid (non-transitive) cuts: {m['invalid']}.\n")
    s = res.get("synthetic")
    if s:
        md.append("\n## 3. Generated FBMS-layout sequences (2–4 moving objects, 30 frames, 256×192)\n\n")
        rows = []
        for method, r in s.items():
            if "skipped" in r:
                rows.append([method, r["skipped"], "", "", "", "", "", ""])
                continue
            o = r["overall"]
            rows.append([method, f"{r['all_objects_extracted']} of {r['sequences']}", f"{o['density']:.3f}",
                         f"{o['precision']:.4f}", f"{o['recall']:.4f}", f"{o['f_measure']:.4f}",
                         f"{o['extracted_objects']} of {o['visible_objects']}", f"{r['seconds']:.0f}"])
        md.append(markdown_table(["flow", "sequences with every object F > 0.75", "density %", "P", "R", "F",
                                  "objects extracted", "s"], rows))
    t = res.get("tracking")
    if t:
        md.append(f"\n## 4. Tracking speed\n\n{t['frames']} frames {t['size'][1]}×{t['size'][0]}, sampling "
                  f"{t['sampling']}, given the flow: {t['seconds']:.1f} s ({t['ms_per_frame']:.0f} ms/frame, "
                  f"{t['trajectories']} trajectories, {t['points']} points) on {t['cpu_count']} cores; target < 30 s.\n")
    return "".join(md)
