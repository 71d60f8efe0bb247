"""The rawframes layout of flow stacks (TSN, mmaction2, denseflow).

Per video, a folder ``<Class>/v_<Class>_gGG_cCC/`` with 1-based files::

    img_00001.jpg …      RGB frames (N of them)
    flow_x_00001.jpg …   u of the flow from frame k to k+1 (N−1 of them)
    flow_y_00001.jpg …   v likewise

Each flow component is clipped to ±``bound`` pixels (default 20) and mapped
linearly to 0..255, stored as a grey JPEG::

    p = round(255 · (v + bound) / (2 · bound)),   v ≈ p / 255 · 2 · bound − bound

so one grey step is 2·bound/255 ≈ 0.157 px and the quantisation error is at
most half a step wherever |v| < bound. Two lossless alternatives keep the
flow itself: ``flow_format="flo"`` writes ``flow_00001.flo`` … and
``flow_format="npz"`` one ``flow.npz`` holding an (N−1, H, W, 2) float16 array.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from flownet2_core.io import encode_image, frame_name, read_flo, write_flo

__all__ = ["quantize_flow", "dequantize_flow", "FLOW_FORMATS", "frame_name", "write_frame",
           "write_flow_field", "finish_npz", "count_outputs", "read_flow_stack"]

FLOW_FORMATS = ("jpg", "flo", "npz")


def quantize_flow(v: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Flow component(s) in pixels → uint8 grey levels (see module docstring)."""
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}")
    scaled = (np.clip(v, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.rint(scaled).astype(np.uint8)


def dequantize_flow(p: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """uint8 grey levels → flow in pixels (float32)."""
    return (p.astype(np.float32) * (2.0 * bound / 255.0) - bound).astype(np.float32)


def write_frame(folder: Path, index: int, rgb: np.ndarray, quality: int) -> None:
    """``img_<index>.jpg`` from an (H, W, 3) uint8 RGB frame."""
    # Plain writes: the whole video folder is renamed into place when complete.
    (folder / frame_name("img_", index)).write_bytes(encode_image(rgb, ".jpg", jpeg_quality=quality))


def _write_grey_jpeg(path: Path, grey: np.ndarray, quality: int) -> None:
    path.write_bytes(encode_image(grey, ".jpg", jpeg_quality=quality))


def write_flow_field(folder: Path, index: int, flow: np.ndarray, *, flow_format: str = "jpg",
                     bound: float = 20.0, quality: int = 98) -> None:
    """Write the flow from frame ``index`` to ``index + 1`` (1-based) in ``flow_format``.

    For ``npz`` nothing is written here: collect the fields and call
    :func:`finish_npz`.
    """
    if flow_format == "jpg":
        _write_grey_jpeg(folder / frame_name("flow_x_", index), quantize_flow(flow[..., 0], bound), quality)
        _write_grey_jpeg(folder / frame_name("flow_y_", index), quantize_flow(flow[..., 1], bound), quality)
    elif flow_format == "flo":
        write_flo(folder / frame_name("flow_", index, "flo"), flow)
    elif flow_format != "npz":
        raise ValueError(f"flow_format must be one of {FLOW_FORMATS}, got {flow_format!r}")


def finish_npz(folder: Path, flows: list[np.ndarray]) -> None:
    """``flow.npz`` with key ``flow``: (N−1, H, W, 2) float16, compressed."""
    arr = np.stack(flows).astype(np.float16) if flows else np.zeros((0, 0, 0, 2), np.float16)
    np.savez_compressed(folder / "flow.npz", flow=arr)


def count_outputs(folder: Path, flow_format: str = "jpg") -> tuple[int, int]:
    """(number of RGB frames, number of flow fields) present in a video folder."""
    names = os.listdir(folder)
    frames = sum(n.startswith("img_") for n in names)
    if flow_format == "jpg":
        fx = sum(n.startswith("flow_x_") for n in names)
        fy = sum(n.startswith("flow_y_") for n in names)
        flows = fx if fx == fy else -1
    elif flow_format == "flo":
        flows = sum(n.startswith("flow_") and n.endswith(".flo") for n in names)
    else:
        try:
            with np.load(folder / "flow.npz") as z:
                flows = int(z["flow"].shape[0])
        except (OSError, KeyError, ValueError):
            flows = -1
    return frames, flows


def missing_file_error(path: Path, index: int, first: int) -> FileNotFoundError:
    """The error for a missing rawframes file ``path`` (number ``index``, in a folder read as
    numbering from ``first``). It names the cause when the folder numbers from the other
    base: a 1-based folder never holds ``…_00000``, a 0-based one always does."""
    def numbered(k: int) -> Path:
        return path.with_name(path.name.replace(f"{index:05d}", f"{k:05d}"))

    zero_based = numbered(0).exists()
    if first == 1 and zero_based or first == 0 and not zero_based and numbered(1).exists():
        other = 1 - first
        return FileNotFoundError(f"{path}: missing; this folder numbers its files from {other} "
                                 f"(pass --start-index {other})")
    return FileNotFoundError(f"{path}: missing or unreadable")


def read_flow_stack(folder: str | os.PathLike, start: int = 1, length: int | None = None, *,
                    flow_format: str = "jpg", bound: float = 20.0, first: int = 1) -> np.ndarray:
    """Flow fields ``start … start+length−1`` (1-based) of a video folder as
    (L, H, W, 2) float32 pixels (decoded from JPEG when ``flow_format="jpg"``).
    ``first``: the file number of field 1 (1 as we, TSN and mmaction2 write them; 0 for
    today's open-mmlab/denseflow, whose first file is ``flow_x_00000.jpg``)."""
    folder = Path(folder)
    if flow_format == "npz":
        with np.load(folder / "flow.npz") as z:
            arr = z["flow"]
        end = len(arr) if length is None else start - 1 + length
        return arr[start - 1:end].astype(np.float32)
    if length is None:
        length = count_outputs(folder, flow_format)[1] - start + 1
    out = []
    for k in range(start - 1 + first, start - 1 + first + length):
        if flow_format == "flo":
            path = folder / frame_name("flow_", k, "flo")
            if not path.exists():
                raise missing_file_error(path, k, first)
            out.append(read_flo(path))
            continue
        comps = []
        for prefix in ("flow_x_", "flow_y_"):
            path = folder / frame_name(prefix, k)
            g = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if g is None:
                raise missing_file_error(path, k, first)
            comps.append(dequantize_flow(g, bound))
        out.append(np.stack(comps, -1))
    return np.stack(out)
