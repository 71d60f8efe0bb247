"""Run Table 5: for every flow method, motion segmentation on FBMS-59, the temporal stream
on UCF101 and the flow runtime, each stage cached and resumable.

Output folder (one folder per (half, method); a stage's ``result.json`` is written
atomically when it finishes, so a re-run skips it and a method added later reuses the
other rows)::

    OUT/runs.json                                   every run's configuration, in order
    OUT/segmentation/<method>/<set>/<seq>/          `flownet2 segment run -o` of that sequence:
        flow/<method>/forward_<frame>.flo …            the flow cache (exact: the sequence's own)
        Tracks<N>.dat, labels/, overlays/, evaluation.json
        table5_sequence.json                        the sequence is finished
    OUT/segmentation/<method>/<set>/shots.txt, tracks.txt, tracks_Fgeq75.00Numbers.txt
    OUT/segmentation/<method>/result.json           per set: MoSegEvalAllPR figures, per shot
    OUT/action/<method>/stacks/                     `flownet2 stacks extract` output (or --stacks)
    OUT/action/<method>/split<k>/                   `flownet2 action train` run + test scores
        table5_split.json                           the split is finished
    OUT/action/<method>/result.json                 per split and the mean
    OUT/runtime/<method>/result.json                median seconds per frame pair, device

The caches are the building blocks' own: a sequence folder is what ``flownet2 segment run
--sequence SEQ -o OUT/segmentation/<method>/<set>/<seq> --method <method>`` writes (same
flow cache), and a stacks folder is resumed by ``flownet2 stacks extract`` (sharded, or
under torchrun) exactly as by this runner. A stage whose recorded method identity (name,
flow-changing options, weights SHA-256) or settings differ from the current ones is an
error, never silently reused.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from flownet2_core.io import atomic_write_text

from .config import EXACT, MethodSpec, Table5Config, resolve_ucf101

__all__ = ["run_table5", "run_shard", "run_segmentation", "run_action", "run_runtime", "read_result", "result_path",
           "versions", "fbms_sequences", "RESULT", "HALVES"]

RESULT = "result.json"
HALVES = ("segmentation", "action", "runtime")
_SEQ_DONE = "table5_sequence.json"
_SPLIT_DONE = "table5_split.json"

Log = Callable[[str], None]


def result_path(out: str | os.PathLike, half: str, method: str) -> Path:
    """``OUT/<half>/<method>/result.json``."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    return Path(out) / half / method / RESULT


def read_result(path: str | os.PathLike) -> dict | None:
    """A stage's result, or None when the stage has not finished."""
    p = Path(path)
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def versions() -> dict:
    """Versions of what the numbers depend on."""
    import cv2
    import numpy as np
    import torch

    from flownet2_core import __version__

    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:  # pragma: no cover
        tv = None
    return {"flownet2": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": tv, "opencv": cv2.__version__, "numpy": np.__version__,
            "platform": platform.platform()}


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _normal(obj) -> dict:
    """JSON round trip (tuples → lists) so recorded and current keys compare equal."""
    return json.loads(json.dumps(obj))


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def _reusable(path: Path, key: dict, *, strict: bool = True) -> dict | None:
    """The finished stage at ``path`` when it was made with ``key``; None when unfinished
    (or, unless ``strict``, made with something else); ``ValueError`` when ``strict`` and
    it was made with something else."""
    old = read_result(path)
    if old is None:
        return None
    key = _normal(key)
    diff = sorted(k for k in key if old.get("key", {}).get(k) != key[k])
    if diff and not strict:
        return None
    if diff:
        raise ValueError(f"{path} was made with other {', '.join(diff)} ({json.dumps({k: old.get('key', {}).get(k) for k in diff})}); "
                         f"use another output folder, or delete {path.parent} to redo it")
    return old


@contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- segmentation
def fbms_sequences(root: str | os.PathLike, set_name: str) -> list:
    """The sequences of one FBMS-59 set folder (sub-folders holding frames), by name."""
    from flowapps.segmentation.fbms import list_frames, read_sequence

    folder = Path(root) / set_name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: FBMS-59 set not found")
    seqs = [read_sequence(d) for d in sorted(folder.iterdir()) if d.is_dir() and list_frames(d)]
    if not seqs:
        raise FileNotFoundError(f"{folder}: no sequence folders with frames")
    return seqs


def _segmentation_key(cfg: Table5Config, spec: MethodSpec) -> dict:
    return {"method": spec.identity(), "settings": cfg.segmentation.result_settings(),
            "fbms_root": os.fspath(Path(cfg.fbms_root).resolve())}


def _sequence_jobs(cfg: Table5Config, spec: MethodSpec, log: Log) -> list[tuple[str, object]]:
    """(set, sequence) pairs to segment: those with ground truth and long enough."""
    mode = str(cfg.segmentation.frames)
    jobs = []
    for set_name in cfg.segmentation.sets:
        for seq in fbms_sequences(cfg.fbms_root, set_name):
            if seq.definition is None:
                log(f"[table5] segmentation/{spec.name}: {seq.name} has no ground truth, left out")
            elif mode == "all" or len(seq.frames) >= int(mode):  # the evaluation skips shorter shots
                jobs.append((set_name, seq))
    return jobs


def _segment_one(cfg: Table5Config, spec: MethodSpec, set_name: str, seq, seq_key: dict,
                 progress: bool) -> tuple[dict, bool]:
    """One sequence's marker, segmenting it unless finished; (marker, ran)."""
    from flowapps.segmentation.pipeline import segment_sequence

    s = cfg.segmentation
    sdir = Path(cfg.out) / "segmentation" / spec.name
    seq_out = sdir / set_name / seq.name
    marker = read_result(seq_out / _SEQ_DONE)
    if marker is not None and marker.get("key", {}).get("method") != seq_key["method"]:
        # Its flow cache holds another method's (or other weights') flow.
        raise ValueError(f"{seq_out} was made with {json.dumps(marker.get('key', {}).get('method'))}; "
                         f"use another output folder, or delete {sdir} to redo it")
    if marker is not None and marker.get("key") == seq_key:
        return marker, False
    t0 = time.perf_counter()
    mode = str(s.frames)
    r = segment_sequence(seq, seq_out, spec.name, frames=None if mode == "all" else int(mode),
                         options=s.options(), threshold=s.threshold,
                         method_options=None if spec.name == EXACT else spec.method_options(),
                         images=s.images, progress=progress)
    flow_cache = seq.folder / "flow" / EXACT if spec.name == EXACT else seq_out / "flow" / spec.name
    marker = {"key": seq_key, "sequence": seq.name, "set": set_name,
              "sequence_dir": os.fspath(Path(seq.folder).resolve()),
              "flow_cache": os.fspath(Path(flow_cache).resolve()),
              "track_file": Path(r.track_file).name, "frames": r.num_frames,
              "trajectories": r.num_trajectories, "labelled_trajectories": r.num_labelled,
              "clusters": r.num_clusters, "images": s.images,
              "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
              "total_seconds": round(time.perf_counter() - t0, 3), "finished": _now()}
    _write_json(seq_out / _SEQ_DONE, marker)
    return marker, True


def run_segmentation(cfg: Table5Config, spec: MethodSpec, *, log: Log = print, progress: bool = True) -> dict:
    """Segment and evaluate every sequence of the configured FBMS-59 sets with one method.

    Returns the stage result (``"skipped": True`` when it was reused)."""
    from flowapps.segmentation.fbms import write_shot_list, write_track_list
    from flowapps.segmentation.moseg_eval import evaluate_all

    s = cfg.segmentation
    sdir = Path(cfg.out) / "segmentation" / spec.name
    key = _segmentation_key(cfg, spec)
    done = _reusable(sdir / RESULT, key)
    if done is not None:
        log(f"[table5] segmentation/{spec.name}: finished earlier, skipped")
        return {**done, "skipped": True}
    t_start = time.perf_counter()
    seq_key = _normal({"method": key["method"], "settings": key["settings"]})
    jobs = _sequence_jobs(cfg, spec, log)
    sets, sequences = {}, []
    for set_name in s.sets:
        tracks, shots, ran = [], [], 0
        for _, seq in [j for j in jobs if j[0] == set_name]:
            marker, did = _segment_one(cfg, spec, set_name, seq, seq_key, progress)
            ran += did
            sequences.append({k: v for k, v in marker.items() if k != "key"})
            tracks.append(os.path.relpath(sdir / set_name / seq.name / marker["track_file"], sdir / set_name))
            shots.append(os.path.relpath(seq.def_path, sdir / set_name))
        if not shots:
            raise ValueError(f"{Path(cfg.fbms_root) / set_name}: no sequence with ground truth to evaluate")
        log(f"[table5] segmentation/{spec.name}: {set_name}: {ran} sequences segmented, {len(shots) - ran} reused")
        # The official all-shots program reads list entries relative to the working directory.
        write_shot_list(sdir / set_name / "shots.txt", shots)
        write_track_list(sdir / set_name / "tracks.txt", tracks)
        with _cwd(sdir / set_name):
            res = evaluate_all("shots.txt", str(s.frames), "tracks.txt", s.threshold, write_numbers=True).as_dict()
        o = res["overall"]
        log(f"[table5] segmentation/{spec.name}: {set_name}: P {o['precision']:.4f} R {o['recall']:.4f} "
            f"F {o['f_measure']:.4f}, extracted {o['extracted_objects']} of {o['visible_objects']} objects")
        sets[set_name] = {"overall": o, "mode": res["mode"], "threshold": res["threshold"], "shots": res["shots"],
                          "skipped_shots": res["skipped"], "summary_file": os.path.relpath(
                              _summary_file(sdir / set_name), sdir)}
    result = {"half": "segmentation", "method_name": spec.name, "key": _normal(key),
              "options": _normal(spec.options), "sets": sets, "sequences": sequences,
              "seconds": round(time.perf_counter() - t_start, 2), "versions": versions(), "finished": _now()}
    _write_json(sdir / RESULT, result)
    return result


def _summary_file(folder: Path) -> Path:
    """The all-shots summary file the evaluation writes beside ``tracks.txt``."""
    found = sorted(folder.glob("tracks_Fgeq*Numbers.txt"))
    return found[0] if found else folder / "tracks.txt"


# --------------------------------------------------------------------------- action
def _stacks_for(cfg: Table5Config, spec: MethodSpec, videos: Path, splits: Path, log: Log, progress: bool) -> Path:
    from flowapps.stacks.extract import ExtractConfig, extract
    from flowapps.stacks.ucf101 import collect_videos

    if spec.stacks is not None:
        return Path(spec.stacks)
    a = cfg.action
    out = Path(cfg.out) / "action" / spec.name / "stacks"
    ecfg = ExtractConfig(method=spec.name, options=spec.method_options(), short_side=a.short_side, bound=a.bound)
    summary = extract(collect_videos(os.fspath(videos), os.fspath(splits), None), videos, out, ecfg,
                      split_dir=splits, progress=progress)
    log(f"[table5] action/{spec.name}: stacks: {summary.line()}")
    for rel, msg in summary.failed:
        log(f"[table5] action/{spec.name}: failed video {rel}: {msg}")
    return out


def _train_ddp(tcfg, nproc: int) -> None:
    """One split's training under torchrun (``flownet2 action train`` in ``nproc`` processes)."""
    from dataclasses import replace

    from flowapps.action.models import default_dropout
    from flowapps.action.proof import cli_args

    if tcfg.dropout is None:
        tcfg = replace(tcfg, dropout=default_dropout("flow"))
    args = cli_args(tcfg)
    if tcfg.pretrained:
        args += ["--pretrained", tcfg.pretrained]
    if tcfg.device:
        args += ["--device", tcfg.device]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "flowapps.action", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun training failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def run_action(cfg: Table5Config, spec: MethodSpec, *, log: Log = print, progress: bool = True) -> dict:
    """Flow stacks (cached), then the temporal stream trained and tested on every configured
    split; returns the stage result (``"skipped": True`` when reused)."""
    from flowapps.action.evaluate import test_model
    from flowapps.action.train import train
    from flowapps.stacks.extract import finalize

    a = cfg.action
    videos, splits = resolve_ucf101(None, cfg.ucf101_videos, cfg.ucf101_splits)
    adir = Path(cfg.out) / "action" / spec.name
    key = {"method": spec.identity(), "settings": a.result_settings(), "splits": list(a.splits),
           "ucf101_videos": os.fspath(videos.resolve()), "ucf101_splits": os.fspath(splits.resolve()),
           "stacks": os.fspath(Path(spec.stacks).resolve()) if spec.stacks else None}
    done = _reusable(adir / RESULT, key)
    if done is not None:
        log(f"[table5] action/{spec.name}: finished earlier, skipped")
        return {**done, "skipped": True}
    t_start = time.perf_counter()
    split_key = _normal({k: key[k] for k in ("method", "settings", "ucf101_videos", "ucf101_splits", "stacks")})
    stacks = None
    per_split = {}
    for k in a.splits:
        run_dir = adir / f"split{k}"
        marker = read_result(run_dir / _SPLIT_DONE)
        if marker is not None and marker.get("key") == split_key:
            log(f"[table5] action/{spec.name}: split {k} finished earlier, reused")
        else:
            if stacks is None:
                stacks = _stacks_for(cfg, spec, videos, splits, log, progress)
            tcfg = a.train_config(stacks, run_dir, k)
            t0 = time.perf_counter()
            if a.nproc > 1:
                _train_ddp(tcfg, a.nproc)
            else:
                train(tcfg, log=lambda m: None)
            t1 = time.perf_counter()
            scores = test_model(run_dir / "model.pt", subset="test", num_positions=a.positions, crops=a.crops,
                                workers=a.workers, device=a.device, progress=progress, cache_mb=a.cache_mb,
                                log=None)
            m = scores.metrics()
            history = json.loads((run_dir / "log.json").read_text())
            clips = sum(h["clips"] for h in history) / max(1e-9, sum(h["seconds"] for h in history))
            marker = {"key": split_key, "split": k, "top1": m["top1"], "top5": m.get("top5"), "videos": m["videos"],
                      "classes": len(scores.classes), "chance": 1.0 / len(scores.classes),
                      "metrics_file": "metrics_test.json", "model": "model.pt",
                      "train_seconds": round(t1 - t0, 2), "test_seconds": round(time.perf_counter() - t1, 2),
                      "train_clips_per_s": round(clips, 2), "processes": a.nproc, "finished": _now()}
            _write_json(run_dir / _SPLIT_DONE, marker)
            log(f"[table5] action/{spec.name}: split {k}: top-1 {100 * m['top1']:.1f} % "
                f"({m['videos']} videos, chance {100 / len(scores.classes):.1f} %)")
        per_split[str(k)] = {kk: v for kk, v in marker.items() if kk != "key"}
    stacks_dir = Path(spec.stacks) if spec.stacks else adir / "stacks"
    manifest = read_result(stacks_dir / "manifest.json")
    if manifest is None and stacks_dir.is_dir():
        manifest = finalize(stacks_dir)
    top1 = [per_split[str(k)]["top1"] for k in a.splits]
    result = {"half": "action", "method_name": spec.name, "key": _normal(key), "options": _normal(spec.options),
              "splits": per_split, "mean_top1": sum(top1) / len(top1),
              "chance": per_split[str(a.splits[0])]["chance"],
              "stacks": {"folder": os.fspath(stacks_dir.resolve()),
                         "method": (manifest or {}).get("method"),
                         "weights_sha256": (manifest or {}).get("weights_sha256"),
                         "videos": (manifest or {}).get("num_videos"),
                         "failures": (manifest or {}).get("failures", [])},
              "seconds": round(time.perf_counter() - t_start, 2), "versions": versions(), "finished": _now()}
    _write_json(adir / RESULT, result)
    log(f"[table5] action/{spec.name}: mean top-1 over splits {list(a.splits)}: {100 * result['mean_top1']:.1f} %")
    return result


# --------------------------------------------------------------------------- runtime
def _runtime_frames(cfg: Table5Config, count: int) -> tuple[list, str]:
    """``count`` consecutive frames (RGB uint8) to time on, and where they come from."""
    from flownet2_core.io import iter_video_frames, read_image

    if cfg.fbms_root is not None:
        seq = fbms_sequences(cfg.fbms_root, cfg.segmentation.sets[0])[0]
        paths = seq.frames[:count]
        return [read_image(p) for p in paths], f"FBMS-59 {cfg.segmentation.sets[0]}/{seq.name}"
    from flowapps.stacks.ucf101 import collect_videos

    videos, splits = resolve_ucf101(None, cfg.ucf101_videos, cfg.ucf101_splits)
    for v in collect_videos(os.fspath(videos), os.fspath(splits), None):
        try:
            frames = []
            for f in iter_video_frames(videos / v.rel):
                frames.append(f)
                if len(frames) == count:
                    break
            if len(frames) >= 2:
                return frames, f"UCF101 {v.rel}"
        except (ValueError, OSError):
            continue
    raise FileNotFoundError(f"{videos}: no readable video to time the flow methods on")


def _sync(method) -> None:
    dev = getattr(getattr(method, "runner", None), "device", None)
    if getattr(dev, "type", None) == "cuda":
        import torch
        torch.cuda.synchronize(dev)


def run_runtime(cfg: Table5Config, spec: MethodSpec, *, log: Log = print) -> dict:
    """Median seconds per frame pair of one method on this machine (one pair per call,
    after warm-up); ``exact`` is read, not computed, and has no runtime."""
    from flownet2_core.methods import get_method

    from evaluations.benchmarks.runner import device_name

    rdir = Path(cfg.out) / "runtime" / spec.name
    frames, source = _runtime_frames(cfg, cfg.runtime_pairs + cfg.runtime_warmup + 1)
    key = {"method": spec.identity(), "device_option": spec.options.get("device"), "source": source,
           "pairs": cfg.runtime_pairs, "warmup": cfg.runtime_warmup, "host": platform.node()}
    # Another machine, device or frame source: measure again (nothing else depends on it).
    done = _reusable(rdir / RESULT, key, strict=False)
    if done is not None:
        log(f"[table5] runtime/{spec.name}: finished earlier, skipped")
        return {**done, "skipped": True}
    h, w = frames[0].shape[:2]
    result = {"half": "runtime", "method_name": spec.name, "key": _normal(key), "source": source,
              "resolution": [h, w], "versions": versions(), "finished": _now()}
    if spec.name == EXACT:
        result.update(seconds_per_frame=None, device=None, pairs=0,
                      note="ground-truth flow of generated data: read, not computed")
    else:
        import torch

        method = get_method(spec.name, **spec.method_options())
        for i in range(cfg.runtime_warmup):
            method(frames[i], frames[i + 1])
        times = []
        for i in range(cfg.runtime_warmup, min(len(frames) - 1, cfg.runtime_warmup + cfg.runtime_pairs)):
            _sync(method)
            t0 = time.perf_counter()
            method(frames[i], frames[i + 1])
            _sync(method)
            times.append(time.perf_counter() - t0)
        result.update(seconds_per_frame=statistics.median(times), mean_seconds=statistics.fmean(times),
                      pairs=len(times), device=device_name(method), torch_threads=torch.get_num_threads())
        log(f"[table5] runtime/{spec.name}: {1000 * result['seconds_per_frame']:.1f} ms per frame pair "
            f"at {w}×{h} ({result['device']})")
    _write_json(rdir / RESULT, result)
    return result


# --------------------------------------------------------------------------- all
def _record_run(cfg: Table5Config, shard) -> None:
    path = Path(cfg.out) / "runs.json"
    runs = read_result(path) or {"runs": []}
    runs["runs"].append({"started": _now(), "config": cfg.to_json(), "shard": list(shard) if shard else None,
                         "versions": versions(), "argv": sys.argv})
    _write_json(path, runs)


def run_shard(cfg: Table5Config, shard: tuple[int, int], *, halves: tuple[str, ...] = HALVES, log: Log = print,
              progress: bool = True) -> dict:
    """Share ``k`` of ``n`` (0-based) of the parallel work, for array jobs: the sequences
    ``k, k+n, …`` of every method's segmentation and that share of the stack extraction
    (:func:`flowapps.stacks.extract.extract` with ``shard``). Evaluation, training and
    timing are left to a plain run afterwards, which finds the shards' work finished."""
    from flowapps.stacks.extract import ExtractConfig, extract
    from flowapps.stacks.ucf101 import collect_videos

    k, n = shard
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"shard {k}/{n}: need 0 <= K < N")
    out = {}
    for spec in cfg.methods:
        if "segmentation" in halves and cfg.fbms_root is not None:
            key = _segmentation_key(cfg, spec)
            if _reusable(Path(cfg.out) / "segmentation" / spec.name / RESULT, key) is None:
                seq_key = _normal({"method": key["method"], "settings": key["settings"]})
                mine = _sequence_jobs(cfg, spec, log)[k::n]
                ran = sum(_segment_one(cfg, spec, set_name, seq, seq_key, progress)[1] for set_name, seq in mine)
                log(f"[table5] segmentation/{spec.name}: shard {k}/{n}: {ran} sequences segmented, "
                    f"{len(mine) - ran} reused")
                out[f"segmentation/{spec.name}"] = {"shard": [k, n], "sequences": len(mine), "segmented": ran}
        if "action" in halves and cfg.ucf101_videos is not None and spec.stacks is None:
            if read_result(Path(cfg.out) / "action" / spec.name / RESULT) is None:
                videos, splits = resolve_ucf101(None, cfg.ucf101_videos, cfg.ucf101_splits)
                a = cfg.action
                ecfg = ExtractConfig(method=spec.name, options=spec.method_options(), short_side=a.short_side,
                                     bound=a.bound)
                summary = extract(collect_videos(os.fspath(videos), os.fspath(splits), None), videos,
                                  Path(cfg.out) / "action" / spec.name / "stacks", ecfg, split_dir=splits,
                                  shard=shard, progress=progress)
                log(f"[table5] action/{spec.name}: stacks shard {k}/{n}: {summary.line()}")
                out[f"action/{spec.name}"] = {"shard": [k, n], "videos": summary.done + summary.skipped}
    return out


def run_table5(cfg: Table5Config, *, halves: tuple[str, ...] = HALVES, shard: tuple[int, int] | None = None,
               log: Log = print, progress: bool = True) -> dict:
    """Every stage of every method (those whose data is configured), skipping finished ones.

    Returns ``{"<half>/<method>": result}``; a reused stage's result has ``"skipped": True``.
    With ``shard=(k, n)`` only that share of the parallel work is done (:func:`run_shard`).
    Raises ``ValueError``/``FileNotFoundError`` on bad input before any work starts.
    """
    cfg.validate()
    bad = [h for h in halves if h not in HALVES]
    if bad:
        raise ValueError(f"unknown stage {bad[0]!r}; choose from {', '.join(HALVES)}")
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    _record_run(cfg, shard)
    if shard is not None:
        return run_shard(cfg, shard, halves=halves, log=log, progress=progress)
    out = {}
    for spec in cfg.methods:
        if "runtime" in halves:
            out[f"runtime/{spec.name}"] = run_runtime(cfg, spec, log=log)
        if "segmentation" in halves and cfg.fbms_root is not None:
            out[f"segmentation/{spec.name}"] = run_segmentation(cfg, spec, log=log, progress=progress)
        if "action" in halves and cfg.ucf101_videos is not None:
            out[f"action/{spec.name}"] = run_action(cfg, spec, log=log, progress=progress)
    return out
