"""Extract RGB frames and flow stacks for a video collection, sharded and resumable.

The job (``flownet2 stacks extract``): for each video, decode, resize, compute
flow between consecutive frames with any registered method, and write the
rawframes layout (:mod:`.rawframes`). Work is split over processes:

* under ``torchrun`` (``torch.distributed`` gives rank and world size), or
* with ``shard=(k, n)`` for cluster array jobs,

each worker taking a disjoint, balanced share (longest-first by file size).
Nothing finished is ever lost: a video is written into a temporary folder and
renamed into place when complete, then recorded in ``<out>/.stacks/records``.
A re-run skips recorded videos whose files are all there, removes stale
temporary folders and redoes everything else. Unreadable videos are recorded
in ``<out>/.stacks/failures`` and skipped; the run goes on and reports them at
the end. :func:`finalize` merges the records into ``manifest.json``,
``failures.txt`` and the annotation lists.

Three stages overlap so the flow method never waits on IO: a reader thread
decodes and resizes the next videos, the main thread computes flow in
batches, and a pool of writer threads encodes JPEGs (OpenCV releases the GIL
in all of them).
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from tqdm import tqdm

from flownet2_core.io import TruncatedVideoError, atomic_write_text, file_sha256, iter_video_frames
from flownet2_core.methods import DEFAULT_METHOD, FlowMethod, get_factory, get_method

from . import rawframes
from .ucf101 import Video, video_id

__all__ = ["ExtractConfig", "output_size", "shard_videos", "extract", "finalize", "STATE_DIR",
           "ExtractSummary", "begin_output", "commit_video", "record_failure"]

STATE_DIR = ".stacks"


@dataclass(frozen=True)
class ExtractConfig:
    """What to compute; stored in ``<out>/.stacks/config.json`` so a resumed or
    sharded run cannot silently mix settings."""

    method: str = DEFAULT_METHOD
    options: dict = field(default_factory=dict)
    size: tuple[int, int] | None = None   # (W, H); overrides short_side
    short_side: int | None = 256          # None with size None: keep the video's size
    # denseflow (what mmaction2's build_rawframes.py and TSN's stacks use) only ever shrinks
    # to the short side: UCF101's 320×240 keeps its size. Upscaling (240 → 256) scales every
    # flow value by 1.07 and moves the ±bound clip; it is only done when asked for.
    upscale: bool = False
    bound: float = 20.0
    # Flow JPEGs: at 95 (OpenCV's default) motion boundaries ring to a p99
    # error of 3.2 grey steps; 98 gives 1.4 steps for 19 % more bytes.
    quality: int = 98
    rgb_quality: int = 95
    flow_format: str = "jpg"
    write_rgb: bool = True

    def __post_init__(self):
        if self.flow_format not in rawframes.FLOW_FORMATS:
            raise ValueError(f"flow_format must be one of {rawframes.FLOW_FORMATS}, got {self.flow_format!r}")
        for q in (self.quality, self.rgb_quality):
            if not 1 <= q <= 100:
                raise ValueError(f"JPEG quality must be in 1..100, got {q}")
        if self.bound <= 0:
            raise ValueError(f"bound must be positive, got {self.bound}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size) if self.size else None
        return d


def output_size(width: int, height: int, cfg: ExtractConfig) -> tuple[int, int]:
    """(W, H) frames are resized to: ``size``; else the short side brought down to
    ``short_side`` (up to it too with ``upscale``), aspect kept; else the video's own."""
    if cfg.size:
        return int(cfg.size[0]), int(cfg.size[1])
    if cfg.short_side:
        s = cfg.short_side / min(width, height)
        if s >= 1 and not cfg.upscale:
            return width, height
        return max(1, int(round(width * s))), max(1, int(round(height * s)))
    return width, height


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    if (w, h) == size:
        return frame
    # Area averaging when shrinking (no aliasing), bilinear when enlarging.
    interp = cv2.INTER_AREA if size[0] * size[1] < w * h else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interp)


# --------------------------------------------------------------------------- sharding
def shard_videos(videos: list[Video], video_root: Path, rank: int, world: int) -> list[Video]:
    """A disjoint, balanced share of ``videos`` for worker ``rank`` of ``world``.

    Longest-processing-time first: videos sorted by file size (a proxy for
    frame count that costs one ``stat``), each given to the least-loaded
    worker. Deterministic, so every worker computes the same assignment.
    """
    if not 0 <= rank < world:
        raise ValueError(f"shard {rank} is outside 0..{world - 1}")
    sizes = []
    for v in videos:
        try:
            sizes.append(os.path.getsize(video_root / v.rel))
        except OSError:
            sizes.append(0)
    order = sorted(range(len(videos)), key=lambda i: (-sizes[i], videos[i].rel))
    load = [0] * world
    mine = []
    for i in order:
        w = min(range(world), key=lambda r: (load[r], r))
        load[w] += sizes[i] + 1
        if w == rank:
            mine.append(i)
    return [videos[i] for i in sorted(mine, key=lambda i: videos[i].rel)]


# --------------------------------------------------------------------------- state files
def _state(out: Path, *parts: str) -> Path:
    return out.joinpath(STATE_DIR, *parts)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


def _versions() -> dict:
    import torch

    from flownet2_core import __version__

    return {"flownet2": __version__, "torch": torch.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__}


def _run_config(cfg: ExtractConfig, video_root: Path, split_dir: Path | None) -> dict:
    weights = cfg.options.get("weights")
    return {
        "config": cfg.to_json(),
        "weights_sha256": file_sha256(weights) if weights else None,
        "video_root": str(video_root.resolve()),
        "split_dir": str(split_dir.resolve()) if split_dir else None,
    }


def begin_output(out_dir: str | os.PathLike, cfg: ExtractConfig, video_root: str | os.PathLike,
                 split_dir: str | os.PathLike | None = None) -> None:
    """Claim ``out_dir`` for a run with settings ``cfg``: write ``.stacks/config.json`` the
    first time, and on a later run check that it holds the same settings (and weights).

    ``ValueError`` when the folder holds stacks made with other settings. Producers of
    stacks other than :func:`extract` (e.g. exact flow of generated videos) call this,
    then :func:`commit_video` or :func:`record_failure` per video, then :func:`finalize`.
    """
    _check_or_write_config(Path(out_dir), _run_config(cfg, Path(video_root),
                                                      Path(split_dir) if split_dir else None))


def _check_or_write_config(out: Path, run_cfg: dict) -> None:
    path = _state(out, "config.json")
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config") != run_cfg["config"] or old.get("weights_sha256") != run_cfg["weights_sha256"]:
            raise ValueError(f"{out} holds stacks made with other settings ({path}: "
                             f"{json.dumps(old.get('config'))}); use another output folder")
        return
    _write_json(path, {**run_cfg, "versions": _versions()})


# --------------------------------------------------------------------------- one video
def _is_done(out: Path, video: Video, cfg: ExtractConfig) -> bool:
    rec_path = _state(out, "records", video_id(video.rel) + ".json")
    final = out / video.frame_dir
    if not (rec_path.exists() and final.is_dir()):
        return False
    try:
        rec = json.loads(rec_path.read_text())
    except ValueError:
        return False
    want = (rec["frames"] if cfg.write_rgb else 0, rec["flows"])
    return rawframes.count_outputs(final, cfg.flow_format) == want


def _decode(path: Path, cfg: ExtractConfig, accept_partial: bool = False) -> tuple[np.ndarray, int | None]:
    """(N, H, W, 3) frames resized for ``cfg``, and the frame count the container declares
    when the video decoded to fewer (accepted only with ``accept_partial``; else
    :class:`~flownet2_core.io.TruncatedVideoError`), None when whole."""
    frames, declared = [], None
    try:
        for f in iter_video_frames(path):
            if not frames:
                size = output_size(f.shape[1], f.shape[0], cfg)
            frames.append(_resize(f, size))
    except TruncatedVideoError as exc:
        if not accept_partial:
            raise
        declared = exc.declared
    if len(frames) < 2:
        raise ValueError(f"{path}: fewer than 2 frames, no flow to compute")
    return np.stack(frames), declared


class _Writer:
    """Writer threads with a bound on queued work (memory stays flat when
    encoding is slower than flow) and a finisher that renames finished videos."""

    def __init__(self, threads: int, max_pending: int = 256):
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="stacks-write")
        self.finisher = ThreadPoolExecutor(1, thread_name_prefix="stacks-finish")
        self.slots = threading.BoundedSemaphore(max_pending)
        self.finished: list[Future] = []

    def submit(self, fn, *args, **kw) -> Future:
        self.slots.acquire()
        fut = self.pool.submit(fn, *args, **kw)
        fut.add_done_callback(lambda _: self.slots.release())
        return fut

    def finish(self, fn, *args) -> None:
        self.finished.append(self.finisher.submit(fn, *args))

    def close(self) -> list[Future]:
        self.pool.shutdown(wait=True)
        self.finisher.shutdown(wait=True)
        return self.finished


def _finish_video(out: Path, video: Video, tmp: Path, futures: list[Future], flows_npz, record: dict):
    """Wait for a video's files, then rename its folder into place and record it."""
    for f in futures:
        f.result()  # re-raises a writing error
    if flows_npz is not None:
        rawframes.finish_npz(tmp, flows_npz)
    return commit_video(out, video, tmp, record)


def commit_video(out_dir: str | os.PathLike, video: Video, tmp: str | os.PathLike, record: dict) -> dict:
    """Rename a video's complete temporary folder ``tmp`` into place (``<out>/<frame_dir>``)
    and record it (``record``: rel, frame_dir, label, frames, flows, width, height), which
    clears an earlier failure of the same video. Returns ``record``."""
    out, tmp = Path(out_dir), Path(tmp)
    final = out / video.frame_dir
    if final.exists():  # a partial folder from an interrupted run without a record
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_json(_state(out, "records", video_id(video.rel) + ".json"), record)
    stale = _state(out, "failures", video_id(video.rel) + ".txt")
    if stale.exists():
        stale.unlink()
    return record


def record_failure(out_dir: str | os.PathLike, video: Video, message: str) -> None:
    """Record that ``video`` failed with ``message`` (listed by :func:`finalize`)."""
    path = _state(Path(out_dir), "failures", video_id(video.rel) + ".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, f"{video.rel}\t{message}\n")


def _reader(videos: list[Video], video_root: Path, cfg: ExtractConfig, q: queue.Queue,
            stop: threading.Event, accept_partial: bool = False) -> None:
    """Decode videos ahead of the flow computation (bounded queue): items
    ``(video, frames, declared count if partial, error)``."""
    for v in videos:
        if stop.is_set():
            break
        try:
            item = (v, *_decode(video_root / v.rel, cfg, accept_partial), None)
        except Exception as exc:  # noqa: BLE001 — reported per video, the run goes on
            item = (v, None, None, f"{type(exc).__name__}: {exc}")
        q.put(item)
    q.put(None)


@dataclass
class ExtractSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    partial: list[tuple[str, int, int]] = field(default_factory=list)  # (video, decoded, declared)
    frames: int = 0
    flows: int = 0
    seconds: float = 0.0
    flow_seconds: float = 0.0

    def line(self) -> str:
        fps = self.flows / self.seconds if self.seconds else 0.0
        part = f" ({len(self.partial)} partial, accepted)" if self.partial else ""
        return (f"{self.done} videos done{part}, {self.skipped} already done, {len(self.failed)} failed; "
                f"{self.flows} flow fields in {self.seconds:.1f} s ({fps:.1f} fields/s)")


def _build_method(cfg: ExtractConfig, local_rank: int | None) -> FlowMethod:
    options = dict(cfg.options)
    if "device" not in options and local_rank is not None:
        import torch

        if torch.cuda.is_available():
            if "device" in inspect.signature(get_factory(cfg.method)).parameters:
                options["device"] = f"cuda:{local_rank % torch.cuda.device_count()}"
    return get_method(cfg.method, **options)


def _compute_video(video: Video, frames: np.ndarray, tmp: Path, cfg: ExtractConfig,
                   method: FlowMethod, batch_size: int, writer: _Writer, futures: list[Future],
                   summary: "ExtractSummary", on_fields=None):
    """Flow for one decoded video; queues its writes and the final rename.
    ``on_fields(k, n)``: k more of the video's n flow fields are computed (progress)."""
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if cfg.write_rgb:
        futures += [writer.submit(rawframes.write_frame, tmp, i + 1, f, cfg.rgb_quality)
                    for i, f in enumerate(frames)]
    npz = [] if cfg.flow_format == "npz" else None
    n = len(frames) - 1
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        t0 = time.perf_counter()
        flows = method.batch(frames[s:e], frames[s + 1:e + 1])
        summary.flow_seconds += time.perf_counter() - t0
        if on_fields is not None:
            on_fields(e - s, n)
        for k, flow in enumerate(flows):
            if npz is not None:
                npz.append(flow)
            else:
                futures.append(writer.submit(rawframes.write_flow_field, tmp, s + k + 1, flow,
                                             flow_format=cfg.flow_format, bound=cfg.bound,
                                             quality=cfg.quality))
    return {"rel": video.rel, "frame_dir": video.frame_dir, "label": video.label,
            "frames": int(len(frames)), "flows": int(n),
            "width": int(frames.shape[2]), "height": int(frames.shape[1]), "_npz": npz}


def _process_share(videos: list[Video], video_root: Path, out: Path, cfg: ExtractConfig,
                   method: FlowMethod, batch_size: int, writer_threads: int, desc: str,
                   summary: ExtractSummary, progress: bool = True, accept_partial: bool = False) -> None:
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(videos, video_root, cfg, q, stop, accept_partial), daemon=True)
    reader.start()
    writer = _Writer(writer_threads)
    # Progress moves with each batch of flow fields (a video's share of the bar at a time),
    # so long videos and slow methods show it too; whole at the end of each video.
    bar = tqdm(total=len(videos), desc=desc, unit="video", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} videos [{elapsed}<{remaining}{postfix}]")
    t_start = time.perf_counter()
    finished, fields_here = 0, 0  # videos ended; fields computed of the current video

    def on_fields(k: int, n: int) -> None:
        nonlocal fields_here
        fields_here += k
        bar.update(k / n)
        rate = (summary.flows + fields_here) / (time.perf_counter() - t_start)
        bar.set_postfix(fields_s=f"{rate:.1f}", refresh=False)

    def video_ended() -> None:
        nonlocal finished, fields_here
        finished, fields_here = finished + 1, 0
        bar.n = finished
        bar.refresh()

    try:
        while (item := q.get()) is not None:
            video, frames, declared, error = item
            if error is not None:
                record_failure(out, video, error)
                summary.failed.append((video.rel, error))
                video_ended()
                continue
            final = out / video.frame_dir
            tmp = final.parent / f".tmp.{final.name}.{os.getpid()}"
            futures: list[Future] = []
            try:
                record = _compute_video(video, frames, tmp, cfg, method, batch_size, writer,
                                        futures, summary, on_fields)
            except Exception as exc:  # noqa: BLE001 — one bad video must not stop the run
                for f in futures:
                    f.exception()  # let its writes end before removing the folder
                shutil.rmtree(tmp, ignore_errors=True)
                msg = f"{type(exc).__name__}: {exc}"
                record_failure(out, video, msg)
                summary.failed.append((video.rel, msg))
                video_ended()
                continue
            if declared is not None:  # decoded fewer frames than declared, accepted
                record["declared_frames"] = declared
                summary.partial.append((video.rel, record["frames"], declared))
            writer.finish(_finish_video, out, video, tmp, futures, record.pop("_npz"), record)
            summary.done += 1
            summary.frames += record["frames"]
            summary.flows += record["flows"]
            video_ended()
            el = time.perf_counter() - t_start
            bar.set_postfix(fields_s=f"{summary.flows / el:.1f}", videos_s=f"{summary.done / el:.2f}")
    finally:
        stop.set()
        for fut in writer.close():
            fut.result()  # a failed write is a bug or a full disk: stop loudly
        bar.close()
        summary.seconds += time.perf_counter() - t_start


def _cleanup_stale(out: Path, videos: Iterable[Video]) -> None:
    """Remove temporary folders left by killed runs (of this share's videos only)."""
    for v in videos:
        final = out / v.frame_dir
        parent = final.parent
        if parent.is_dir():
            for p in parent.glob(f".tmp.{final.name}.*"):
                shutil.rmtree(p, ignore_errors=True)


def check_output_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None


def extract(videos: list[Video], video_root: str | os.PathLike, out_dir: str | os.PathLike,
            cfg: ExtractConfig, *, split_dir: str | os.PathLike | None = None,
            shard: tuple[int, int] | None = None, batch_size: int = 8, writer_threads: int = 2,
            progress: bool = True, accept_partial: bool = False) -> ExtractSummary:
    """Extract stacks for this worker's share of ``videos`` (see module docstring).

    A video that decodes to fewer frames than its container declares is a failure, unless
    ``accept_partial``: then its decoded frames are extracted and the manifest marks it
    (``declared_frames`` beside ``frames``, and the top-level ``partial`` list).

    ``shard=(k, n)`` selects share k of n (0-based) for array jobs; under
    torchrun the share comes from ``torch.distributed`` and rank 0 runs
    :func:`finalize` after a barrier. Without either, this process does
    everything and finalizes.
    """
    video_root, out = Path(video_root), Path(out_dir)
    if not video_root.is_dir():
        raise FileNotFoundError(f"{video_root}: video root is not a folder")
    missing = [v.rel for v in videos if not (video_root / v.rel).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed videos are missing under {video_root}, "
                                f"e.g. {missing[0]}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    check_output_writable(out)
    from flownet2_core.distributed import join_process_group

    # gloo: only barriers travel (flow runs on each rank's own device). Ranks that
    # finish early wait at the final barrier for the slowest: allow days, not 30 minutes.
    d = join_process_group("gloo", timeout=datetime.timedelta(days=7))
    rank, world, distributed = d.rank, d.world, d.active
    local_rank = d.local_rank if distributed else None  # None: the method picks its device
    if shard is not None:
        if distributed:
            raise ValueError("--shard is for array jobs; under torchrun the rank picks the share")
        rank, world = shard
    begin_output(out, cfg, video_root, split_dir)
    share = shard_videos(videos, video_root, rank, world)
    _cleanup_stale(out, share)
    todo = [v for v in share if not _is_done(out, v, cfg)]
    summary = ExtractSummary(skipped=len(share) - len(todo))
    if todo:
        method = _build_method(cfg, local_rank)
        _process_share(todo, video_root, out, cfg, method, batch_size, writer_threads,
                       desc=f"stacks[{rank}/{world}] {cfg.method}", summary=summary, progress=progress,
                       accept_partial=accept_partial)
    if distributed:
        d.barrier()
        if d.main:
            finalize(out)
        d.barrier()
    elif shard is None:
        finalize(out)
    return summary


# --------------------------------------------------------------------------- finalize
def _annotation_lines(videos: list[Video], records: dict[str, dict], count: str) -> str:
    return "".join(f"{v.frame_dir} {records[v.frame_dir][count]} {v.label}\n"
                   for v in videos if v.frame_dir in records)


def finalize(out_dir: str | os.PathLike) -> dict:
    """Merge per-video records into ``manifest.json``, ``failures.txt`` and the
    annotation lists; returns the manifest. Safe to run again at any time.

    With a UCF101 split folder in the run's config, writes
    ``ucf101_{train,val}_split_{1,2,3}_rawframes.txt`` (total_frames = RGB
    frames, as mmaction2's build_file_list writes them) and the same names
    with ``_flow`` (total_frames = flow fields); otherwise ``rawframes.txt`` and
    ``rawframes_flow.txt`` for every recorded video. Lines are
    ``<frame_dir> <total_frames> <label>`` with 0-based labels.
    """
    from .ucf101 import read_split

    out = Path(out_dir)
    cfg_path = _state(out, "config.json")
    if not cfg_path.exists():
        raise FileNotFoundError(f"{out}: no {STATE_DIR}/config.json; not a stacks output folder")
    run_cfg = json.loads(cfg_path.read_text())
    records = {}
    for p in sorted(_state(out, "records").glob("*.json")):
        rec = json.loads(p.read_text())
        records[rec["frame_dir"]] = rec
    failures = []
    for p in sorted(_state(out, "failures").glob("*.txt")):
        rel, _, msg = p.read_text().rstrip("\n").partition("\t")
        if Path(rel).with_suffix("").as_posix() not in records:
            failures.append((rel, msg))
    manifest = {
        "method": run_cfg["config"]["method"],
        "options": run_cfg["config"]["options"],
        "weights_sha256": run_cfg.get("weights_sha256"),
        "bound": run_cfg["config"]["bound"],
        "size": run_cfg["config"]["size"],
        "short_side": run_cfg["config"]["short_side"],
        "upscale": run_cfg["config"].get("upscale", True),  # folders from before the option upscaled
        "flow_format": run_cfg["config"]["flow_format"],
        "jpeg_quality": run_cfg["config"]["quality"],
        "rgb_jpeg_quality": run_cfg["config"]["rgb_quality"],
        "versions": run_cfg.get("versions", _versions()),
        "videos": {k: {"frames": r["frames"], "flows": r["flows"], "label": r["label"],
                       "width": r["width"], "height": r["height"],
                       **({"declared_frames": r["declared_frames"]} if "declared_frames" in r else {})}
                   for k, r in sorted(records.items())},
        # Accepted with --accept-partial: decoded fewer frames than their containers declare.
        "partial": [{"video": r["rel"], "frames": r["frames"], "declared_frames": r["declared_frames"]}
                    for _, r in sorted(records.items()) if "declared_frames" in r],
        "num_videos": len(records),
        "num_frames": sum(r["frames"] for r in records.values()),
        "num_flows": sum(r["flows"] for r in records.values()),
        "failures": [{"video": rel, "error": msg} for rel, msg in failures],
    }
    _write_json(out / "manifest.json", manifest)
    atomic_write_text(out / "failures.txt", "".join(f"{rel}\t{msg}\n" for rel, msg in failures))
    lists = {}
    if run_cfg.get("split_dir"):
        for k in (1, 2, 3):
            for subset, name in (("train", "train"), ("test", "val")):
                vids = read_split(run_cfg["split_dir"], k, subset)
                # Split files may differ in case from the disk (HandstandPushups).
                by_lower = {fd.lower(): fd for fd in records}
                vids = [Video(by_lower.get(v.frame_dir.lower(), v.frame_dir) + Path(v.rel).suffix, v.label)
                        for v in vids]
                lists[f"ucf101_{name}_split_{k}_rawframes"] = vids
    else:
        lists["rawframes"] = [Video(r["rel"], r["label"]) for r in records.values()]
    for stem, vids in lists.items():
        atomic_write_text(out / f"{stem}.txt", _annotation_lines(vids, records, "frames"))
        atomic_write_text(out / f"{stem}_flow.txt", _annotation_lines(vids, records, "flows"))
    return manifest


# --------------------------------------------------------------------------- dry run
def estimate(videos: list[Video], video_root: str | os.PathLike, cfg: ExtractConfig, *,
             batch_size: int = 8, writer_threads: int = 2, progress: bool = True) -> dict:
    """What a run would do: frames, flow fields, the sizes frames are resized to (one per
    source size, with its video count), and disk space and time on this machine.

    Frame counts and sizes come from the video headers. Time and bytes are measured the way
    the run measures itself: the run's own code path (decode, resize, ``method.batch`` with
    ``batch_size``, the writer threads) extracts one sample video into a temporary folder,
    timed from its first decoded frame to its last written file, after a warm-up pair. The
    sample is the shortest video of the most common size, so the dry run stays quick.
    """
    from flownet2_core.io import video_info

    video_root = Path(video_root)
    frames, unreadable, info = 0, [], {}
    for v in tqdm(videos, desc="probing", unit="video", disable=not progress):
        try:
            info[v.rel] = video_info(video_root / v.rel)
            frames += info[v.rel]["frames"]
        except (ValueError, OSError) as exc:
            unreadable.append((v.rel, str(exc)))
    fields = max(0, frames - len(info))
    sizes: dict[tuple[tuple[int, int], tuple[int, int]], int] = {}
    for i in info.values():
        src = (i["width"], i["height"])
        key = (src, output_size(*src, cfg))
        sizes[key] = sizes.get(key, 0) + 1
    result = {"videos": len(videos), "unreadable": unreadable, "frames": frames, "flow_fields": fields,
              "sizes": [{"source": list(src), "size": list(dst), "videos": n}
                        for (src, dst), n in sorted(sizes.items(), key=lambda kv: -kv[1])],
              "sample": None, "seconds_per_field": None, "bytes": None, "seconds": None}
    if not info:
        return result
    common = max(sizes, key=sizes.get)[0]
    candidates = sorted((i["frames"], v.rel) for v in videos if (i := info.get(v.rel))
                        and (i["width"], i["height"]) == common and i["frames"] >= 3)
    method = get_method(cfg.method, **cfg.options)
    for _, rel in candidates[:3]:  # a sample that fails to decode: try the next one
        sample = next(v for v in videos if v.rel == rel)
        try:  # warm-up on its first two frames: the run pays this once, not per field
            it = iter_video_frames(video_root / rel)
            a, b = next(it), next(it)
            it.close()
        except (ValueError, OSError, StopIteration):
            continue
        size = output_size(a.shape[1], a.shape[0], cfg)
        method(_resize(a, size), _resize(b, size))
        with tempfile.TemporaryDirectory(prefix="flownet2-dry-run-") as tmp:
            summary = ExtractSummary()
            _process_share([sample], video_root, Path(tmp), cfg, method, batch_size, writer_threads,
                           desc="measuring", summary=summary, progress=False)
            if summary.failed or not summary.flows:
                continue
            written = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        spf = summary.seconds / summary.flows
        per_frame = written / max(1, summary.frames)  # RGB frame + flow field, per frame
        result.update(sample=rel, seconds_per_field=spf, bytes=frames * per_frame, seconds=fields * spf)
        break
    return result
