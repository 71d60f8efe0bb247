"""KITTI optical-flow ground truth: 16-bit, 3-channel PNG files.

Stored channel order (as in the file, i.e. R, G, B)::

    R = u * 64 + 2**15      G = v * 64 + 2**15      B = 1 if valid else 0

so ``u = (R - 2**15) / 64``, ``v = (G - 2**15) / 64``, ``valid = B > 0``. The resolution is
1/64 px and the representable range is ``[-512, 511.984375]`` px per component.

OpenCV decodes and encodes colour PNGs in B, G, R order; the conversion happens here and
nowhere else.

Convention: flow arrays are ``(H, W, 2)`` float32, channel 0 = u (right), 1 = v (down).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ._files import PathLike, as_flow_array, atomic_write_bytes, read_bytes
from .flo import flow_valid_mask

KITTI_SCALE = 64.0
KITTI_OFFSET = 2.0**15
KITTI_MAX_FLOW = (65535 - KITTI_OFFSET) / KITTI_SCALE  # 511.984375
KITTI_MIN_FLOW = -KITTI_OFFSET / KITTI_SCALE  # -512.0


def read_kitti_flow(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI 16-bit flow PNG.

    Returns:
        ``(flow, valid)``: ``(H, W, 2)`` float32 flow in pixels with invalid pixels set to 0
        (the files usually store 0 there, which would decode as -512 px), and an ``(H, W)``
        bool mask, True where ``B > 0``.

    Raises:
        FileNotFoundError, IsADirectoryError: the path is missing or a directory.
        ValueError: the file cannot be decoded as an image, or is not a 3-channel
            16-bit image.
    """
    data = read_bytes(path)
    p = os.fspath(path)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None:
        raise ValueError(f"{p}: cannot be decoded as an image; not a KITTI flow PNG")
    if img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] != 3:
        channels = 1 if img.ndim == 2 else img.shape[2]
        raise ValueError(
            f"{p}: {img.dtype} image with {channels} channel(s); a KITTI flow PNG is "
            "16-bit with 3 channels (u, v, valid)"
        )
    # img is B, G, R = valid, v, u.
    valid = img[:, :, 0] > 0
    flow = img[:, :, 2:0:-1].astype(np.float32)
    flow -= KITTI_OFFSET
    flow /= KITTI_SCALE
    flow[~valid] = 0.0
    return flow, valid


def encode_kitti_flow(flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Quantise flow to the KITTI encoding; returns ``(H, W, 3)`` uint16 in R, G, B order.

    Values are rounded to the nearest 1/64 px and clipped to ``[-512, 511.984375]``.
    Pixels that are invalid (``valid`` False, or flow unknown: NaN or ``|.| > 1e9``) are
    stored as ``u = v = 0`` with ``B = 0``. Without ``valid`` every known pixel is valid.
    """
    arr = as_flow_array(flow)
    mask = flow_valid_mask(arr)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != arr.shape[:2]:
            raise ValueError(f"valid must have shape {arr.shape[:2]}, got {v.shape}")
        mask &= v
    q = np.where(mask[..., None], arr, 0.0).astype(np.float64)
    q = np.clip(np.rint(q * KITTI_SCALE + KITTI_OFFSET), 0, 65535)
    out = np.empty(arr.shape[:2] + (3,), np.uint16)
    out[:, :, :2] = q
    out[:, :, 2] = mask
    return out


def write_kitti_flow(path: PathLike, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write ``(H, W, 2)`` flow as a KITTI 16-bit PNG, atomically.

    Args:
        path: destination (``.png``); its directory must exist.
        flow: ``(H, W, 2)`` flow in pixels; rounded to 1/64 px and clipped to
            ``[-512, 511.984375]`` (see :func:`encode_kitti_flow`).
        valid: optional ``(H, W)`` bool mask; invalid pixels are written with B = 0 and
            u = v = 0. Unknown flow (NaN, ``|.| > 1e9``) is always written as invalid.
    """
    rgb = encode_kitti_flow(flow, valid)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint16 PNG
        raise ValueError(f"{os.fspath(path)}: OpenCV failed to encode the KITTI flow PNG")
    atomic_write_bytes(path, buf.tobytes())
