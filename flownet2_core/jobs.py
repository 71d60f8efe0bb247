"""Flow for files: an image pair, a folder of frames, a video.

These are the plain functions behind ``flownet2 flow`` and ``flownet2 viz``.
Outputs are written atomically (temporary file, then rename) by the writers
in :mod:`flownet2_core.io`, and a re-run skips pairs whose ``.flo`` already
exists unless ``overwrite=True``, so an interrupted folder or video job
resumes where it stopped.

Inputs are never overwritten: each function checks, before any work, that no output
is (or resolves to) an input and that no output folder is or contains an input
(:func:`flownet2_core.io.check_outputs`), and that output extensions name a format it
writes; method options are checked before the method is built
(:func:`flownet2_core.methods.check_options`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from .io import (IMAGE_EXTENSIONS, TruncatedVideoError, check_flow_extension, check_outputs, frame_name,
                 iter_video_frames, read_flow, read_image, video_info, write_flo, write_flow, write_image)
from .methods import DEFAULT_METHOD, FlowMethod, check_options, get_method
from .viz import flow_to_color, flow_to_color_with_legend

__all__ = ["FlowFiles", "flow_pair", "flow_frames", "flow_video", "viz_flow", "list_frames"]

PathLike = str | os.PathLike


def _method(method: str | FlowMethod, options: dict | None) -> FlowMethod:
    if isinstance(method, FlowMethod):
        if options:
            raise ValueError("options are given to get_method(); pass a method name, not an instance")
        return method
    return get_method(method, **(options or {}))


def _check_method(method: str | FlowMethod, options: dict | None) -> None:
    """Refuse an unknown method or an option it does not take, before any work."""
    if not isinstance(method, FlowMethod):
        check_options(method, options or {})


def _check_image_extension(path: PathLike, what: str) -> None:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{os.fspath(path)}: {what} must end in one of {', '.join(IMAGE_EXTENSIONS)}, "
                         f"got {ext or 'no extension'!r}")


def _write_viz(path: Path, flow: np.ndarray, max_flow: float | None, legend: bool = False) -> None:
    img = flow_to_color_with_legend(flow, max_flow=max_flow) if legend else flow_to_color(flow, max_flow=max_flow)
    write_image(path, img)


def flow_pair(img1: PathLike, img2: PathLike, output: PathLike | None = None, *,
              method: str | FlowMethod = DEFAULT_METHOD, options: dict | None = None,
              viz: PathLike | None = None, max_flow: float | None = None) -> np.ndarray:
    """Flow from image file ``img1`` to ``img2``; returns (H, W, 2) float32.

    Writes ``output`` in the format its extension names (``.flo``; ``.png``: KITTI 16-bit,
    1/64 px within ±512 px; ``.pfm``) and a colour-coded ``viz`` image when given.
    """
    if output is not None:
        check_flow_extension(output)
    if viz is not None:
        _check_image_extension(viz, "the colour-coded flow image")
    check_outputs([img1, img2], files=[output, viz])
    _check_method(method, options)
    a, b = read_image(img1), read_image(img2)
    if a.shape != b.shape:
        raise ValueError(f"{img1} is {a.shape[1]}×{a.shape[0]} but {img2} is {b.shape[1]}×{b.shape[0]}")
    flow = _method(method, options)(a, b)
    if output is not None:
        write_flow(output, flow)
    if viz is not None:
        _write_viz(Path(viz), flow, max_flow)
    return flow


def list_frames(frames_dir: PathLike) -> list[Path]:
    """Image files in ``frames_dir``, sorted by name (``frame_2`` < ``frame_10`` only
    with zero padding, as every dataset does)."""
    d = Path(frames_dir)
    if not d.exists():
        raise FileNotFoundError(f"{d}: no such folder")
    if not d.is_dir():
        raise NotADirectoryError(f"{d}: not a folder of frames")
    frames = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(frames) < 2:
        raise ValueError(f"{d}: need at least 2 frames ({', '.join(IMAGE_EXTENSIONS)}), found {len(frames)}")
    return frames


def _done(out: Path, stem: str, viz: bool, overwrite: bool) -> bool:
    """True when a pair's outputs exist and may be kept (resume)."""
    return (not overwrite and (out / f"{stem}.flo").exists()
            and (not viz or (out / f"{stem}.png").exists()))


class FlowFiles(list):
    """The flow files of a folder or video job, in order (a list of paths), with what a
    re-run and a damaged video need said: ``skipped`` counts the files kept from an earlier
    run (not recomputed); ``declared`` is the frame count a partial video's container
    declares when it decoded to fewer and that was accepted (else None)."""

    skipped: int = 0
    declared: int | None = None


def _run_pairs(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], total: int | None, out: Path,
               method: FlowMethod, viz: bool, max_flow: float | None, overwrite: bool,
               batch_size: int, desc: str) -> FlowFiles:
    """Compute and write flow for ``(stem, img1, img2)`` pairs in batches."""
    out.mkdir(parents=True, exist_ok=True)
    written = FlowFiles()
    batch: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush():
        if not batch:
            return
        flows = method.batch(np.stack([b[1] for b in batch]), np.stack([b[2] for b in batch]))
        for (stem, _, _), flow in zip(batch, flows):
            write_flo(out / f"{stem}.flo", flow)
            if viz:
                _write_viz(out / f"{stem}.png", flow, max_flow)
            written.append(out / f"{stem}.flo")
        batch.clear()

    with tqdm(total=total, desc=desc, unit="pair") as bar:
        for stem, a, b in pairs:
            if _done(out, stem, viz, overwrite):
                written.append(out / f"{stem}.flo")
                written.skipped += 1
                bar.update(1)
                continue
            batch.append((stem, a, b))
            if len(batch) >= batch_size:
                n = len(batch)
                flush()
                bar.update(n)
        n = len(batch)
        flush()
        bar.update(n)
    return written


def flow_frames(frames_dir: PathLike, out_dir: PathLike, *, method: str | FlowMethod = DEFAULT_METHOD,
                options: dict | None = None, viz: bool = True, max_flow: float | None = None,
                overwrite: bool = False, batch_size: int = 1, max_frames: int | None = None) -> FlowFiles:
    """Flow between consecutive frames of a folder; one ``<frame stem>.flo`` per
    pair (named after its first frame) and, with ``viz``, a ``.png`` beside it.
    ``max_frames``: use only the first frames (in name order), as for a video.

    Pairs whose outputs exist are skipped unless ``overwrite``; frames are read
    lazily, so only a batch is in memory.
    """
    check_outputs([frames_dir], folders=[out_dir])
    _check_method(method, options)
    frames = list_frames(frames_dir)
    if max_frames is not None:
        if max_frames < 2:
            raise ValueError(f"max_frames must be at least 2 (one pair), got {max_frames}")
        frames = frames[:max_frames]
    m = _method(method, options)
    out = Path(out_dir)

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        prev = None
        for i in range(len(frames) - 1):
            stem = frames[i].stem
            if _done(out, stem, viz, overwrite):  # skip decoding too; _run_pairs skips it
                prev = None
                yield stem, None, None
                continue
            a = prev if prev is not None else read_image(frames[i])
            b = read_image(frames[i + 1])
            if a.shape != b.shape:
                raise ValueError(f"{frames[i + 1]}: size {b.shape[1]}×{b.shape[0]} differs from "
                                 f"{frames[i]} ({a.shape[1]}×{a.shape[0]})")
            prev = b
            yield stem, a, b

    return _run_pairs(pairs(), len(frames) - 1, out, m, viz, max_flow, overwrite, batch_size,
                      desc=f"{m.name} {Path(frames_dir).name}")


def flow_video(video: PathLike, out_dir: PathLike, *, method: str | FlowMethod = DEFAULT_METHOD,
               options: dict | None = None, viz: bool = True, max_flow: float | None = None,
               overwrite: bool = False, batch_size: int = 1, max_frames: int | None = None,
               accept_partial: bool = False) -> FlowFiles:
    """Flow between consecutive frames of a video, named after the frame it leaves in the
    rawframes numbering (:func:`~flownet2_core.io.frame_name`): ``flow_00001.flo`` is
    frame 1 → 2, with a ``.png`` beside each when ``viz``. Finished pairs are skipped on a
    re-run (the video is still decoded).

    A video that decodes to fewer frames than its container declares raises
    :class:`~flownet2_core.io.TruncatedVideoError` after the flow of the frames that did
    decode is written, unless ``accept_partial`` (the result's ``declared`` says so then)."""
    check_outputs([video], folders=[out_dir])
    _check_method(method, options)
    m = _method(method, options)
    declared = []

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        prev = None
        try:
            for i, frame in enumerate(iter_video_frames(video)):
                if max_frames is not None and i >= max_frames:
                    break
                if prev is not None:
                    yield frame_name("flow_", i, None), prev, frame  # frame i (1-based) → i + 1
                prev = frame
        except TruncatedVideoError as exc:
            if not accept_partial:
                raise
            declared.append(exc.declared)

    declared_frames = video_info(video)["frames"]  # the bar's total (0: the container does not say)
    if max_frames is not None and declared_frames:
        declared_frames = min(declared_frames, max_frames)
    written = _run_pairs(pairs(), max(declared_frames - 1, 0) or None, Path(out_dir), m, viz, max_flow, overwrite,
                         batch_size,
                         desc=f"{m.name} {Path(video).name}")
    written.declared = declared[0] if declared else None
    return written


def viz_flow(flow_file: PathLike, output: PathLike, *, max_flow: float | None = None,
             legend: bool = False) -> np.ndarray:
    """Colour-code a flow file (``.flo``, KITTI ``.png``, ``.pfm``) into an image
    of the flow's own size (plus the colour-wheel key beside it with
    ``legend``); invalid pixels are black. Returns the RGB image."""
    _check_image_extension(output, "the output image")
    check_outputs([flow_file], files=[output])
    flow, valid = read_flow(flow_file)
    img = (flow_to_color_with_legend(flow, max_flow=max_flow, valid=valid) if legend
           else flow_to_color(flow, max_flow=max_flow, valid=valid))
    write_image(output, img)
    return img
